# ruff: noqa: E501  (a table of log patterns and messages reads best unwrapped)
"""vLLM's startup diagnosis: its own log rules and its order of the shared ones."""

from __future__ import annotations

from cortexctl.engines import diagnosis

UNKNOWN_ARGUMENT = diagnosis.rule(
    "unknown-argument",
    r"error: (unrecognized arguments|argument [-\w/ ]+: invalid)",
    "vllm serve rejected a command-line argument.",
    "Remove or correct the flag in the recipe's spec.args.extra_args (see `vllm serve --help` for the pinned "
    "vLLM version), then start the model again.",
)

TENSOR_PARALLEL_EXCEEDS_GPUS = diagnosis.rule(
    "tensor-parallel-exceeds-gpus",
    r"number of required GPUs exceeds the total number of available GPUs"
    r"|Tensor parallel size \(\d+\) cannot be larger than the number of available GPUs"
    r"|World size \(\d+\) is larger than the number of available GPUs",
    "tensor_parallel_size × pipeline_parallel_size asks for more GPUs than the replica can see.",
    "Lower spec.args.tensor_parallel_size to the number of GPUs in spec.gpus (or select more GPUs).",
)

# -- sizes -------------------------------------------------------------------------------
CONTEXT_TOO_LARGE = diagnosis.rule(
    "context-too-large",
    r"max_model_len \(\d+\) is greater than the derived max_model_len",
    "The recipe's context length is larger than the model's maximum.",
    "Lower spec.args.max_model_len to at most the model's max_position_embeddings (or leave it unset).",
)

OOM_KV_CACHE = diagnosis.rule(
    "oom-kv-cache",
    r"larger than the available KV cache memory|No available memory for the cache blocks"
    r"|max seq len \(\d+\).*KV cache is needed",
    "The GPU memory left after the weights cannot hold the KV cache for the requested context.",
    "Lower spec.args.max_model_len or max_num_seqs, raise gpu_memory_utilization, or use more GPUs "
    "(tensor_parallel_size).",
)

# -- vLLM's own start checks; each rule's test (tests/engines/test_vllm_diagnosis.py) quotes the
# message and names the vLLM (or library) source file it comes from -------------------------
GPU_MEMORY_IN_USE = diagnosis.rule(
    "gpu-memory-in-use",
    r"Free memory on device .*on startup is less than desired GPU memory utilization",
    "Not enough GPU memory was free at start for the share vLLM reserves "
    "(gpu_memory_utilization × the GPU's total): something else holds memory on that GPU.",
    "Stop what uses the GPU (`nvidia-smi` lists it; another model or another replica on the same GPU), "
    "or lower spec.args.gpu_memory_utilization so the shares of all models on the GPU plus about 0.5 GiB "
    "each fit; `cortexctl recipe validate` checks it.",
)

MODEL_INSPECTION_FAILED = diagnosis.rule(
    "model-inspection-failed",
    r"Model architectures? \[.*\] failed to be inspected",
    "vLLM could not import its own code for this model: the subprocess that inspects it died, which in "
    "the pinned image is almost always CUDA failing to start (driver), not the model.",
    "Check `nvidia-smi` and that the driver supports the engine image's CUDA version (the lines above "
    "this one in the log name the error); this is not an unsupported architecture.",
)

TRUST_REMOTE_CODE = diagnosis.rule(
    "trust-remote-code",
    r"consider setting `trust_remote_code=True`|requires you to execute the (configuration|tokenizer) file"
    r"|Please pass the argument `trust_remote_code=True`|set the option `trust_remote_code=True`",
    "The model needs its own Python code from its folder (a custom architecture or tokenizer), which "
    "vLLM runs only with trust_remote_code.",
    "If you trust the model's code (the *.py files in its folder), set spec.args.trust_remote_code: true; "
    "otherwise use a model the pinned vLLM supports natively.",
)

TOKENIZER_LOAD_FAILED = diagnosis.rule(
    "tokenizer-load-failed",
    r"Can't load tokenizer for|Couldn't instantiate the backend tokenizer|Failed to load the tokenizer"
    r"|tokenizer\.json.*(No such file|not found)",
    "vLLM could not load the model's tokenizer from the model folder.",
    "Copy the tokenizer files (tokenizer.json, tokenizer_config.json, and any tokenizer.model) into the "
    "model folder next to config.json, then start the model again.",
)

NCCL_ERROR = diagnosis.rule(
    "nccl-error",
    r"NCCL error|ncclCommInitRank|ncclUnhandledCudaError|ncclSystemError|ncclInternalError",
    "The GPUs of a tensor/pipeline-parallel replica could not talk to each other (NCCL).",
    "Check the GPUs of the replica see each other (`nvidia-smi topo -m`) and the driver/fabric manager "
    "are healthy; as a workaround set NCCL_P2P_DISABLE=1 for the engine, or run with "
    "tensor_parallel_size: 1 on a GPU that holds the model.",
)

DTYPE_UNSUPPORTED = diagnosis.rule(
    "dtype-unsupported",
    r"Bfloat16 is only supported on GPUs with compute capability of at least 8\.0",
    "The GPU cannot run bfloat16 (compute capability below 8.0).",
    "Set spec.args.dtype: half (float16) for this GPU.",
)

RULES: tuple[diagnosis.Rule, ...] = (
    UNKNOWN_ARGUMENT,
    diagnosis.PORT_IN_USE,
    diagnosis.MODEL_FILE_MISSING,
    diagnosis.MODEL_FILE_UNREADABLE,
    diagnosis.MODEL_FILE_CORRUPT,
    diagnosis.UNSUPPORTED_ARCHITECTURE,
    GPU_MEMORY_IN_USE,
    TRUST_REMOTE_CODE,
    TOKENIZER_LOAD_FAILED,
    NCCL_ERROR,
    DTYPE_UNSUPPORTED,
    diagnosis.OFFLINE_DOWNLOAD,
    diagnosis.CUDA_DRIVER_MISMATCH,
    diagnosis.NO_GPU,
    MODEL_INSPECTION_FAILED,
    TENSOR_PARALLEL_EXCEEDS_GPUS,
    CONTEXT_TOO_LARGE,
    OOM_KV_CACHE,
    diagnosis.OOM_CUDA,
    diagnosis.OOM_HOST,
    diagnosis.CHAT_TEMPLATE_MISSING,
)

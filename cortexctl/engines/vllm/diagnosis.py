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

RULES: tuple[diagnosis.Rule, ...] = (
    UNKNOWN_ARGUMENT,
    diagnosis.PORT_IN_USE,
    diagnosis.MODEL_FILE_MISSING,
    diagnosis.MODEL_FILE_UNREADABLE,
    diagnosis.MODEL_FILE_CORRUPT,
    diagnosis.UNSUPPORTED_ARCHITECTURE,
    diagnosis.OFFLINE_DOWNLOAD,
    diagnosis.CUDA_DRIVER_MISMATCH,
    diagnosis.NO_GPU,
    TENSOR_PARALLEL_EXCEEDS_GPUS,
    CONTEXT_TOO_LARGE,
    OOM_KV_CACHE,
    diagnosis.OOM_CUDA,
    diagnosis.OOM_HOST,
    diagnosis.CHAT_TEMPLATE_MISSING,
)

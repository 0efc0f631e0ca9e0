# ruff: noqa: E501  (a table of log patterns and messages reads best unwrapped)
"""Startup diagnosis: match an engine's log against one rule table for both engines.

Each rule is a regex over single log lines plus what it means and what to do.
Rules are tried in table order (most specific first) and the first rule with a
matching line wins, so a root cause (the file is missing) beats its echoes
(failed to load model). The patterns come from the error strings of the pinned
llama.cpp (the llama-cpp-python 0.3.36 vendored tree) and of vLLM's Python
stack (vLLM, transformers, huggingface_hub, torch, uvicorn); each vLLM rule's test
(tests/engines/test_vllm_diagnosis.py) quotes the message and names its source file.
Patterns never match a bare variable name vLLM may log on a healthy start (it logs
HF_HUB_OFFLINE, which CORTEX always sets): only the error's own words. A start that
fails with a diagnosis is not retried (the supervisor marks the model failed with the fix).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from cortexctl.engines.base import Diagnosis

MAX_LOG_LINES = 5


@dataclass(frozen=True)
class Rule:
    rule: str
    engines: frozenset[str]
    pattern: re.Pattern[str]
    summary: str
    fix: str


BOTH = frozenset({"llamacpp", "vllm"})
LLAMA = frozenset({"llamacpp"})
VLLM = frozenset({"vllm"})


def _r(rule: str, engines: frozenset[str], pattern: str, summary: str, fix: str) -> Rule:
    return Rule(rule, engines, re.compile(pattern, re.IGNORECASE), summary, fix)


RULES: tuple[Rule, ...] = (
    # -- arguments and ports: the engine never got to the model ------------------------
    _r(
        "unknown-argument",
        LLAMA,
        r"error: (invalid argument|unknown value for [-\w]+): ",
        "llama-server rejected a command-line argument.",
        "Remove or correct the flag in the recipe's spec.args.extra_args (see `llama-server --help` for this "
        "version), then start the model again.",
    ),
    _r(
        "unknown-argument",
        VLLM,
        r"error: (unrecognized arguments|argument [-\w/ ]+: invalid)",
        "vllm serve rejected a command-line argument.",
        "Remove or correct the flag in the recipe's spec.args.extra_args (see `vllm serve --help` for the pinned "
        "vLLM version), then start the model again.",
    ),
    _r(
        "port-in-use",
        BOTH,
        r"couldn't bind HTTP server socket|address already in use|\[Errno 98\]",
        "The engine could not listen on its port: another process already uses it.",
        "Free the port (`ss -ltnp` shows who holds it) or change engine_port_range in cortex.yaml, "
        "then start the model again.",
    ),
    # -- the model files -----------------------------------------------------------------
    _r(
        "model-file-missing",
        BOTH,
        r"failed to open GGUF file .*\(No such file or directory\)|failed to open .*: No such file or directory"
        r"|Invalid repository ID or local directory specified|No such file or directory: '[^']*config\.json'",
        "The model file or folder named by the recipe does not exist.",
        "Check spec.model.path (relative paths are under $CORTEX_HOME/models) or import the bundle that "
        "carries the model (`cortexctl bundle import FILE`).",
    ),
    _r(
        "model-file-unreadable",
        BOTH,
        r"failed to open .*(Permission denied|Is a directory)|PermissionError: \[Errno 13\]",
        "The engine cannot read the model file (permissions, or a folder where a file is expected).",
        "Make the model readable by the engine (e.g. `chmod a+r FILE`) and point spec.model.path at the .gguf file "
        "itself for llama.cpp, then start the model again.",
    ),
    _r(
        "model-file-corrupt",
        BOTH,
        r"invalid magic characters|gguf_init_from_file_impl: failed to read (magic|header|key-value pairs|tensor)"
        r"|bad GGUF version|GGUFv1 is no longer supported|data is not within the file bounds"
        r"|tensor '.*' has (invalid|wrong)|SafetensorError|Error while deserializing header"
        r"|(HeaderTooLarge|InvalidHeaderDeserialization|MetadataIncompleteBuffer)",
        "The model file is not a valid model (not a GGUF / safetensors file, truncated, or corrupt).",
        "Re-copy or re-import the model (verify it with spec.model.sha256) and check the path names a real "
        "GGUF file (llama.cpp) or an HF-style folder (vLLM).",
    ),
    _r(
        "unsupported-architecture",
        BOTH,
        r"unknown model architecture|Model architectures? \[.*\] (are|is) not supported"
        r"|model type `.*` but Transformers does not recognize",
        "The engine version does not support this model's architecture.",
        "Use a model architecture the pinned engine supports, or an engine image/bundle with a newer engine.",
    ),
    # -- vLLM's own start checks (messages of the vLLM source named in each test) ----------
    _r(
        "gpu-memory-in-use",
        VLLM,
        r"Free memory on device .*on startup is less than desired GPU memory utilization",
        "Not enough GPU memory was free at start for the share vLLM reserves "
        "(gpu_memory_utilization × the GPU's total): something else holds memory on that GPU.",
        "Stop what uses the GPU (`nvidia-smi` lists it; another model or another replica on the same GPU), "
        "or lower spec.args.gpu_memory_utilization so the shares of all models on the GPU plus about 0.5 GiB "
        "each fit; `cortexctl recipe validate` checks it.",
    ),
    _r(
        "trust-remote-code",
        VLLM,
        r"consider setting `trust_remote_code=True`|requires you to execute the (configuration|tokenizer) file"
        r"|Please pass the argument `trust_remote_code=True`|set the option `trust_remote_code=True`",
        "The model needs its own Python code from its folder (a custom architecture or tokenizer), which "
        "vLLM runs only with trust_remote_code.",
        "If you trust the model's code (the *.py files in its folder), set spec.args.trust_remote_code: true; "
        "otherwise use a model the pinned vLLM supports natively.",
    ),
    _r(
        "tokenizer-load-failed",
        VLLM,
        r"Can't load tokenizer for|Couldn't instantiate the backend tokenizer|Failed to load the tokenizer"
        r"|tokenizer\.json.*(No such file|not found)",
        "vLLM could not load the model's tokenizer from the model folder.",
        "Copy the tokenizer files (tokenizer.json, tokenizer_config.json, and any tokenizer.model) into the "
        "model folder next to config.json, then start the model again.",
    ),
    _r(
        "nccl-error",
        VLLM,
        r"NCCL error|ncclCommInitRank|ncclUnhandledCudaError|ncclSystemError|ncclInternalError",
        "The GPUs of a tensor/pipeline-parallel replica could not talk to each other (NCCL).",
        "Check the GPUs of the replica see each other (`nvidia-smi topo -m`) and the driver/fabric manager "
        "are healthy; as a workaround set NCCL_P2P_DISABLE=1 for the engine, or run with "
        "tensor_parallel_size: 1 on a GPU that holds the model.",
    ),
    _r(
        "dtype-unsupported",
        VLLM,
        r"Bfloat16 is only supported on GPUs with compute capability of at least 8\.0",
        "The GPU cannot run bfloat16 (compute capability below 8.0).",
        "Set spec.args.dtype: half (float16) for this GPU.",
    ),
    # -- the environment -------------------------------------------------------------------
    _r(
        "offline-download",
        BOTH,
        r"LocalEntryNotFoundError|couldn't connect to 'https://huggingface\.co'|outgoing traffic has been disabled"
        r"|offline mode is enabled|Max retries exceeded with url: /(api/models|.*resolve)|NameResolutionError.*huggingface"
        r"|built without (CURL|SSL|libcurl)",
        "The engine tried to download a model or tokenizer from the internet, and this host is offline.",
        "Give spec.model.path as a local folder that holds every file (config.json, tokenizer, weights); "
        "import them with `cortexctl bundle import FILE` on an air-gapped host.",
    ),
    _r(
        "cuda-driver-mismatch",
        BOTH,
        r"CUDA driver version is insufficient|NVIDIA driver on your system is too old"
        r"|forward compatibility was attempted on non supported HW|cudaErrorInsufficientDriver"
        r"|CUDA initialization: .*(driver|Error 804)|unsupported display driver / cuda driver combination",
        "The NVIDIA driver is too old for the engine's CUDA runtime.",
        "Upgrade the NVIDIA driver to the version the engine image needs (see `nvidia-smi`), or use an "
        "engine image built for the installed driver's CUDA version.",
    ),
    _r(
        "no-gpu",
        BOTH,
        r"Failed to infer device type|No CUDA GPUs are available|Found no NVIDIA driver"
        r"|could not select device driver .* with capabilities: \[\[gpu\]\]",
        "The engine found no usable GPU.",
        "Check `nvidia-smi` and the NVIDIA container toolkit (docker runtime), or run the model on CPU with "
        "llama.cpp (spec.gpus: none).",
    ),
    _r(
        "model-inspection-failed",
        VLLM,
        r"Model architectures? \[.*\] failed to be inspected",
        "vLLM could not import its own code for this model: the subprocess that inspects it died, which in "
        "the pinned image is almost always CUDA failing to start (driver), not the model.",
        "Check `nvidia-smi` and that the driver supports the engine image's CUDA version (the lines above "
        "this one in the log name the error); this is not an unsupported architecture.",
    ),
    _r(
        "tensor-parallel-exceeds-gpus",
        VLLM,
        r"number of required GPUs exceeds the total number of available GPUs"
        r"|Tensor parallel size \(\d+\) cannot be larger than the number of available GPUs"
        r"|World size \(\d+\) is larger than the number of available GPUs",
        "tensor_parallel_size × pipeline_parallel_size asks for more GPUs than the replica can see.",
        "Lower spec.args.tensor_parallel_size to the number of GPUs in spec.gpus (or select more GPUs).",
    ),
    # -- sizes -------------------------------------------------------------------------------
    _r(
        "context-too-large",
        VLLM,
        r"max_model_len \(\d+\) is greater than the derived max_model_len",
        "The recipe's context length is larger than the model's maximum.",
        "Lower spec.args.max_model_len to at most the model's max_position_embeddings (or leave it unset).",
    ),
    _r(
        "oom-kv-cache",
        VLLM,
        r"larger than the available KV cache memory|No available memory for the cache blocks"
        r"|max seq len \(\d+\).*KV cache is needed",
        "The GPU memory left after the weights cannot hold the KV cache for the requested context.",
        "Lower spec.args.max_model_len or max_num_seqs, raise gpu_memory_utilization, or use more GPUs "
        "(tensor_parallel_size).",
    ),
    _r(
        "oom-cuda",
        BOTH,
        r"CUDA out of memory|OutOfMemoryError|cudaMalloc failed: out of memory"
        r"|ggml_backend_cuda_buffer_type_alloc_buffer: allocating .* failed|CUDA error: out of memory",
        "The GPU ran out of memory while loading the model.",
        "Use a smaller or more quantized model, lower the context length / parallel sequences, offload fewer "
        "layers (llama.cpp gpu_layers), or lower gpu_memory_utilization of other engines on the GPU.",
    ),
    _r(
        "oom-host",
        BOTH,
        r"cpu_buffer_type_alloc_buffer: failed to allocate|failed to allocate buffer|std::bad_alloc"
        r"|Cannot allocate memory|failed to initialize the context|MemoryError",
        "The host ran out of memory (RAM) while loading the model or allocating its context.",
        "Lower spec.args.context_length / parallel (the KV cache grows with both), use a smaller model, or raise "
        "spec.resources.memory; `free -h` shows what is available.",
    ),
    # -- chat templates (late: these can be warnings on an otherwise healthy start) ----------
    _r(
        "chat-template-missing",
        BOTH,
        r"default chat template is no longer allowed|must provide a chat template"
        r"|chat template parsing error|does not have a chat template",
        "The model has no usable chat template, so chat completions cannot be formatted.",
        "Set spec.args.chat_template (llama.cpp: a built-in name such as chatml; vLLM: a template file path).",
    ),
    _r(
        "context-too-large",
        LLAMA,
        r"slot context \(\d+\) exceeds the training context of the model|n_ctx_seq \(\d+\) > n_ctx_train",
        "The recipe's context length is larger than the model's training context.",
        "Lower spec.args.context_length (per slot: context_length / parallel) to the model's n_ctx_train.",
    ),
)


def diagnose(log_text: str, *, engine: str) -> Diagnosis | None:
    """The first rule (in table order) with a matching log line, with a few such lines."""
    lines = [line.rstrip() for line in log_text.splitlines() if line.strip()]
    for rule in RULES:
        if engine not in rule.engines:
            continue
        hits = _matching(rule.pattern, lines)
        if hits:
            return Diagnosis(rule=rule.rule, summary=rule.summary, fix=rule.fix, log_lines=hits)
    return None


def _matching(pattern: re.Pattern[str], lines: Iterable[str]) -> list[str]:
    hits: list[str] = []
    for line in lines:
        if pattern.search(line):
            hits.append(line[:500])
            if len(hits) >= MAX_LOG_LINES:
                break
    return hits


def rule_names() -> list[str]:
    return sorted({r.rule for r in RULES})

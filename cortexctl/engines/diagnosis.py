# ruff: noqa: E501  (a table of log patterns and messages reads best unwrapped)
"""Startup diagnosis: match an engine's log against its rule table.

Each rule is a regex over single log lines plus what it means and what to do.
Each engine's package orders its own table (`<engine>/diagnosis.py`): its own
rules and the shared ones below. Rules are tried in table order (most specific
first) and the first rule with a matching line wins, so a root cause (the file is
missing) beats its echoes (failed to load model). The shared patterns come from the
error strings of the pinned llama.cpp and of vLLM's Python stack (vLLM,
transformers, huggingface_hub, torch, uvicorn).
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
    pattern: re.Pattern[str]
    summary: str
    fix: str


def rule(rule: str, pattern: str, summary: str, fix: str) -> Rule:
    return Rule(rule, re.compile(pattern, re.IGNORECASE), summary, fix)


_r = rule

# ---- shared by every engine (each engine's table places them) ------------------------------

PORT_IN_USE = _r(
    "port-in-use",
    r"couldn't bind HTTP server socket|address already in use|\[Errno 98\]",
    "The engine could not listen on its port: another process already uses it.",
    "Free the port (`ss -ltnp` shows who holds it) or change engine_port_range in cortex.yaml, "
    "then start the model again.",
)

# -- the model files -----------------------------------------------------------------
MODEL_FILE_MISSING = _r(
    "model-file-missing",
    r"failed to open GGUF file .*\(No such file or directory\)|failed to open .*: No such file or directory"
    r"|Invalid repository ID or local directory specified|No such file or directory: '[^']*config\.json'",
    "The model file or folder named by the recipe does not exist.",
    "Check spec.model.path (relative paths are under $CORTEX_HOME/models) or import the bundle that "
    "carries the model (`cortexctl bundle import FILE`).",
)

MODEL_FILE_UNREADABLE = _r(
    "model-file-unreadable",
    r"failed to open .*(Permission denied|Is a directory)|PermissionError: \[Errno 13\]",
    "The engine cannot read the model file (permissions, or a folder where a file is expected).",
    "Make the model readable by the engine (e.g. `chmod a+r FILE`) and point spec.model.path at the .gguf file "
    "itself for llama.cpp, then start the model again.",
)

MODEL_FILE_CORRUPT = _r(
    "model-file-corrupt",
    r"invalid magic characters|gguf_init_from_file_impl: failed to read (magic|header|key-value pairs|tensor)"
    r"|bad GGUF version|GGUFv1 is no longer supported|data is not within the file bounds"
    r"|tensor '.*' has (invalid|wrong)|SafetensorError|Error while deserializing header"
    r"|(HeaderTooLarge|InvalidHeaderDeserialization|MetadataIncompleteBuffer)",
    "The model file is not a valid model (not a GGUF / safetensors file, truncated, or corrupt).",
    "Re-copy or re-import the model (verify it with spec.model.sha256) and check the path names a real "
    "GGUF file (llama.cpp) or an HF-style folder (vLLM).",
)

UNSUPPORTED_ARCHITECTURE = _r(
    "unsupported-architecture",
    r"unknown model architecture|Model architectures? \[.*\] (are|is) not supported"
    r"|Model architectures? \[.*\] failed to be inspected|model type `.*` but Transformers does not recognize",
    "The engine version does not support this model's architecture.",
    "Use a model architecture the pinned engine supports, or an engine image/bundle with a newer engine.",
)

# -- the environment -------------------------------------------------------------------
OFFLINE_DOWNLOAD = _r(
    "offline-download",
    r"LocalEntryNotFoundError|couldn't connect to 'https://huggingface\.co'|outgoing traffic has been disabled"
    r"|HF_HUB_OFFLINE|Max retries exceeded with url: /(api/models|.*resolve)|NameResolutionError.*huggingface"
    r"|built without (CURL|SSL|libcurl)",
    "The engine tried to download a model or tokenizer from the internet, and this host is offline.",
    "Give spec.model.path as a local folder that holds every file (config.json, tokenizer, weights); "
    "import them with `cortexctl bundle import FILE` on an air-gapped host.",
)

CUDA_DRIVER_MISMATCH = _r(
    "cuda-driver-mismatch",
    r"CUDA driver version is insufficient|NVIDIA driver on your system is too old"
    r"|forward compatibility was attempted on non supported HW|cudaErrorInsufficientDriver"
    r"|CUDA initialization: .*(driver|Error 804)|unsupported display driver / cuda driver combination",
    "The NVIDIA driver is too old for the engine's CUDA runtime.",
    "Upgrade the NVIDIA driver to the version the engine image needs (see `nvidia-smi`), or use an "
    "engine image built for the installed driver's CUDA version.",
)

NO_GPU = _r(
    "no-gpu",
    r"Failed to infer device type|No CUDA GPUs are available|Found no NVIDIA driver"
    r"|could not select device driver .* with capabilities: \[\[gpu\]\]",
    "The engine found no usable GPU.",
    "Check `nvidia-smi` and the NVIDIA container toolkit (docker runtime), or run the model on CPU with "
    "llama.cpp (spec.gpus: none).",
)

OOM_CUDA = _r(
    "oom-cuda",
    r"CUDA out of memory|OutOfMemoryError|cudaMalloc failed: out of memory"
    r"|ggml_backend_cuda_buffer_type_alloc_buffer: allocating .* failed|CUDA error: out of memory",
    "The GPU ran out of memory while loading the model.",
    "Use a smaller or more quantized model, lower the context length / parallel sequences, offload fewer "
    "layers (llama.cpp gpu_layers), or lower gpu_memory_utilization of other engines on the GPU.",
)

OOM_HOST = _r(
    "oom-host",
    r"cpu_buffer_type_alloc_buffer: failed to allocate|failed to allocate buffer|std::bad_alloc"
    r"|Cannot allocate memory|failed to initialize the context|MemoryError",
    "The host ran out of memory (RAM) while loading the model or allocating its context.",
    "Lower spec.args.context_length / parallel (the KV cache grows with both), use a smaller model, or raise "
    "spec.resources.memory; `free -h` shows what is available.",
)

# -- chat templates (late: these can be warnings on an otherwise healthy start) ----------
CHAT_TEMPLATE_MISSING = _r(
    "chat-template-missing",
    r"default chat template is no longer allowed|must provide a chat template"
    r"|chat template parsing error|does not have a chat template",
    "The model has no usable chat template, so chat completions cannot be formatted.",
    "Set spec.args.chat_template (llama.cpp: a built-in name such as chatml; vLLM: a template file path).",
)


def diagnose(log_text: str, rules: Iterable[Rule]) -> Diagnosis | None:
    """The first rule (in table order) with a matching log line, with a few such lines."""
    lines = [line.rstrip() for line in log_text.splitlines() if line.strip()]
    for r in rules:
        hits = _matching(r.pattern, lines)
        if hits:
            return Diagnosis(rule=r.rule, summary=r.summary, fix=r.fix, log_lines=hits)
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
    """Every rule name of every registered engine."""
    from cortexctl.engines.registry import engine_names, get_engine

    return sorted({r.rule for name in engine_names() for r in get_engine(name).diagnosis_rules})


def rule_catalog() -> list[dict[str, object]]:
    """Every rule once, with the engines that use it (the console's Guide renders this)."""
    from cortexctl.engines.registry import engine_names, get_engine

    catalog: dict[str, dict[str, object]] = {}
    for name in engine_names():
        for r in get_engine(name).diagnosis_rules:
            entry = catalog.setdefault(
                r.rule, {"rule": r.rule, "engines": [], "summary": r.summary, "fix": r.fix}
            )
            entry["engines"].append(name)  # type: ignore[attr-defined]
    return list(catalog.values())

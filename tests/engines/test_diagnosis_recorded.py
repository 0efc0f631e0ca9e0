# ruff: noqa: E501  (recorded log lines are kept whole)
"""Diagnosis rules against recorded log excerpts (failures that cannot be provoked here:
no GPU, no vLLM, no network). The excerpts are what the engines print, trimmed."""

from __future__ import annotations

import pytest

from cortexctl.engines.diagnosis import rule_names
from cortexctl.engines.registry import get_engine

VLLM_CUDA_OOM = """\
INFO 03-14 10:02:11 [gpu_model_runner.py:1843] Starting to load model /models/Llama-3.1-70B-Instruct...
ERROR 03-14 10:02:40 [core.py:708] EngineCore failed to start.
ERROR 03-14 10:02:40 [core.py:708] Traceback (most recent call last):
ERROR 03-14 10:02:40 [core.py:708]   File "/usr/local/lib/python3.12/dist-packages/vllm/model_executor/layers/linear.py", line 320, in __init__
ERROR 03-14 10:02:40 [core.py:708] torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 896.00 MiB. GPU 0 has a total capacity of 79.19 GiB of which 512.00 MiB is free.
RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}
"""

VLLM_KV_CACHE = """\
INFO 03-14 10:05:02 [gpu_worker.py:276] Available KV cache memory: 1.20 GiB
ERROR 03-14 10:05:02 [core.py:708] ValueError: To serve at least one request with the models's max seq len (131072), (16.00 GiB KV cache is needed, which is larger than the available KV cache memory (1.20 GiB). Based on the available memory, the estimated maximum model length is 9808. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.
"""

VLLM_CONTEXT = """\
pydantic_core._pydantic_core.ValidationError: 1 validation error for ModelConfig
  Value error, User-specified max_model_len (262144) is greater than the derived max_model_len (max_position_embeddings=131072 or model_max_length=None in model's config.json). To allow overriding this maximum, set the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1.
"""

VLLM_TP = """\
INFO 03-14 10:07:00 [__init__.py:1815] Using max model len 32768
ValueError: The number of required GPUs exceeds the total number of available GPUs in the placement group.
"""

VLLM_UNKNOWN_ARG = """\
usage: vllm serve [model_tag] [options]
vllm serve: error: unrecognized arguments: --max-model-length 4096
"""

VLLM_DRIVER = """\
RuntimeError: The NVIDIA driver on your system is too old (found version 11040). Please update your GPU driver by downloading and installing a new version from the URL: http://www.nvidia.com/Download/index.aspx
"""

VLLM_OFFLINE = """\
OSError: We couldn't connect to 'https://huggingface.co' to load the files, and couldn't find them in the cached files.
huggingface_hub.errors.LocalEntryNotFoundError: Cannot find the requested files in the disk cache and outgoing traffic has been disabled. To enable hf.co look-ups and downloads online, set 'local_files_only' to False.
"""

VLLM_ARCH = """\
ValueError: Model architectures ['FancyNewForCausalLM'] are not supported for now. Supported architectures: dict_keys(['AquilaModel', 'LlamaForCausalLM', ...])
"""

VLLM_CHAT_TEMPLATE = """\
ERROR 03-14 10:11:20 [serving_chat.py:222] Error in preprocessing prompt inputs
ValueError: As of transformers v4.44, default chat template is no longer allowed, so you must provide a chat template if the tokenizer does not define one.
"""

VLLM_PORT = """\
INFO 03-14 10:12:00 [api_server.py:1880] vLLM API server version 0.33.0
OSError: [Errno 98] Address already in use
"""

VLLM_NO_GPU = """\
RuntimeError: Failed to infer device type, please set the environment variable `VLLM_LOGGING_LEVEL=DEBUG` to turn on verbose logging to help debug the issue.
"""

VLLM_SAFETENSORS = """\
safetensors_rust.SafetensorError: Error while deserializing header: HeaderTooLarge
"""

LLAMA_CUDA_OOM = """\
load_tensors: offloading 32 repeating layers to GPU
ggml_backend_cuda_buffer_type_alloc_buffer: allocating 7605.33 MiB on device 0: cudaMalloc failed: out of memory
alloc_tensor_range: failed to allocate CUDA0 buffer of size 7974764544
llama_model_load: error loading model: unable to allocate CUDA0 buffer
srv    load_model: failed to load model, '/models/llama-3.1-8b-f16.gguf'
"""

LLAMA_DRIVER = """\
ggml_cuda_init: failed to initialize CUDA: CUDA driver version is insufficient for CUDA runtime version
warning: no usable GPU found, --gpu-layers option will be ignored
"""

LLAMA_PERMISSION = """\
gguf_init_from_file: failed to open GGUF file '/models/m.gguf' (Permission denied)
llama_model_load: error loading model: llama_model_loader: failed to load model from /models/m.gguf
"""

LLAMA_ARCH = """\
llama_model_load: error loading model: error loading model architecture: unknown model architecture: 'qwen9'
llama_model_load_from_file_impl: failed to load model
"""

LLAMA_TEMPLATE = """\
srv    load_model: load_model: chat template parsing error: Expected closing statement token at row 3, column 12
srv    load_model: load_model: please consider disabling jinja via --no-jinja, or use a custom chat template via --chat-template
"""

CASES = [
    ("vllm", VLLM_CUDA_OOM, "oom-cuda", "CUDA out of memory"),
    ("vllm", VLLM_KV_CACHE, "oom-kv-cache", "larger than the available KV cache memory"),
    ("vllm", VLLM_CONTEXT, "context-too-large", "max_model_len (262144)"),
    ("vllm", VLLM_TP, "tensor-parallel-exceeds-gpus", "number of required GPUs"),
    ("vllm", VLLM_UNKNOWN_ARG, "unknown-argument", "--max-model-length"),
    ("vllm", VLLM_DRIVER, "cuda-driver-mismatch", "too old"),
    ("vllm", VLLM_OFFLINE, "offline-download", "huggingface.co"),
    ("vllm", VLLM_ARCH, "unsupported-architecture", "FancyNewForCausalLM"),
    ("vllm", VLLM_CHAT_TEMPLATE, "chat-template-missing", "default chat template"),
    ("vllm", VLLM_PORT, "port-in-use", "Errno 98"),
    ("vllm", VLLM_NO_GPU, "no-gpu", "Failed to infer device type"),
    ("vllm", VLLM_SAFETENSORS, "model-file-corrupt", "HeaderTooLarge"),
    ("llamacpp", LLAMA_CUDA_OOM, "oom-cuda", "cudaMalloc failed"),
    ("llamacpp", LLAMA_DRIVER, "cuda-driver-mismatch", "driver version is insufficient"),
    ("llamacpp", LLAMA_PERMISSION, "model-file-unreadable", "Permission denied"),
    ("llamacpp", LLAMA_ARCH, "unsupported-architecture", "qwen9"),
    ("llamacpp", LLAMA_TEMPLATE, "chat-template-missing", "chat template parsing error"),
]


@pytest.mark.parametrize(("engine", "log", "rule", "evidence"), CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_recorded_excerpt(engine: str, log: str, rule: str, evidence: str) -> None:
    d = get_engine(engine).diagnose(log)
    assert d is not None, f"no rule matched for {rule}"
    assert d.rule == rule
    assert any(evidence in line for line in d.log_lines), d.log_lines
    assert d.summary.endswith(".") and d.fix


def test_every_rule_is_covered_by_a_test() -> None:
    provoked_for_real = {
        "model-file-missing",
        "model-file-corrupt",
        "port-in-use",
        "unknown-argument",
        "oom-host",
    }
    recorded = {c[2] for c in CASES}
    assert set(rule_names()) <= recorded | provoked_for_real


def test_healthy_logs_give_no_diagnosis() -> None:
    healthy = """\
main: loading model
srv    load_model: loading model '/models/tiny.gguf'
main: model loaded
main: server is listening on http://127.0.0.1:18001
"""
    assert get_engine("llamacpp").diagnose(healthy) is None
    assert get_engine("vllm").diagnose("INFO: Uvicorn running on http://127.0.0.1:8000\n") is None


def test_root_cause_beats_its_echo() -> None:
    # "failed to load model" echoes follow the missing file; the table order keeps the cause.
    log = (
        LLAMA_PERMISSION
        + "srv    load_model: failed to load model, '/models/m.gguf'\nmain: exiting due to model loading error\n"
    )
    d = get_engine("llamacpp").diagnose(log)
    assert d is not None and d.rule == "model-file-unreadable"


def test_rules_are_scoped_to_engines() -> None:
    assert {r.rule for r in get_engine("llamacpp").diagnosis_rules} <= set(rule_names())
    # a vLLM-only phrase is not a llama.cpp diagnosis
    assert get_engine("llamacpp").diagnose(VLLM_TP) is None

# ruff: noqa: E501  (vLLM's messages are quoted whole)
"""vLLM diagnosis rules against vLLM's own messages, each quoted with the source file it comes from.

The message texts were read in the stored snapshot of vllm-project/vllm (newer-than-0.10 trees;
the pinned release is 0.33.0, see tests/validation/test_vllm_semantics.py) and, for messages raised
by libraries vLLM calls, in those libraries. Each log is laid out as vLLM V1 prints it: the
process prefix, level, date, [file:line], then the message, with the traceback noise around it.
"""

from __future__ import annotations

import pytest

from cortexctl.engines.registry import get_engine

# vllm/v1/worker/utils.py, request_memory()
FREE_MEMORY = """\
(EngineCore_DP0 pid=312) INFO 12-01 08:00:03 [parallel_state.py:1208] rank 0 in world size 1 is assigned as DP rank 0, PP rank 0, TP rank 0, EP rank 0
(EngineCore_DP0 pid=312) ERROR 12-01 08:00:04 [core.py:866] EngineCore failed to start.
(EngineCore_DP0 pid=312) ERROR 12-01 08:00:04 [core.py:866] Traceback (most recent call last):
(EngineCore_DP0 pid=312) ERROR 12-01 08:00:04 [core.py:866]   File "/usr/local/lib/python3.12/dist-packages/vllm/v1/worker/gpu_worker.py", line 236, in init_device
(EngineCore_DP0 pid=312) ERROR 12-01 08:00:04 [core.py:866]     self.requested_memory = request_memory(init_snapshot, self.cache_config)
(EngineCore_DP0 pid=312) ERROR 12-01 08:00:04 [core.py:866] ValueError: Free memory on device cuda:0 (7.34/79.19 GiB) on startup is less than desired GPU memory utilization (0.9, 71.27 GiB). Decrease GPU memory utilization or reduce GPU memory used by other processes.
(APIServer pid=1) RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}
"""

# vllm/model_executor/models/registry.py, _raise_for_unsupported() (docs/usage/troubleshooting.md
# "Model failed to be inspected": vLLM failed to import the model file, in a subprocess)
INSPECTION = """\
(APIServer pid=1) ERROR 12-01 08:00:02 [registry.py:512] Error in inspecting model architecture 'LlamaForCausalLM'
(APIServer pid=1) RuntimeError: Error 803: system has unsupported display driver / cuda driver combination
(APIServer pid=1) pydantic_core._pydantic_core.ValidationError: 1 validation error for ModelConfig
(APIServer pid=1)   Value error, Model architectures ['LlamaForCausalLM'] failed to be inspected. Please check the logs for more details. [type=value_error, input_value=ArgsKwargs((), {'model': '/models/llama'}), input_type=ArgsKwargs]
"""
INSPECTION_ALONE = """\
(APIServer pid=1)   Value error, Model architectures ['Qwen2ForCausalLM'] failed to be inspected. Please check the logs for more details. [type=value_error]
"""

# vllm/tokenizers/hf.py (vllm/transformers_utils/tokenizer.py in older trees), get_tokenizer()
TOKENIZER_TRUST = """\
(APIServer pid=1) ValueError: Tokenizer class TokenizersBackend does not exist or is not currently imported.
(APIServer pid=1) RuntimeError: Failed to load the tokenizer. If the tokenizer is a custom tokenizer not yet available in the HuggingFace transformers library, consider setting `trust_remote_code=True` in LLM or using the `--trust-remote-code` flag in the CLI.
"""

# transformers/dynamic_module_utils.py, resolve_trust_remote_code() (vLLM loads configs through it)
CONFIG_TRUST = """\
(APIServer pid=1) ValueError: The repository /models/custom contains custom code which must be executed to correctly load the model. You can inspect the repository content at /models/custom .
(APIServer pid=1)  Please pass the argument `trust_remote_code=True` to allow custom code to be run.
"""

# transformers/tokenization_utils_base.py, PreTrainedTokenizerBase.from_pretrained()
TOKENIZER_MISSING = """\
(APIServer pid=1) OSError: Can't load tokenizer for '/models/llama'. If you were trying to load it from 'https://huggingface.co/models', make sure you don't have a local directory with the same name. Otherwise, make sure '/models/llama' is the correct path to a directory containing all relevant files for a PreTrainedTokenizerFast tokenizer.
"""

# vllm/distributed/device_communicators/pynccl_wrapper.py, NCCLLibrary.NCCL_CHECK() (quoted in
# docs/usage/troubleshooting.md "NCCL error: unhandled system error during ncclCommInitRank")
NCCL = """\
(Worker_TP1 pid=420) ERROR 12-01 08:00:09 [multiproc_executor.py:703]   File "/usr/local/lib/python3.12/dist-packages/vllm/distributed/device_communicators/pynccl_wrapper.py", line 277, in ncclCommInitRank
(Worker_TP1 pid=420) ERROR 12-01 08:00:09 [multiproc_executor.py:703] RuntimeError: NCCL error: unhandled system error (run with NCCL_DEBUG=INFO for details)
"""

# vllm/v1/worker/gpu_worker.py, _check_if_gpu_supports_dtype()
BF16 = """\
(EngineCore_DP0 pid=312) ERROR 12-01 08:00:04 [core.py:866] ValueError: Bfloat16 is only supported on GPUs with compute capability of at least 8.0. Your Tesla T4 GPU has compute capability 7.5. You can use float16 instead by explicitly setting the `dtype` flag in CLI, for example: --dtype=half.
"""

# huggingface_hub/utils/_http.py, OfflineModeIsEnabled (raised when HF_HUB_OFFLINE=1 and a download is tried)
OFFLINE = """\
(APIServer pid=1) huggingface_hub.errors.OfflineModeIsEnabled: Cannot reach https://huggingface.co/api/models/meta-llama/Llama-3.1-8B-Instruct: offline mode is enabled. To disable it, please unset the `HF_HUB_OFFLINE` environment variable.
"""

CASES = [
    (FREE_MEMORY, "gpu-memory-in-use", "Free memory on device cuda:0 (7.34/79.19 GiB)"),
    (INSPECTION, "cuda-driver-mismatch", "Error 803"),  # the root cause, when the log shows it, wins
    (INSPECTION_ALONE, "model-inspection-failed", "failed to be inspected"),
    (TOKENIZER_TRUST, "trust-remote-code", "consider setting `trust_remote_code=True`"),
    (CONFIG_TRUST, "trust-remote-code", "Please pass the argument `trust_remote_code=True`"),
    (TOKENIZER_MISSING, "tokenizer-load-failed", "Can't load tokenizer for '/models/llama'"),
    (NCCL, "nccl-error", "NCCL error: unhandled system error"),
    (BF16, "dtype-unsupported", "Bfloat16 is only supported"),
    (OFFLINE, "offline-download", "offline mode is enabled"),
]


@pytest.mark.parametrize(
    ("log", "rule", "evidence"), CASES, ids=[c[1] + f"-{i}" for i, c in enumerate(CASES)]
)
def test_vllm_message(log: str, rule: str, evidence: str) -> None:
    d = get_engine("vllm").diagnose(log)
    assert d is not None, f"no rule matched for {rule}"
    assert d.rule == rule
    assert any(evidence in line for line in d.log_lines), d.log_lines
    assert d.summary.endswith(".") and d.fix


def test_free_memory_fix_names_the_share_and_the_other_tenants() -> None:
    d = get_engine("vllm").diagnose(FREE_MEMORY)
    assert d is not None and "gpu_memory_utilization" in d.fix and "nvidia-smi" in d.fix


def test_failed_inspection_is_not_an_unsupported_architecture() -> None:
    d = get_engine("vllm").diagnose(INSPECTION_ALONE)
    assert d is not None and d.rule != "unsupported-architecture"
    assert "driver" in d.summary


def test_hf_hub_offline_in_a_healthy_log_is_not_a_download_attempt() -> None:
    # vLLM logs the variable on starts that set it (we always do): that alone is no diagnosis, and a
    # real error in the same log keeps its own rule (vllm/v1/core/kv_cache_utils.py's message here).
    log = """\
(APIServer pid=1) INFO 12-01 08:00:01 [arg_utils.py:612] HF_HUB_OFFLINE is True, replace model_id [/models/llama] to model_path [/models/llama]
(APIServer pid=1) INFO 12-01 08:00:01 [utils.py:253] non-default args: {'model': '/models/llama', 'max_model_len': 131072}
(EngineCore_DP0 pid=312) ERROR 12-01 08:01:40 [core.py:866] ValueError: To serve at least one request with the models's max seq len (131072), (16.00 GiB KV cache is needed, which is larger than the available KV cache memory (1.20 GiB). Based on the available memory, the estimated maximum model length is 9808. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.
"""
    d = get_engine("vllm").diagnose(log)
    assert d is not None and d.rule == "oom-kv-cache"
    healthy = (
        log.splitlines()[0]
        + "\n(APIServer pid=1) INFO 12-01 08:02:00 [launcher.py:46] Route: /health, Methods: GET\n"
    )
    assert get_engine("vllm").diagnose(healthy) is None

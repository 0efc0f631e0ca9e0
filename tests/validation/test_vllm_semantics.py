"""The vLLM estimate follows what the pinned vLLM does, checked against vLLM's own figures.

Sources (vLLM's code as read in the stored snapshot of vllm-project/vllm; the pinned
release is 0.33.0 and these rules were read in newer-than-0.10 trees, not in 0.33.0 itself):
- batch defaults: vllm/engine/arg_utils.py `get_batch_defaults` (OPENAI_API_SERVER column:
  8192 tokens / 1024 sequences when total ≥ 70 GiB and "a100" not in the device name, else 2048 / 256);
- budget: vllm/v1/worker/utils.py `request_memory`: ceil(total_memory × gpu_memory_utilization),
  total from CUDA (torch.cuda.mem_get_info), snapshot taken after the CUDA context and NCCL exist;
- figures: a published vLLM V1 startup log for Llama-3.1-8B-Instruct (bf16, one GPU):
    "[gpu_model_runner.py:4130] Model loading took 14.99 GiB memory and 6.720924 seconds"
    "[gpu_worker.py:356] Available KV cache memory: 19.28 GiB"
    "[kv_cache_utils.py:1307] GPU KV cache size: 157,936 tokens"
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cortexctl.engines.vllm.args import VllmArgs
from cortexctl.engines.vllm.estimate import batch_defaults, estimate_vllm, kv_per_token
from cortexctl.validation import inspect_model
from cortexctl.validation.breakdown import GiB, MiB
from cortexctl.validation.gpus import DRIVER_RESERVED_GUESS, pretend_gpus
from tests.validation.hfmodels import LLAMA_31_8B_INSTRUCT, dense_tensors, write_hf_folder


@pytest.fixture(scope="module")
def llama8b(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("llama8b")
    write_hf_folder(folder, LLAMA_31_8B_INSTRUCT, dense_tensors(LLAMA_31_8B_INSTRUCT, "BF16"), shards=4)
    return inspect_model(folder)


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ("h100-80g", (8192, 1024)),  # 79.6 GiB, not an A100
        ("h200-141g", (8192, 1024)),
        ("a100-80g", (2048, 256)),  # large, but "a100" is in the name (PR #17885)
        ("l40s-48g", (2048, 256)),
        ("l4-24g", (2048, 256)),
        ("t4-16g", (2048, 256)),
    ],
)
def test_batch_defaults_by_gpu_class(profile: str, expected: tuple[int, int]) -> None:
    gpu = pretend_gpus(profile=profile)[0]
    assert batch_defaults(gpu.cuda_total_bytes, gpu.name) == expected


def test_unknown_gpu_takes_the_small_defaults() -> None:
    assert batch_defaults(None, None) == (2048, 256)


def test_defaults_reach_the_estimate(llama8b) -> None:  # type: ignore[no-untyped-def]
    h100 = pretend_gpus(profile="h100-80g")[0]
    b = estimate_vllm(llama8b, VllmArgs(), gpu_total_bytes=h100.cuda_total_bytes, gpu_name=h100.name)
    assert (b.facts["max_num_batched_tokens"], b.facts["max_num_seqs"]) == (8192, 1024)
    l4 = pretend_gpus(profile="l4-24g")[0]
    small = estimate_vllm(llama8b, VllmArgs(), gpu_total_bytes=l4.cuda_total_bytes, gpu_name=l4.name)
    assert (small.facts["max_num_batched_tokens"], small.facts["max_num_seqs"]) == (2048, 256)
    assert small.get("activation_peak") < b.get("activation_peak")
    # the recipe's own values win over the defaults
    mine = estimate_vllm(
        llama8b, VllmArgs(max_num_seqs=64, max_num_batched_tokens=4096), gpu_total_bytes=l4.cuda_total_bytes
    )
    assert (mine.facts["max_num_batched_tokens"], mine.facts["max_num_seqs"]) == (4096, 64)


def test_budget_is_against_cuda_total_not_nvml_total() -> None:
    gpu = pretend_gpus(profile="l4-24g")[0]
    assert gpu.total_bytes == 23034 * MiB  # what nvidia-smi reports
    assert gpu.cuda_total_bytes == 23034 * MiB - DRIVER_RESERVED_GUESS


def test_weights_match_vllm_model_loading_line(llama8b) -> None:  # type: ignore[no-untyped-def]
    # "Model loading took 14.99 GiB memory" (vLLM's figure, rounded to 0.01 GiB); vLLM also
    # holds small non-parameter buffers (rotary cos/sin cache), hence the tolerance.
    b = estimate_vllm(llama8b, VllmArgs())
    assert abs(b.get("weights") / GiB - 14.99) < 0.05


def test_kv_tokens_match_vllm_kv_cache_size_line(llama8b) -> None:  # type: ignore[no-untyped-def]
    # "Available KV cache memory: 19.28 GiB" → "GPU KV cache size: 157,936 tokens": the same
    # bytes-per-token as ours (131072 for bf16 Llama-3.1-8B), up to the log's rounding and 16-token blocks.
    per_token = kv_per_token(llama8b, VllmArgs()).total
    tokens = int(19.28 * GiB) // per_token
    assert abs(tokens - 157_936) / 157_936 < 0.001


def test_online_fp8_keeps_embeddings_and_lm_head_16bit(llama8b) -> None:  # type: ignore[no-untyped-def]
    full = estimate_vllm(llama8b, VllmArgs()).get("weights")
    fp8 = estimate_vllm(llama8b, VllmArgs(quantization="fp8")).get("weights")
    emb = 2 * 128256 * 4096 * 2  # embed_tokens + untied lm_head, bf16
    assert fp8 == emb + (full - emb) // 2
    assert fp8 > full // 2


DEEPSEEK_V2_LITE = {  # deepseek-ai/DeepSeek-V2-Lite config.json (the fields validation reads)
    "architectures": ["DeepseekV2ForCausalLM"],
    "model_type": "deepseek_v2",
    "hidden_size": 2048,
    "num_hidden_layers": 27,
    "num_attention_heads": 16,
    "num_key_value_heads": 16,
    "kv_lora_rank": 512,
    "qk_rope_head_dim": 64,
    "qk_nope_head_dim": 128,
    "v_head_dim": 128,
    "max_position_embeddings": 163840,
    "vocab_size": 102400,
    "torch_dtype": "bfloat16",
}


def test_mla_kv_per_token(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(DEEPSEEK_V2_LITE))
    write_hf_folder(
        tmp_path, DEEPSEEK_V2_LITE, [("model.embed_tokens.weight", "BF16", [102400, 2048])], shards=1
    )
    m = inspect_model(tmp_path)
    assert m.mla == (512, 64)
    # one latent of kv_lora_rank + qk_rope_head_dim values per layer, bf16: 27 × 576 × 2
    assert kv_per_token(m, VllmArgs()).total == 27 * 576 * 2 == 31104
    # not split across tensor-parallel ranks (the latent is replicated)
    assert kv_per_token(m, VllmArgs(tensor_parallel_size=2)).total == 31104
    # the per-head formula would have said 27 × 2 × 16 heads × 192 × 2 = 331776 (10.7× more)
    assert 27 * 2 * 16 * 192 * 2 / 31104 > 10


def test_generated_min_capability_wins_over_the_written_table(monkeypatch: pytest.MonkeyPatch) -> None:
    from cortexctl.engines.vllm import capability

    assert capability.minimum_capability("awq_marlin")[0] == 7.5  # type: ignore[index]
    # when scripts/gen_vllm_flags.py recorded vLLM's own get_min_capability() (80 = 8.0), that one counts
    monkeypatch.setattr(
        capability, "flag_data", lambda engine: {"quantization_min_capability": {"awq_marlin": 80}}
    )
    assert capability.minimum_capability("awq_marlin")[0] == 8.0  # type: ignore[index]
    # a method only the generated table knows still gets a rule
    monkeypatch.setattr(capability, "flag_data", lambda engine: {"quantization_min_capability": {"newq": 90}})
    assert capability.minimum_capability("newq")[0] == 9.0  # type: ignore[index]

"""vLLM estimates from real public config.json files and matching safetensors headers.

Weight bytes must equal the sum of the header sizes the test wrote (and the models'
published totals); KV bytes per token must equal the formula worked by hand here.
"""

from __future__ import annotations

from pathlib import Path

from cortexctl.engines.vllm.args import VllmArgs
from cortexctl.engines.vllm.estimate import estimate_vllm, kv_per_token
from cortexctl.validation import inspect_model
from cortexctl.validation.breakdown import GiB
from tests.validation.hfmodels import (
    GEMMA2_9B_IT,
    GEMMA3_1B_IT,
    LLAMA_31_8B_INSTRUCT,
    MIXTRAL_8X7B_INSTRUCT,
    QWEN25_7B_INSTRUCT_AWQ,
    awq_tensors,
    dense_tensors,
    write_hf_folder,
)


def test_llama31_8b(tmp_path: Path) -> None:
    written = write_hf_folder(
        tmp_path, LLAMA_31_8B_INSTRUCT, dense_tensors(LLAMA_31_8B_INSTRUCT, "BF16"), shards=4
    )
    m = inspect_model(tmp_path)
    assert m.weight_bytes == written == 16_060_522_496  # the repo index's published total_size
    assert m.n_params == 8_030_261_248
    assert (m.n_layers, m.n_heads, m.kv_heads(0), m.head_dim_k) == (32, 32, 8, 128)
    assert m.context_length == 131072  # llama3 rope type: max_position_embeddings is already scaled
    # 32 layers × 2 (K, V) × 8 KV heads × 128 head_dim × 2 bytes (bf16)
    assert kv_per_token(m, VllmArgs()).total == 32 * 2 * 8 * 128 * 2 == 131072
    # tensor parallel 2: 4 KV heads per GPU, half the weights
    tp2 = VllmArgs(tensor_parallel_size=2)
    assert kv_per_token(m, tp2).total == 32 * 2 * 4 * 128 * 2
    b = estimate_vllm(m, tp2, gpu_total_bytes=80 * GiB)
    assert b.get("weights") == written // 2


def test_qwen25_7b_awq(tmp_path: Path) -> None:
    written = write_hf_folder(tmp_path, QWEN25_7B_INSTRUCT_AWQ, awq_tensors(QWEN25_7B_INSTRUCT_AWQ), shards=2)
    m = inspect_model(tmp_path)
    assert m.weight_bytes == written
    assert set(m.bytes_by_dtype) == {"I32", "F16"}
    assert m.quantization is not None
    assert (m.quantization.method, m.quantization.bits, m.quantization.group_size) == ("awq", 4, 128)
    assert m.sliding_window is None  # use_sliding_window: false
    # 28 layers × 2 × 4 KV heads × 128 (3584 / 28) × 2 bytes (fp16)
    assert kv_per_token(m, VllmArgs()).total == 28 * 2 * 4 * 128 * 2 == 57344
    # fp8 KV cache halves it
    assert kv_per_token(m, VllmArgs(kv_cache_dtype="fp8")).total == 28 * 2 * 4 * 128 * 1
    b = estimate_vllm(m, VllmArgs(), gpu_total_bytes=24 * GiB)
    assert b.get("weights") == written  # packed int32 + fp16 scales load as they are


def test_mixtral_8x7b(tmp_path: Path) -> None:
    written = write_hf_folder(
        tmp_path, MIXTRAL_8X7B_INSTRUCT, dense_tensors(MIXTRAL_8X7B_INSTRUCT, "BF16"), shards=8
    )
    m = inspect_model(tmp_path)
    assert m.weight_bytes == written == 93_405_585_408  # 46.7 B params in bf16
    assert (m.n_experts, m.n_experts_used) == (8, 2)
    assert kv_per_token(m, VllmArgs()).total == 32 * 2 * 8 * 128 * 2
    # Does not fit one 80 GB GPU; does at tp 2 on two of them.
    one = estimate_vllm(m, VllmArgs(max_model_len=32768), gpu_total_bytes=80 * GiB)
    assert "kv_cache" not in {c.name for c in one.components}
    two = estimate_vllm(m, VllmArgs(tensor_parallel_size=2, max_model_len=32768), gpu_total_bytes=80 * GiB)
    assert two.facts["kv_cache_bytes"] > two.facts["kv_bytes_max_model_len"]


def test_gemma2_9b_sliding_window_and_fp32_checkpoint(tmp_path: Path) -> None:
    written = write_hf_folder(tmp_path, GEMMA2_9B_IT, dense_tensors(GEMMA2_9B_IT, "F32"), shards=4)
    m = inspect_model(tmp_path)
    assert m.weight_bytes == written
    assert m.sliding_window == 4096
    assert m.swa_layers[:4] == (True, False, True, False) and m.n_swa_layers == 21  # even layers slide
    kv = kv_per_token(m, VllmArgs())
    # per layer: 2 × 8 KV heads × 256 head_dim × 2 bytes = 8192; 21 full + 21 sliding layers
    assert (kv.full, kv.swa, kv.total) == (21 * 8192, 21 * 8192, 42 * 8192)
    # one 8192-token sequence: full layers hold 8192 tokens, sliding ones at most 4096
    assert kv.per_sequence(8192) == 21 * 8192 * 8192 + 21 * 8192 * 4096
    b = estimate_vllm(m, VllmArgs(), gpu_total_bytes=80 * GiB)
    assert b.get("weights") == written // 2  # fp32 checkpoint loads as 16-bit


def test_gemma3_1b_pattern(tmp_path: Path) -> None:
    written = write_hf_folder(tmp_path, GEMMA3_1B_IT, dense_tensors(GEMMA3_1B_IT, "BF16"), shards=1)
    m = inspect_model(tmp_path)
    assert m.weight_bytes == written
    # sliding_window_pattern 6: layers 5, 11, 17, 23 are full attention
    assert [i for i, s in enumerate(m.swa_layers) if not s] == [5, 11, 17, 23]
    kv = kv_per_token(m, VllmArgs())
    per_layer = 2 * 1 * 256 * 2
    assert (kv.full, kv.swa) == (4 * per_layer, 22 * per_layer)


def test_gpu_memory_utilization_semantics(tmp_path: Path) -> None:
    write_hf_folder(tmp_path, LLAMA_31_8B_INSTRUCT, dense_tensors(LLAMA_31_8B_INSTRUCT, "BF16"), shards=4)
    m = inspect_model(tmp_path)
    total = 80 * GiB
    b = estimate_vllm(m, VllmArgs(gpu_memory_utilization=0.5, max_model_len=8192), gpu_total_bytes=total)
    budget = int(total * 0.5)
    used = sum(b.get(n) for n in ("weights", "activation_peak", "cuda_graphs", "runtime_overhead"))
    assert b.facts["vllm_budget"] == budget
    assert b.get("kv_cache") == budget - used
    assert b.facts["max_concurrent_tokens"] == (budget - used) // 131072
    assert b.gpu_bytes == budget  # vLLM holds util × total, whatever the model needs
    # a 24 GB card at 0.9 cannot hold a 131072-token sequence of the 8B model
    small = estimate_vllm(m, VllmArgs(), gpu_total_bytes=24 * GiB)
    assert small.facts["kv_cache_bytes"] < small.facts["kv_bytes_max_model_len"]

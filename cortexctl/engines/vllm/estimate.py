"""vLLM memory estimate per GPU, with `gpu_memory_utilization` semantics.

What vLLM does at start (v1 engine; read in vllm/v1/worker/gpu_worker.py and
vllm/v1/worker/utils.py `request_memory`): it creates the CUDA context and the NCCL
communicators, takes a memory snapshot, and refuses to start unless the free memory is
at least `ceil(util × CUDA total)` ("Free memory on device … on startup is less than
desired GPU memory utilization"). That budget then holds the weights, the profiling
pass's activation peak (max_num_batched_tokens tokens) and the non-torch memory that
grew during it; the rest is the KV cache. The CUDA context and NCCL were allocated
before the snapshot: they lie OUTSIDE the budget but must be free at start and count
when models share a GPU. The KV cache must hold one sequence of max_model_len tokens
or vLLM refuses to start (vllm/v1/core/kv_cache_utils.py). The activation, graph and
context figures are estimates from the model's shape; weights and KV per token are
exact. Batch defaults follow vllm/engine/arg_utils.py `get_batch_defaults` for the
OpenAI server (UsageContext.OPENAI_API_SERVER).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cortexctl.engines.vllm.args import VllmArgs
from cortexctl.recipes.placement import outside_share_bytes
from cortexctl.validation.breakdown import Breakdown, Component, GiB, MiB
from cortexctl.validation.modelinfo import ModelInfo

FLOAT_DTYPES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8}
# vllm/engine/arg_utils.py get_batch_defaults, OPENAI_API_SERVER column: GPUs of 70 GiB or
# more whose name does not contain "a100" get 8192 tokens / 1024 sequences, all others
# 2048 / 256 ("Setting large max_num_batched_tokens for A100 reduces throughput, see PR #17885").
LARGE_GPU_BYTES = 70 * GiB
LARGE_GPU_BATCH = (8192, 1024)
SMALL_GPU_BATCH = (2048, 256)


def batch_defaults(gpu_total_bytes: int | None, gpu_name: str | None) -> tuple[int, int]:
    """(max_num_batched_tokens, max_num_seqs) vLLM's OpenAI server picks for this GPU."""
    if gpu_total_bytes is not None and gpu_total_bytes >= LARGE_GPU_BYTES:
        if "a100" not in (gpu_name or "").lower():
            return LARGE_GPU_BATCH
    return SMALL_GPU_BATCH


def outside_budget_bytes(args: VllmArgs) -> int:
    """Memory a vLLM process holds outside util × total: CUDA context, NCCL (estimates)."""
    return outside_share_bytes(args.tensor_parallel_size * args.pipeline_parallel_size)


@dataclass(frozen=True)
class KvPerToken:
    full: int  # bytes per token for full-attention layers, per GPU
    swa: int  # bytes per token for sliding-window layers, per GPU
    window: int | None

    @property
    def total(self) -> int:
        return self.full + self.swa

    def per_sequence(self, tokens: int) -> int:
        """KV bytes one sequence of `tokens` needs: sliding layers keep at most a window."""
        swa_tokens = min(tokens, self.window) if self.window else tokens
        return self.full * tokens + self.swa * swa_tokens


def target_dtype_bytes(model: ModelInfo, args: VllmArgs) -> int:
    if args.dtype in ("float", "float32"):
        return 4
    return 2  # auto picks the checkpoint's 16-bit type; fp32 checkpoints are downcast


def kv_dtype_bytes(model: ModelInfo, args: VllmArgs) -> int:
    return 1 if args.kv_cache_dtype.startswith("fp8") else target_dtype_bytes(model, args)


def kv_per_token(model: ModelInfo, args: VllmArgs) -> KvPerToken:
    """2 (K and V) × KV heads on this GPU × head_dim × dtype bytes, summed over layers.

    MLA models (DeepSeek-V2/V3, Kimi K2: config.json has kv_lora_rank) cache one
    compressed latent per token and layer instead: kv_lora_rank + qk_rope_head_dim
    values, the same on every tensor-parallel rank (vllm/v1/kv_cache_interface.py
    MLAAttentionSpec: one "head" of that size, not split by tp)."""
    tp = args.tensor_parallel_size
    pp = args.pipeline_parallel_size
    dtype = kv_dtype_bytes(model, args)
    if model.mla is not None:
        kv_lora_rank, rope_dim = model.mla
        full = model.n_layers * (kv_lora_rank + rope_dim) * dtype
        return KvPerToken(full=-(-full // pp), swa=0, window=None)
    full = swa = 0
    for il in range(model.n_layers):
        heads = max(1, model.kv_heads(il) // tp)  # KV heads are replicated when tp > n_kv_heads
        size = (model.head_dim_k + model.head_dim_v) * heads * dtype
        if model.swa_layers and model.swa_layers[il]:
            swa += size
        else:
            full += size
    # pipeline parallel: each GPU holds the KV of its own stage's layers
    return KvPerToken(full=-(-full // pp), swa=-(-swa // pp), window=model.sliding_window)


def weight_bytes_per_gpu(model: ModelInfo, args: VllmArgs) -> tuple[int, list[str]]:
    notes: list[str] = []
    target = target_dtype_bytes(model, args)
    total = 0
    online_fp8 = args.quantization == "fp8" and not (
        model.quantization and model.quantization.method == "fp8"
    )
    for dtype, n in model.bytes_by_dtype.items():
        size = FLOAT_DTYPES.get(dtype)
        if size is None:
            total += n  # packed quantized weights (I32, U8, F8 …) load as they are
        else:
            total += n * target // size
    if online_fp8:
        # vLLM's Fp8LinearMethod quantizes linear layers only; the embedding and lm_head
        # (VocabParallelEmbedding / ParallelLMHead) keep the model dtype.
        keep = embedding_bytes(model) * target // 2
        total = keep + (total - keep) // 2
        notes.append(
            "--quantization fp8 on a 16-bit checkpoint: linear layers quantized to 8 bits while loading; "
            "embeddings and lm_head stay 16-bit"
        )
    shards = args.tensor_parallel_size * args.pipeline_parallel_size
    if shards > 1:
        notes.append(
            f"weights split over {shards} GPUs "
            f"(tp {args.tensor_parallel_size} × pp {args.pipeline_parallel_size})"
        )
    return -(-total // shards), notes


def embedding_bytes(model: ModelInfo) -> int:
    """16-bit bytes of the input embedding plus an untied lm_head (from the tensor names)."""
    named = [
        t.nbytes * 2 // FLOAT_DTYPES[t.dtype]
        for t in model.tensors
        if t.dtype in FLOAT_DTYPES and (t.name.endswith("embed_tokens.weight") or t.name == "lm_head.weight")
    ]
    return sum(named) if named else model.vocab_size * model.n_embd * 2


def activation_peak(model: ModelInfo, args: VllmArgs, batch: tuple[int, int] = SMALL_GPU_BATCH) -> int:
    """Profiling pass of max_num_batched_tokens tokens, plus fp32 logits of max_num_seqs rows."""
    tokens = args.max_num_batched_tokens or batch[0]
    seqs = args.max_num_seqs or batch[1]
    tp = args.tensor_parallel_size
    dtype = target_dtype_bytes(model, args)
    n_ff = (model.n_ff or 4 * model.n_embd) * (model.n_experts_used or 1)
    qkv = (model.n_heads + 2 * max(model.n_kv_heads)) * model.head_dim_k
    per_token = 4 * model.n_embd + (2 * n_ff + qkv) // tp
    return tokens * per_token * dtype + seqs * (model.vocab_size // tp) * 4 * 2


def cuda_graph_bytes(model: ModelInfo, args: VllmArgs, batch: tuple[int, int] = SMALL_GPU_BATCH) -> int:
    if args.enforce_eager:
        return 0
    # Captured graphs keep their largest batch's intermediates; a rough, shape-based
    # figure (vLLM logs 0.3–1.5 GiB for 7–70B models).
    seqs = args.max_num_seqs or batch[1]
    return 256 * MiB + min(seqs, 512) * model.n_layers * model.n_embd * 2 * 4 // args.tensor_parallel_size


def estimate_vllm(
    model: ModelInfo, args: VllmArgs, *, gpu_total_bytes: int | None = None, gpu_name: str | None = None
) -> Breakdown:
    """Per-GPU need; `gpu_total_bytes` is CUDA's total (GpuInfo.cuda_total_bytes), which vLLM's
    budget and its batch defaults are computed from."""
    batch = batch_defaults(gpu_total_bytes, gpu_name)
    weights, notes = weight_bytes_per_gpu(model, args)
    act = activation_peak(model, args, batch)
    graphs = cuda_graph_bytes(model, args, batch)
    outside = outside_budget_bytes(args)
    kv = kv_per_token(model, args)
    max_len = args.max_model_len or model.context_length
    per_seq = kv.per_sequence(max_len)
    comps = [
        Component("weights", weights, "gpu", "exact, from the model's tensor headers"),
        Component("activation_peak", act, "gpu", "profiling pass (estimate)"),
        Component(
            "cuda_graphs",
            graphs,
            "gpu",
            "enforce_eager" if args.enforce_eager else "estimate; counted inside the budget (conservative)",
        ),
        Component(
            "runtime_overhead",
            outside,
            "gpu",
            "CUDA context, cuBLAS, NCCL (estimate); outside vLLM's util × total budget",
        ),
    ]
    tokens = args.max_num_batched_tokens or batch[0]
    seqs = args.max_num_seqs or batch[1]
    facts: dict[str, object] = {
        "kv_bytes_per_token": kv.total,
        "kv_bytes_per_token_full": kv.full,
        "kv_bytes_per_token_swa": kv.swa,
        "max_model_len": max_len,
        "kv_bytes_max_model_len": per_seq,
        "gpu_memory_utilization": args.gpu_memory_utilization,
        "max_num_batched_tokens": tokens,
        "max_num_seqs": seqs,
        "outside_budget_bytes": outside,
    }
    if args.max_num_batched_tokens is None or args.max_num_seqs is None:
        notes.append(
            f"vLLM's defaults for this GPU: max_num_batched_tokens {batch[0]}, max_num_seqs {batch[1]} "
            "(8192/1024 on GPUs of 70 GiB or more other than A100, else 2048/256)"
        )
    if model.mla is not None:
        notes.append(
            f"MLA attention: {model.mla[0]} + {model.mla[1]} cached values per token and layer, "
            "the same on every tensor-parallel GPU"
        )
    if gpu_total_bytes:
        budget = math.ceil(gpu_total_bytes * args.gpu_memory_utilization)
        kv_bytes = budget - weights - act - graphs
        facts.update(
            vllm_budget=budget, kv_cache_bytes=max(0, kv_bytes), free_needed_at_start=budget + outside
        )
        if kv_bytes > 0:
            comps.append(
                Component("kv_cache", kv_bytes, "gpu", "what vLLM keeps of util × total for the KV cache")
            )
            facts["max_concurrent_tokens"] = kv_bytes // kv.total if kv.total else 0
            facts["max_concurrent_sequences_at_max_len"] = kv_bytes // per_seq if per_seq else 0
            notes.append(
                f"vLLM takes {args.gpu_memory_utilization:.0%} of CUDA's {gpu_total_bytes / GiB:.2f} GiB = "
                f"{budget / GiB:.2f} GiB; {kv_bytes / GiB:.2f} GiB remain for the KV cache: "
                f"{facts['max_concurrent_tokens']} tokens at {kv.total} B/token, "
                f"{facts['max_concurrent_sequences_at_max_len']} sequence(s) of {max_len} tokens"
            )
        else:
            notes.append(
                f"util × total = {budget / GiB:.2f} GiB does not even hold weights + activations + graphs"
            )
    if kv.swa:
        notes.append(
            f"sliding-window layers keep at most {kv.window} tokens per sequence "
            f"({kv.swa} of {kv.total} KV bytes/token)"
        )
    return Breakdown(engine="vllm", components=tuple(comps), notes=tuple(notes), facts=facts, per_gpu=True)

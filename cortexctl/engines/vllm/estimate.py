"""vLLM memory estimate per GPU, with `gpu_memory_utilization` semantics.

vLLM (v1 engine) loads the weights, profiles one forward pass of
max_num_batched_tokens tokens (activation peak), counts memory torch does not own
(CUDA context, NCCL, cuBLAS workspaces), captures CUDA graphs, and gives whatever is
left of `util × total memory` to the KV cache. It refuses to start when that cache
cannot hold one sequence of max_model_len tokens. The activation, graph and runtime
figures here are estimates from the model's shape; the weights and KV-per-token
figures are exact.
"""

from __future__ import annotations

from dataclasses import dataclass

from cortexctl.engines.vllm.args import VllmArgs
from cortexctl.validation.breakdown import Breakdown, Component, GiB, MiB
from cortexctl.validation.modelinfo import ModelInfo

FLOAT_DTYPES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8}
DEFAULT_MAX_NUM_BATCHED_TOKENS = 8192  # vLLM's default for the OpenAI server on data-center GPUs
DEFAULT_MAX_NUM_SEQS = 256
CUDA_CONTEXT_BYTES = 512 * MiB  # CUDA context + cuBLAS/cuDNN workspaces, seen per process
NCCL_BYTES = 256 * MiB  # NCCL buffers when tensor parallel > 1


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
    """2 (K and V) × KV heads on this GPU × head_dim × dtype bytes, summed over layers."""
    tp = args.tensor_parallel_size
    pp = args.pipeline_parallel_size
    dtype = kv_dtype_bytes(model, args)
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
        total = total // 2
        notes.append("--quantization fp8 on a 16-bit checkpoint: weights quantized to 8 bits while loading")
    shards = args.tensor_parallel_size * args.pipeline_parallel_size
    if shards > 1:
        notes.append(
            f"weights split over {shards} GPUs "
            f"(tp {args.tensor_parallel_size} × pp {args.pipeline_parallel_size})"
        )
    return -(-total // shards), notes


def activation_peak(model: ModelInfo, args: VllmArgs) -> int:
    """Profiling pass of max_num_batched_tokens tokens, plus fp32 logits of max_num_seqs rows."""
    tokens = args.max_num_batched_tokens or DEFAULT_MAX_NUM_BATCHED_TOKENS
    seqs = args.max_num_seqs or DEFAULT_MAX_NUM_SEQS
    tp = args.tensor_parallel_size
    dtype = target_dtype_bytes(model, args)
    n_ff = (model.n_ff or 4 * model.n_embd) * (model.n_experts_used or 1)
    qkv = (model.n_heads + 2 * max(model.n_kv_heads)) * model.head_dim_k
    per_token = 4 * model.n_embd + (2 * n_ff + qkv) // tp
    return tokens * per_token * dtype + seqs * (model.vocab_size // tp) * 4 * 2


def cuda_graph_bytes(model: ModelInfo, args: VllmArgs) -> int:
    if args.enforce_eager:
        return 0
    # Captured graphs keep their largest batch's intermediates; a rough, shape-based
    # figure (vLLM logs 0.3–1.5 GiB for 7–70B models).
    seqs = args.max_num_seqs or DEFAULT_MAX_NUM_SEQS
    return 256 * MiB + min(seqs, 512) * model.n_layers * model.n_embd * 2 * 4 // args.tensor_parallel_size


def estimate_vllm(model: ModelInfo, args: VllmArgs, *, gpu_total_bytes: int | None = None) -> Breakdown:
    weights, notes = weight_bytes_per_gpu(model, args)
    act = activation_peak(model, args)
    graphs = cuda_graph_bytes(model, args)
    runtime = CUDA_CONTEXT_BYTES + (NCCL_BYTES if args.tensor_parallel_size > 1 else 0)
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
        Component("runtime_overhead", runtime, "gpu", "CUDA context, cuBLAS, NCCL (estimate)"),
    ]
    facts: dict[str, object] = {
        "kv_bytes_per_token": kv.total,
        "kv_bytes_per_token_full": kv.full,
        "kv_bytes_per_token_swa": kv.swa,
        "max_model_len": max_len,
        "kv_bytes_max_model_len": per_seq,
        "gpu_memory_utilization": args.gpu_memory_utilization,
    }
    if gpu_total_bytes:
        budget = int(gpu_total_bytes * args.gpu_memory_utilization)
        kv_bytes = budget - weights - act - graphs - runtime
        facts.update(vllm_budget=budget, kv_cache_bytes=max(0, kv_bytes))
        if kv_bytes > 0:
            comps.append(
                Component("kv_cache", kv_bytes, "gpu", "what vLLM keeps of util × total for the KV cache")
            )
            facts["max_concurrent_tokens"] = kv_bytes // kv.total if kv.total else 0
            facts["max_concurrent_sequences_at_max_len"] = kv_bytes // per_seq if per_seq else 0
            notes.append(
                f"vLLM takes {args.gpu_memory_utilization:.0%} of {gpu_total_bytes / GiB:.1f} GiB = "
                f"{budget / GiB:.2f} GiB; {kv_bytes / GiB:.2f} GiB remain for the KV cache: "
                f"{facts['max_concurrent_tokens']} tokens at {kv.total} B/token, "
                f"{facts['max_concurrent_sequences_at_max_len']} sequence(s) of {max_len} tokens"
            )
        else:
            notes.append(
                f"util × total = {budget / GiB:.2f} GiB does not even hold weights + activations + overhead"
            )
    if kv.swa:
        notes.append(
            f"sliding-window layers keep at most {kv.window} tokens per sequence "
            f"({kv.swa} of {kv.total} KV bytes/token)"
        )
    return Breakdown(engine="vllm", components=tuple(comps), notes=tuple(notes), facts=facts, per_gpu=True)

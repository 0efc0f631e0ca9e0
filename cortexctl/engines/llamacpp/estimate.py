"""llama.cpp (llama-server) memory estimate, following what llama.cpp itself allocates.

Sources of each rule (llama.cpp as vendored in llama-cpp-python 0.3.36):
- per-architecture behaviour (sliding windows and their layer pattern, KV cache vs
  recurrent state vs none, weight repacking) comes from data generated from that source
  (llamacpp_arch, scripts/gen_llamacpp_arch.py); an architecture not in it makes the
  estimate `approximate`, and the breakdown says which part is guessed.
- n_ctx is padded to 256; with `-np N` and no `--kv-unified`, each of the N streams gets
  pad(n_ctx / N, 256) cells, so `-c` is the TOTAL across slots (llama-context.cpp).
- sliding-window layers get their own cache of pad(min(n_ctx_seq, n_swa·(unified ? N : 1)
  + n_ubatch), 256) cells per stream (llama-kv-cache-iswa.cpp), unless `--swa-full`.
- K/V rows are ggml rows of the cache type: n_embd_k_gqa(il) elements per cell.
- weights: mapped (mmap) or loaded, plus CPU_REPACK copies (llamacpp_weights).
- the output buffer holds n_vocab floats for each of n_seq_max outputs (output_reserve);
  in embeddings mode the first request grows it to n_batch rows (every token is an output).
- the compute buffer is the ggml-alloc peak of the worst-case graph (llamacpp_compute).
- context checkpoints (server-context.cpp): before the last tokens of a completion prompt the
  server copies the slot's state that cannot be rolled back (llama_state_seq_get_data with
  PARTIAL_ONLY: the sliding-window cache, a hybrid's or recurrent model's recurrent state)
  to the heap, and keeps up to --ctx-checkpoints (32) of them per slot; none for embeddings.
- graph metadata (llama-graph.cpp llm_graph_result, llama-context.cpp graph_max_nodes): each
  graph result zeroes a ggml_tensor + object per node of the node budget, plus the graph's
  node, leaf and hash tables, on the heap. The budget is max(1024, 8 · n_tensors) for most
  architectures (inside `runtime`), but n_tokens × 40 (or more) for some (qwen35, qwen3next …:
  arch data `graph_nodes`), 8 MiB per result at a 512-token ubatch; counted as `graph`: the
  excess over the default for the two results held from the start (the reserve's and the
  warm-up's) and, for a completion that takes a context checkpoint, a third (its prompt runs
  as an output-less batch and then the last tokens: two graph results).
- what the process holds besides ggml buffers (runtime) and the server's prompt cache,
  which keeps finished prompts' KV state up to `--cache-ram` (default 8 GiB).
- `-ngl k` offloads the last k repeating layers; `-ngl > n_layer` also offloads the output
  layer; token embeddings always stay on the host. (Not checked against a CUDA build.)
"""

from __future__ import annotations

from collections.abc import Sequence

from cortexctl.engines.llamacpp.arch import graph_max_nodes, unmeasured_rules
from cortexctl.engines.llamacpp.args import LlamaCppArgs
from cortexctl.engines.llamacpp.compute import F32, compute_bytes
from cortexctl.engines.llamacpp.estimate_flags import LlamaCppFlags
from cortexctl.engines.llamacpp.weights import place_weights
from cortexctl.validation.breakdown import Breakdown, Component, MiB, fmt_bytes
from cortexctl.validation.modelinfo import ModelInfo

# llama-server's resident memory besides its ggml buffers, measured on the pinned build
# (tests/validation/test_fit_matrix.py: RSS minus the resident buffers, before and after
# a first request): code, libraries, heap, tokenizer tables, HTTP and slot state.
RUNTIME_BASE = 15 * MiB + MiB // 2  # measured: 21.5 MiB at start with a 32k vocabulary
RUNTIME_PER_VOCAB_TOKEN = 197  # measured: +6.3 MiB from a 32k to a 64k vocabulary
# the first completion's sampler: common_sampler's candidate array, one llama_token_data
# (id, logit, p: 12 bytes) per vocabulary token (common/sampling.cpp cur.resize(n_vocab));
# a 1.5 MiB constant fitted on an earlier build put RSS 2–3 MiB above the measured range
RUNTIME_GENERATION_PER_VOCAB_TOKEN = 12


def pad(n: int, to: int) -> int:
    return (n + to - 1) // to * to


def row_bytes(cache_type: str, n: int) -> int:
    from cortexctl.validation.gguf_constants import GGML_QUANT_SIZES, GGMLQuantizationType

    block, size = GGML_QUANT_SIZES[GGMLQuantizationType[cache_type.upper()]]
    return n // block * size


def kv_cells(model: ModelInfo, f: LlamaCppFlags) -> dict[str, int]:
    n_ctx = pad(f.n_ctx, 256)
    if f.kv_unified:
        n_stream, n_ctx_seq = 1, n_ctx
    else:
        n_stream = f.parallel
        n_ctx_seq = pad(n_ctx // f.parallel, 256)
        n_ctx = n_ctx_seq * f.parallel
    swa = n_ctx_seq
    if model.sliding_window and not f.swa_full:
        swa = pad(min(n_ctx_seq, model.sliding_window * (f.parallel if f.kv_unified else 1) + f.ubatch), 256)
    return {
        "n_ctx": n_ctx,
        "n_ctx_seq": n_ctx_seq,
        "n_stream": n_stream,
        "cells_full": n_ctx_seq * n_stream,
        "cells_swa": swa * n_stream,
    }


def _kv(model: ModelInfo, f: LlamaCppFlags, cells: dict[str, int], first_gpu_layer: int) -> dict[str, int]:
    out = {"full_gpu": 0, "full_host": 0, "swa_gpu": 0, "swa_host": 0}
    if model.memory not in ("kv", "hybrid"):
        return out
    for il in range(model.n_layers):
        n_kv = model.kv_heads(il)
        if n_kv == 0 or not model.owns_kv(il):
            continue  # recurrent layers of a hybrid, layers without attention or reusing another's KV
        swa = bool(model.swa_layers) and model.swa_layers[il]
        n = cells["cells_swa"] if swa else cells["cells_full"]
        size = n * (
            row_bytes(f.cache_type_k, model.head_dim_k * n_kv)
            + (row_bytes(f.cache_type_v, model.head_dim_v * n_kv) if model.v_cache else 0)
        )
        if model.indexer_layers and model.indexer_layers[il]:
            # DSA (llama_kv_cache_dsa): a K-only indexer cache beside the MLA one, one key head
            size += n * row_bytes(f.cache_type_k, model.indexer_head_dim)
        where = "gpu" if f.kv_offload and il >= first_gpu_layer and f.gpu_layers > 0 else "host"
        out[f"{'swa' if swa else 'full'}_{where}"] += size
    return out


def _recurrent_bytes(model: ModelInfo, f: LlamaCppFlags) -> int:
    """llama_memory_recurrent: max(1, n_seq_max) cells of r + s f32 state per recurrent layer
    (every layer of a recurrent model; a hybrid's recurrent layers)."""
    if model.memory not in ("recurrent", "hybrid") or not model.recurrent:
        return 0
    n_rec = model.n_layers if model.memory == "recurrent" else sum(model.recurrent_layers)
    per_layer = (model.recurrent.get("r", 0) + model.recurrent.get("s", 0)) * F32
    return max(1, f.parallel) * per_layer * n_rec


def checkpoint_bytes(model: ModelInfo, f: LlamaCppFlags, n_tokens: int | None = None) -> int:
    """One context checkpoint of one slot: 0 when llama-server takes none for this model/mode.

    The server checkpoints when the model has sliding-window layers (and no --swa-full) or
    recurrent state (server-context.cpp: n_swa > 0, or seq_rm FULL/RS), for completions only.
    A sliding-window cache holds at most n_swa cells of a sequence when the checkpoint is
    taken (measured: 256 of 508 prompt tokens at n_swa 256); `n_tokens` caps it for a
    shorter prompt.
    """
    if f.embeddings or f.ctx_checkpoints <= 0:
        return 0
    size = 0
    if model.sliding_window and model.n_swa_layers and not f.swa_full:
        cells = model.sliding_window if n_tokens is None else min(model.sliding_window, n_tokens)
        per_cell = sum(
            row_bytes(f.cache_type_k, model.head_dim_k * model.kv_heads(il))
            + (row_bytes(f.cache_type_v, model.head_dim_v * model.kv_heads(il)) if model.v_cache else 0)
            for il in range(model.n_layers)
            if model.swa_layers[il] and model.kv_heads(il) and model.owns_kv(il)
        )
        size += cells * per_cell
    if model.memory in ("recurrent", "hybrid") and model.recurrent:
        size += _recurrent_bytes(model, f) // max(1, f.parallel)
    return size


GGML_NODE_BYTES = 32 + 336  # ggml_object + ggml_tensor (ggml_tensor_overhead)
_PRIMES = (2, 3, 5, 11, 17, 37, 67, 131, 257, 521, 1031, 2053, 4099, 8209, 16411, 32771, 65537, 131101,
           262147, 524309, 1048583, 2097169, 4194319, 8388617, 16777259, 33554467)  # fmt: skip


def graph_meta_bytes(n_nodes: int) -> int:
    """One llm_graph_result's buf_compute_meta: ggml_tensor_overhead() × nodes +
    ggml_graph_overhead_custom(nodes): node and leaf pointers, a hash table of the next
    prime ≥ 2 × nodes (use counts + keys) and its bitset."""
    hash_size = next((p for p in _PRIMES if p >= 2 * n_nodes), 2 * n_nodes | 1)
    return GGML_NODE_BYTES * n_nodes + 16 * n_nodes + 12 * hash_size + (hash_size + 31) // 32 * 4 + 128


def graph_result_extra(model: ModelInfo, f: LlamaCppFlags, n_ctx: int) -> int:
    """Heap bytes per graph result beyond the default node budget (0 for most architectures)."""
    n_tokens = min(n_ctx, f.ubatch)
    nodes, default = graph_max_nodes(model.architecture, n_tokens, len(model.tensors))
    return max(0, graph_meta_bytes(nodes) - graph_meta_bytes(default))


def runtime_bytes(model: ModelInfo, f: LlamaCppFlags, staging: int = 0) -> int:
    """llama-server's own resident memory next to the ggml buffers (see RUNTIME_* above).

    `staging`: without mmap, each repacked tensor is read through a heap buffer of its size
    (llama-model-loader.cpp read_buf); glibc may keep the largest resident (measured: it
    does at -c 16384, not always at smaller contexts), so it is counted.
    """
    base = RUNTIME_BASE + model.vocab_size * RUNTIME_PER_VOCAB_TOKEN
    sampler = 0 if f.embeddings else model.vocab_size * RUNTIME_GENERATION_PER_VOCAB_TOKEN
    return base + sampler + staging


def estimate_llamacpp(
    model: ModelInfo,
    args: LlamaCppArgs,
    *,
    command: Sequence[str] | None = None,
    cpu_features: frozenset[str] | None = None,
) -> Breakdown:
    """Estimate for `args`, or for the exact llama-server argv when `command` is given."""
    f = LlamaCppFlags.from_command(command, model) if command else LlamaCppFlags.from_args(args, model)
    n_layer = model.n_layers
    first_gpu_layer = n_layer - min(f.gpu_layers, n_layer)
    notes: list[str] = []
    guessed = list(model.approximate) + unmeasured_rules(model.architecture, model.memory, model.recurrent)

    w = place_weights(model, gpu_layers=f.gpu_layers, mmap=f.mmap, repack=f.repack, features=cpu_features)
    if w.tied_gpu_copy:
        notes.append("tied embeddings: the output layer is a GPU copy of token_embd")
    if w.repack:
        layouts = ", ".join(sorted(w.repacked))
        notes.append(
            f"CPU_REPACK: {fmt_bytes(w.repack)} of weights repacked ({layouts}) next to the file mapping"
        )

    cells = kv_cells(model, f)
    kv = _kv(model, f, cells, first_gpu_layer)
    recurrent = _recurrent_bytes(model, f)
    if model.memory in ("recurrent", "hybrid") and not model.recurrent:
        guessed.append("recurrent state: the GGUF has no ssm/wkv sizes we know; not counted")

    # output buffer: n_vocab floats per sequence at start (output_reserve(n_seq_max)); in
    # embeddings mode every token of an input is an output, so the first request grows it
    # to n_batch rows of logits + embeddings.
    row = (model.vocab_size + (model.n_embd if f.embeddings else 0)) * F32
    out = f.parallel * row
    n_batch = min(f.n_batch, cells["n_ctx"]) if model.causal else f.n_batch  # llama-context.cpp
    out_growth = max(0, n_batch - f.parallel) * row if f.embeddings else 0
    compute = compute_bytes(model, f, cells)
    compute_host = compute if f.gpu_layers == 0 else model.n_embd * min(cells["n_ctx"], f.ubatch) * F32 * 2
    compute_gpu = compute if f.gpu_layers > 0 else 0
    checkpoint = checkpoint_bytes(model, f)
    graph_extra = graph_result_extra(model, f, cells["n_ctx"])
    graph_results = 3 if checkpoint else 2
    checkpoints = checkpoint * f.ctx_checkpoints * f.parallel
    prompt_cache = f.cache_ram_mib * MiB if f.cache_ram_mib > 0 else 0
    if f.cache_ram_mib < 0:
        prompt_cache = (kv["full_host"] + kv["swa_host"]) * 2
        guessed.append("prompt cache: --cache-ram -1 has no limit; counted as two full KV caches")

    if model.sliding_window:
        notes.append(
            f"{model.n_swa_layers} of {n_layer} layers use a {model.sliding_window}-token sliding window: "
            f"{cells['cells_swa']} cells for them vs {cells['cells_full']} for full-attention layers"
        )
    if f.parallel > 1:
        notes.append(
            f"-c {f.n_ctx} is shared by {f.parallel} slots"
            + ("" if f.kv_unified else f": {cells['n_ctx_seq']} tokens each")
        )
    if f.embeddings:
        notes.append(
            f"embeddings mode: n_batch = n_ubatch = {f.n_batch}; every input token is an output "
            f"(logits for {min(cells['n_ctx'], f.ubatch)} tokens in the compute graph)"
        )
    if prompt_cache:
        notes.append(
            f"prompt cache: llama-server keeps finished prompts' KV state in RAM up to --cache-ram "
            f"({fmt_bytes(prompt_cache)}); set `--cache-ram N` (MiB) in extra_args to bound it"
        )
    if checkpoints:
        notes.append(
            f"context checkpoints: up to {f.ctx_checkpoints} per slot of {fmt_bytes(checkpoint)} each "
            f"(the state a completion cannot roll back); `--ctx-checkpoints N` in extra_args bounds it"
        )
    if f.gpu_layers:
        notes.append("GPU path (-ngl): same graph model as on CPU, not checked against a CUDA build")
    if f.gpu_layers and f.gpu_layers <= n_layer:
        notes.append(f"partial offload: layers {first_gpu_layer}..{n_layer - 1} on GPU, the rest on the host")

    kv_note = f"K {f.cache_type_k} / V {f.cache_type_v}"
    comps = [
        Component(
            "weights", w.gpu, "gpu", f"{model.file_type or ''} layers offloaded by -ngl {f.gpu_layers}"
        ),
        Component("weights", w.host, "host", "file mapping (mmap)" if f.mmap else "loaded (no mmap)"),
        Component("repack", w.repack, "host", "CPU_REPACK copies of repackable weights"),
        Component("kv_full", kv["full_gpu"], "gpu", f"{cells['cells_full']} cells, {kv_note}"),
        Component("kv_full", kv["full_host"], "host", f"{cells['cells_full']} cells, {kv_note}"),
        Component("kv_swa", kv["swa_gpu"], "gpu", f"{cells['cells_swa']} cells (sliding window)"),
        Component("kv_swa", kv["swa_host"], "host", f"{cells['cells_swa']} cells (sliding window)"),
        Component("recurrent", recurrent, "host", f"state for {max(1, f.parallel)} sequence(s)"),
        Component(
            "output", out, "host", f"logits{' + embeddings' if f.embeddings else ''} for {f.parallel} rows"
        ),
        Component(
            "output_growth", out_growth, "host", f"first embedding request: output grows to {n_batch} rows"
        ),
        Component("compute", compute_gpu, "gpu", f"worst-case graph, ubatch {f.ubatch}"),
        Component("compute", compute_host, "host", f"worst-case graph, ubatch {f.ubatch}"),
        Component(
            "runtime",
            runtime_bytes(model, f, 0 if f.mmap else w.largest_repacked),
            "host",
            "llama-server process (code, vocab, slots" + ("" if f.mmap else ", load read buffer") + ")",
        ),
        Component(
            "graph",
            graph_extra * graph_results,
            "host",
            f"graph metadata: {graph_results} results × the node budget beyond the default",
        ),
        Component("checkpoints", checkpoints, "host", f"{f.ctx_checkpoints} per slot × {f.parallel} slot(s)"),
        Component("prompt_cache", prompt_cache, "host", "grows with distinct prompts, up to --cache-ram"),
    ]
    facts = dict(
        cells,
        ubatch=f.ubatch,
        n_batch=f.n_batch,
        flash_attn=f.flash_attn,
        kv_unified=f.kv_unified,
        gpu_layers=f.gpu_layers,
        parallel=f.parallel,
        embeddings=f.embeddings,
        mmap=f.mmap,
        repack=f.repack,
        staging=0 if f.mmap else w.largest_repacked,  # counted in runtime; glibc may or may not keep it
        checkpoint=checkpoint,
        graph_result=graph_extra,  # per graph result; two held from the start
        ctx_checkpoints=f.ctx_checkpoints,
        estimate="approximate" if guessed else "exact-rules",
        guessed=guessed,
    )
    if guessed:
        notes.extend(f"estimate: approximate ({g})" for g in guessed)
    return Breakdown(
        engine="llamacpp",
        components=tuple(c for c in comps if c.bytes or (c.name == "weights" and c.device == "host")),
        notes=tuple(notes),
        facts=facts,
    )

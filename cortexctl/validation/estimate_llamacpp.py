"""llama.cpp (llama-server) memory estimate, following what llama.cpp itself allocates.

Sources of each rule (llama.cpp as vendored in llama-cpp-python 0.3.36):
- n_ctx is padded to 256; with `-np N` and no `--kv-unified`, each of the N streams gets
  pad(n_ctx / N, 256) cells, so `-c` is the TOTAL across slots (llama-context.cpp).
- sliding-window layers get their own cache of pad(min(n_ctx_seq, n_swa·(unified ? N : 1)
  + n_ubatch), 256) cells per stream (llama-kv-cache-iswa.cpp), unless `--swa-full`.
- K/V rows are ggml rows of the cache type: n_embd_k_gqa(il) elements per cell.
- the output buffer holds n_vocab floats for each of n_seq_max outputs (output_reserve).
- the compute buffer is the ggml-alloc peak of the worst-case graph reserved for
  n_ubatch tokens with n_ubatch outputs: with a large vocabulary the logits dominate.
- `-ngl k` offloads the last k repeating layers; `-ngl > n_layer` also offloads the output
  layer; token embeddings always stay on the host.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

from cortexctl.recipes.schema import LlamaCppArgs
from cortexctl.validation.breakdown import Breakdown, Component
from cortexctl.validation.llamacpp_flags import LlamaCppFlags
from cortexctl.validation.modelinfo import ModelInfo

F32 = 4
_LAYER_RE = re.compile(r"^blk\.(\d+)\.")


def pad(n: int, to: int) -> int:
    return (n + to - 1) // to * to


def row_bytes(cache_type: str, n: int) -> int:
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


def _layer_of(name: str) -> int | None:
    m = _LAYER_RE.match(name)
    return int(m.group(1)) if m else None


def _compute_bytes(model: ModelInfo, f: LlamaCppFlags, cells: dict[str, int]) -> int:
    """ggml-alloc peak of the worst-case graph: n_tokens = min(n_ctx, n_ubatch), one output per slot.

    The KQ masks are graph inputs, live for the whole graph (f16 with flash attention,
    f32 without; one per cache: full and sliding-window). ggml-alloc reuses freed
    tensors, so on top of them only the largest phase counts: the FFN (gate, up and
    their product: 3·n_ff floats per token, next to ~4 hidden-size tensors), attention
    (q, k, v and ~4 hidden-size tensors, plus the n_kv × n_tokens × n_head f32 KQ matrix
    without flash attention) or the output (logits for n_parallel rows).
    Checked against llama-server's own `compute buffer size` in tests/validation.
    """
    t = min(cells["n_ctx"], f.ubatch)
    per_stream = 1 if f.kv_unified else f.parallel
    n_kv_full = cells["cells_full"] // per_stream
    n_kv_swa = cells["cells_swa"] // per_stream
    has_full = not model.swa_layers or not all(model.swa_layers)
    mask_bytes = 2 if f.flash_attn else F32
    masks = (n_kv_full * t * mask_bytes if has_full else 0) + (
        n_kv_swa * t * mask_bytes if model.n_swa_layers else 0
    )
    kvh = max(model.n_kv_heads)
    qkv = model.head_dim_k * model.n_heads + (model.head_dim_k + model.head_dim_v) * kvh
    attn = t * F32 * (qkv + 4 * model.n_embd)
    if not f.flash_attn:
        attn += (n_kv_full if has_full else n_kv_swa) * t * model.n_heads * F32
    n_ff = model.n_ff or 4 * model.n_embd
    ffn = t * F32 * (3 * n_ff + 4 * model.n_embd)
    output = model.vocab_size * f.parallel * F32 + t * F32 * 2 * model.n_embd
    return masks + max(ffn, attn, output)


def estimate_llamacpp(
    model: ModelInfo, args: LlamaCppArgs, *, command: Sequence[str] | None = None
) -> Breakdown:
    """Estimate for `args`, or for the exact llama-server argv when `command` is given."""
    f = LlamaCppFlags.from_command(command, model) if command else LlamaCppFlags.from_args(args, model)
    n_layer = model.n_layers
    first_gpu_layer = n_layer - min(f.gpu_layers, n_layer)
    output_on_gpu = f.gpu_layers > n_layer
    notes: list[str] = []

    w_gpu = w_host = 0
    tied_output = not any(t.name == "output.weight" for t in model.tensors)
    for t in model.tensors:
        layer = _layer_of(t.name)
        if layer is not None:
            on_gpu = layer >= first_gpu_layer
        elif t.name.startswith(("output.", "output_norm.")):
            on_gpu = output_on_gpu
        else:
            on_gpu = False  # token_embd and other input tensors stay on the host
        if on_gpu:
            w_gpu += t.nbytes
        else:
            w_host += t.nbytes
        if t.name == "token_embd.weight" and tied_output and output_on_gpu:
            w_gpu += t.nbytes  # llama.cpp duplicates a tied embedding as the GPU output layer
            notes.append("tied embeddings: the output layer is a GPU copy of token_embd")

    cells = kv_cells(model, f)
    kv_full_gpu = kv_full_host = kv_swa_gpu = kv_swa_host = 0
    for il in range(n_layer):
        n_kv = model.kv_heads(il)
        if n_kv == 0:
            continue
        swa = bool(model.swa_layers) and model.swa_layers[il]
        n = cells["cells_swa"] if swa else cells["cells_full"]
        size = n * (
            row_bytes(f.cache_type_k, model.head_dim_k * n_kv)
            + row_bytes(f.cache_type_v, model.head_dim_v * n_kv)
        )
        gpu = f.kv_offload and il >= first_gpu_layer and f.gpu_layers > 0
        if swa:
            kv_swa_gpu += size if gpu else 0
            kv_swa_host += 0 if gpu else size
        else:
            kv_full_gpu += size if gpu else 0
            kv_full_host += 0 if gpu else size

    out = model.vocab_size * f.parallel * F32 + (model.n_embd * f.parallel * F32 if f.embeddings else 0)
    compute = _compute_bytes(model, f, cells)
    compute_host = compute if f.gpu_layers == 0 else model.n_embd * min(cells["n_ctx"], f.ubatch) * F32 * 2
    compute_gpu = compute if f.gpu_layers > 0 else 0

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
    if f.gpu_layers:
        notes.append("GPU compute buffer: same graph model as on CPU, not yet checked against a CUDA build")
    if f.gpu_layers and f.gpu_layers <= n_layer:
        notes.append(f"partial offload: layers {first_gpu_layer}..{n_layer - 1} on GPU, the rest on the host")

    comps = [
        Component(
            "weights", w_gpu, "gpu", f"{model.file_type or ''} layers offloaded by -ngl {f.gpu_layers}"
        ),
        Component("weights", w_host, "host", "token embeddings + layers not offloaded"),
        Component(
            "kv_full",
            kv_full_gpu,
            "gpu",
            f"{cells['cells_full']} cells, K {f.cache_type_k} / V {f.cache_type_v}",
        ),
        Component(
            "kv_full",
            kv_full_host,
            "host",
            f"{cells['cells_full']} cells, K {f.cache_type_k} / V {f.cache_type_v}",
        ),
        Component("kv_swa", kv_swa_gpu, "gpu", f"{cells['cells_swa']} cells (sliding window)"),
        Component("kv_swa", kv_swa_host, "host", f"{cells['cells_swa']} cells (sliding window)"),
        Component("output", out, "host", f"logits for {f.parallel} sequence(s)"),
        Component("compute", compute_gpu, "gpu", f"worst-case graph, ubatch {f.ubatch}"),
        Component("compute", compute_host, "host", f"worst-case graph, ubatch {f.ubatch}"),
    ]
    facts = dict(
        cells,
        ubatch=f.ubatch,
        flash_attn=f.flash_attn,
        kv_unified=f.kv_unified,
        gpu_layers=f.gpu_layers,
        parallel=f.parallel,
    )
    return Breakdown(
        engine="llamacpp",
        components=tuple(c for c in comps if c.bytes or (c.name == "weights" and c.device == "host")),
        notes=tuple(notes),
        facts=facts,
    )

"""The compute buffer llama.cpp reserves: the ggml-alloc peak of its worst-case graph.

llama-context.cpp sched_reserve(): the graph is built for n_tokens = min(n_ctx, n_ubatch)
with n_outputs = min(n_tokens, n_outputs_max) outputs. llama-server sets n_outputs_max
to n_parallel when generating, and to n_batch in embeddings/reranking mode (every
token of an input is an output there), which is what makes embeddings mode reserve
vocab × n_ubatch logits — except for architectures whose graph skips the LM head in
embeddings mode (arch data `embeddings_logits`: lfm2, lfm2moe) or has none at all
(`logits: false`: encoders, llama-embed). A graph that never selects its output rows
computes logits for every token even when generating (`all_outputs`: cogvlm); chameleon's
copies them (`logits_copies`).

ggml-alloc reuses freed tensors, so on top of the graph inputs that live throughout
(the KQ masks: f16 with flash attention, f32 without; one per cache) only the largest
phase counts: attention (q, k, v, a few hidden-size tensors, plus the n_kv × n_tokens ×
n_head f32 KQ matrix without flash attention), the FFN (gate, up and their product;
for MoE the router logits and the gate/up/down of n_expert_used experts per token, then a
shared expert as a phase of its own), or the output (logits for n_outputs rows).
Encoders keep no KV cache and attend over the ubatch itself (a t × t mask), as does
llama-embed's graph (`attn_no_cache`). Where llama.cpp forces flash attention off (grok),
the flags say so before this runs (estimate_flags); a relative-position bias on KQ (`pos_bias`:
t5encoder) turns it off inside the graph only, so the masks keep the flag's type.
Checked against llama-server's own `compute buffer size` across the generated matrix
in tests/validation/test_fit_matrix.py.
"""

from __future__ import annotations

from cortexctl.engines.llamacpp.arch import (
    WKV_PHASE,
    all_outputs,
    attn_no_cache,
    embeddings_logits,
    graph_logits,
    logits_copies,
    pos_bias,
)
from cortexctl.engines.llamacpp.estimate_flags import LlamaCppFlags
from cortexctl.validation.modelinfo import ModelInfo

F32 = 4


def compute_bytes(model: ModelInfo, f: LlamaCppFlags, cells: dict[str, int]) -> int:
    """The reserved (worst-case) compute buffer."""
    t = min(cells["n_ctx"], f.ubatch)
    per_stream = 1 if f.kv_unified else f.parallel
    n_out = t if f.embeddings else min(t, f.parallel)
    return graph_bytes(
        model, f, t, cells["cells_full"] // per_stream, cells["cells_swa"] // per_stream, n_out
    )


def graph_bytes(model: ModelInfo, f: LlamaCppFlags, t: int, n_kv_full: int, n_kv_swa: int, n_out: int) -> int:
    """ggml-alloc peak for a graph of t tokens over n_kv cells with n_out outputs.

    With the reserve's sizes this is the compute buffer; with a request's sizes it is how
    much of that buffer the request touches (its pages become resident).
    """
    if all_outputs(model.architecture):
        n_out = t  # cogvlm: the LM head runs on every token, generating too
    has_kv = model.memory in ("kv", "hybrid")
    encoder = model.memory == "none" and model.n_heads > 0
    if encoder or attn_no_cache(model.architecture):
        # encoders (bert-like) keep no cache: attention runs over the ubatch itself, with a
        # t × t mask (llm_graph_context::build_attn_inp_no_cache); so does llama-embed's
        # graph, though its loader allocates a KV cache
        has_kv, n_kv_full, n_kv_swa = True, t, t
    # a full-attention mask only if some layer with KV heads does not slide (lfm2's
    # sliding attention layers sit between conv layers that have no KV at all)
    has_full = has_kv and any(
        not (model.swa_layers and model.swa_layers[il]) for il in range(model.n_layers) if model.kv_heads(il)
    )
    has_swa = has_kv and model.n_swa_layers > 0
    mask_bytes = 2 if f.flash_attn else F32
    masks = (n_kv_full * t * mask_bytes if has_full else 0) + (n_kv_swa * t * mask_bytes if has_swa else 0)
    kvh = max(model.n_kv_heads)
    qkv = model.head_dim_k * model.n_heads + (model.head_dim_k + model.head_dim_v) * kvh
    # encoders: one hidden-size tensor fewer beside q, k, v (measured on the bert matrix)
    attn = t * F32 * (qkv + (3 if encoder else 4) * model.n_embd)
    # gemma3n's AltUp keeps n_altup copies of the hidden state and the per-layer inputs alive
    # through every layer (fitted on the gemma3n matrix: (n_altup + 1) · n_embd + the per-layer
    # width, within 1 %)
    altup = t * F32 * _altup_floats(model)
    attn += altup
    if not f.flash_attn and has_kv:
        attn += (n_kv_full if has_full else n_kv_swa) * t * model.n_heads * F32
    if pos_bias(model.architecture):
        # build_pos_bias: an I32 bucket input (n_kv × t) beside the masks; build_attn_mha skips
        # flash attention for a KQ bias, so KQ, the bias and their sum (n_head × n_kv × t
        # floats each) live beside V and the hidden-size tensors (fitted on the t5encoder
        # matrix: 3 · n_head · n_kv + v + 4 · n_embd floats a token, within 0.2 % of the
        # compute buffer at -ub 128/256/512)
        n_kv = n_kv_full if has_full else n_kv_swa
        masks += n_kv * t * F32
        attn = t * F32 * (model.head_dim_v * kvh + 4 * model.n_embd) + 3 * n_kv * t * model.n_heads * F32
    if model.head_dim_k_mla and not model.v_cache:
        # MLA with absorption (deepseek2 …): q is decompressed per head and absorbed into the
        # latent space (nope+rope and kv_lora_rank wide). Without flash attention, the KQ
        # matrix plus either three quarters of those tensors or half of them next to a
        # contiguous f32 copy of the latent V (one per stream). Fitted on nine deepseek2 shapes
        # and eight cache sizes; the three quarters (was: all) and the per-stream copy on the
        # MLA matrix (deepseek2, mistral4, glm-dsa, kimi-linear, 2026-12-02: compute buffers
        # 0.968–1.042 of llama-server's, where `-c 512 -np 4 -fa off` had been 16–25 % high).
        per_token = 2 * model.n_heads * (model.head_dim_k_mla + model.head_dim_v) + 4 * model.n_embd
        if not any(x.name.endswith(".attn_q_a.weight") for x in model.tensors) and model.tensors:
            # q straight from wq, no q LoRA (kimi-linear): one n_head × (nope + rope) tensor
            # fewer (measured on the kimi-linear matrix: within 0.3 % with flash attention)
            per_token -= model.n_heads * model.head_dim_k_mla
        attn = t * F32 * per_token
        if not f.flash_attn:
            n_kv = n_kv_full if has_full else n_kv_swa
            # one contiguous copy of the latent V per stream (each stream's cells apart)
            v_copy = n_kv * model.head_dim_v * F32 * (1 if f.kv_unified else f.parallel)
            attn = n_kv * t * model.n_heads * F32 + max(attn // 2 + v_copy, attn * 3 // 4)
    if any(model.indexer_layers):
        masks += n_kv_full * t * 2  # the indexer's own mask: f16 (the fused indexer op wants it)
        attn = max(_dsa_phases(model, f, t, n_kv_full, attn))
    if model.n_experts:
        # router logits are freed before the experts run; then gate, up, their product and
        # down for n_expert_used experts per token (measured: exactly that, on the matrix)
        used = model.n_experts_used or 1
        n_ff_exp = model.n_ff_exp or model.n_ff or 4 * model.n_embd
        # gate-less experts (nomic-bert-moe: up and down only) keep up with its activation
        # applied in place, as the dense gate-less FFN does (measured: used · (n_ff_exp + 2 ·
        # n_embd) floats a token, within 0.4 %)
        n_live = 3 if _gated_experts(model) else 1
        ffn = t * F32 * used * (n_live * n_ff_exp + 2 * model.n_embd)
        if shexp := shared_expert_width(model):
            # the shared expert runs after the routed experts, whose tensors are free by then:
            # its own phase, a gated FFN of its width beside the routed output and the residual
            # (3 · w + 6 · n_embd floats a token: measured on qwen2moe/qwen35moe, whose shared
            # expert is n_ff wide, within 0.4 %; a shared expert as narrow as the routed ones
            # (bailingmoe, hunyuan-moe) stays below the routed phase, as measured there)
            # a gate-less shared expert (nemotron_h_moe) keeps up alone, as a gate-less FFN does
            n_live_shexp = 3 if _gated_shared_expert(model) else 1
            ffn = max(ffn, t * F32 * (n_live_shexp * shexp + 6 * model.n_embd))
        if (model.n_dense_lead or _has_dense_ffn(model)) and model.n_ff:
            # dense layers among the MoE ones (leading: deepseek2; interleaved: llama4) run
            # the full-width FFN
            ffn = max(ffn, t * F32 * (3 * model.n_ff + 4 * model.n_embd))
    elif model.memory == "recurrent" and model.architecture in WKV_PHASE:
        # rwkv time mix: the token shift, five lerped inputs, r/k/v/g and the decay live
        # together (k · n_embd floats a token); the WKV op copies each sequence's state in
        # (rwkv7: twice) next to its token-shift rows. Measured on the rwkv6/rwkv7 matrix:
        # compute buffers within 1 MiB above llama-server's at -ub 128/256/512.
        k, states = WKV_PHASE[model.architecture]
        rec = model.recurrent
        ffn = t * F32 * k * model.n_embd + f.parallel * F32 * (states * rec.get("s", 0) + rec.get("r", 0))
    elif model.memory == "recurrent" and model.recurrent.get("d_state"):
        d_inner = model.recurrent["s"] // model.recurrent["d_state"]
        ffn = t * F32 * 7 * d_inner + _ssm2_states(model, f)  # ssm in-projection, conv, x/dt projections
    elif encoder:
        # bert-like FFN: up and its activation, no gate (measured: n_ff + 3 · n_embd per token);
        # nomic-bert's has a gate (gate, up and their product live together)
        n_ff_live = 3 if gated_ffn(model) else 1
        # a gate fused into up (2 · n_ff wide: modern-bert's GeGLU, neo-bert's SwiGLU) keeps one
        # hidden-size tensor more (fitted on modern-bert's matrix: 6.25 → 6.75 MiB at -ub 256,
        # as llama-server; neo-bert's FFN phase never dominates there)
        n_hidden_ffn = 4 if _fused_gate(model) else 3
        ffn = t * F32 * (n_ff_live * (model.n_ff or 4 * model.n_embd) + n_hidden_ffn * model.n_embd)
    else:
        # gate and up side by side, then their product; without a gate (gpt2, starcoder2 …)
        # only up, with its bias and activation applied in place
        n_ff_live = 3 if gated_ffn(model) else 1
        ffn = t * F32 * (n_ff_live * dense_ffn_width(model) + 4 * model.n_embd) + altup

    if model.memory == "hybrid" and model.recurrent.get("d_state"):  # its SSM layers' phase
        d_inner = model.recurrent["s"] // model.recurrent["d_state"]
        ffn = max(ffn, t * F32 * 7 * d_inner + _ssm2_states(model, f))
    # encoders have no LM head in their graph (pooling reads the hidden states): no logits;
    # diffusion models (dream, llada: no cache either) have one
    logits = model.vocab_size * n_out * F32 if graph_logits(model.architecture, model.memory) else 0
    logits *= logits_copies(model.architecture)  # chameleon: a masked copy beside the logits
    if f.embeddings and not embeddings_logits(model.architecture):
        logits = 0  # the builder skips the LM head in embeddings mode (lfm2.cpp)
    output = logits + t * F32 * 4 * model.n_embd
    return masks + max(ffn, attn, output)


def _dsa_phases(model: ModelInfo, f: LlamaCppFlags, t: int, n_kv: int, attn: int) -> tuple[int, int]:
    """DSA (glm-dsa.cpp, build_attn with top_k in llama-graph.cpp): the attention phase and the
    lightning indexer's phase.

    The fused indexer op (cparams.fused_lid, always on in this llama.cpp) scores every cell for
    every token: an f32 n_kv × t matrix beside the indexer's q (n_idx heads, rotated twice),
    its weights and the hidden-size tensors; top_k keeps k = min(n_kv, top_k) I32 indices a
    token, then a contiguous copy. Attention then fills a copy of the MLA mask with -inf,
    unmasks the top-k cells (set_rows from a k × t f32 zeros tensor) and adds the MLA mask: two
    n_kv × t masks of the MLA mask's type live while q, k and v (expanded first) are alive.
    With flash attention those two coexist with the attention phase; without, the KQ matrix
    (n_head × n_kv × t f32, computed after them) dominates and only the resulting mask lives
    beside it through the softmax.
    """
    k = min(n_kv, model.indexer_top_k or n_kv)
    top_k = 2 * t * k * 4  # I32 indices and their contiguous copy
    q_idx = 2 * model.indexer_heads * model.indexer_head_dim + model.indexer_heads + 4 * model.n_embd
    indexer = n_kv * t * F32 + t * F32 * q_idx + top_k
    masked = 2 * n_kv * t * 2 if f.flash_attn else n_kv * t * F32
    return attn + masked, indexer


def shared_expert_width(model: ModelInfo) -> int:
    """The shared expert's FFN width: its up tensor's rows (qwen2moe, qwen35moe: n_ff wide
    and gated, with no `expert_shared_count` key; deepseek-likes: expert_shared_count experts
    wide), else expert_shared_count × the expert width (no tensor table)."""
    for t in model.tensors:
        if t.name.endswith(".ffn_up_shexp.weight") and len(t.shape) == 2:
            return t.shape[1]
    return (model.n_ff_exp or model.n_ff or 0) * model.n_expert_shared


def dense_ffn_width(model: ModelInfo) -> int:
    """The dense FFN's width: its gate tensor's rows where it has one (qwen's loader makes
    gate, up and down n_ff/2 wide), else n_ff."""
    gates = [t.shape[1] for t in model.tensors if t.name.endswith(".ffn_gate.weight") and len(t.shape) == 2]
    return max(gates) if gates else model.n_ff or 4 * model.n_embd


def _altup_floats(model: ModelInfo) -> int:
    """Floats a token that AltUp models (gemma3n) keep beside each layer's phase: n_altup
    hidden-state copies plus one (altup_proj holds n_altup - 1 projections) and the per-layer
    inputs (per_layer_model_proj's rows); 0 for every other model."""
    by_name = {t.name: t for t in model.tensors}
    proj, per_layer = by_name.get("altup_proj.weight"), by_name.get("per_layer_model_proj.weight")
    if proj is None or per_layer is None or len(proj.shape) != 3:
        return 0
    return (proj.shape[2] + 2) * model.n_embd + per_layer.shape[1]


def _fused_gate(model: ModelInfo) -> bool:
    """The gate and up projections in one up tensor 2 · n_ff wide, no separate gate."""
    ups = [t for t in model.tensors if t.name.endswith(".ffn_up.weight")]
    gates = any(t.name.endswith(".ffn_gate.weight") for t in model.tensors)
    return bool(ups) and not gates and bool(model.n_ff) and ups[0].shape[-1] == 2 * (model.n_ff or 0)


def _gated_shared_expert(model: ModelInfo) -> bool:
    """Whether the shared expert has a gate (most); nemotron_h_moe's has up and down only."""
    names = [t.name for t in model.tensors if "_shexp." in t.name]
    return not names or any(".ffn_gate_shexp." in n for n in names)


def _gated_experts(model: ModelInfo) -> bool:
    """Whether the experts have a gate (ffn_gate_exps, or gate and up in one ffn_gate_up_exps);
    without the tensor table, assume so (most MoE models)."""
    names = [t.name for t in model.tensors if "_exps." in t.name]
    return not names or any(".ffn_gate_exps." in n or ".ffn_gate_up_exps." in n for n in names)


def _has_dense_ffn(model: ModelInfo) -> bool:
    return any(t.name.endswith(".ffn_gate.weight") for t in model.tensors)


def gated_ffn(model: ModelInfo) -> bool:
    """Whether the dense FFN has a gate (llm_graph_context::build_ffn's gate and up outputs
    live side by side): a separate ffn_gate tensor, or one up tensor holding both (phi3,
    glm4: 2 · n_ff wide). Without the tensor table, assume a gate (most models)."""
    ups = [t for t in model.tensors if t.name.endswith(".ffn_up.weight")]
    if not ups:
        return True
    if any(t.name.endswith(".ffn_gate.weight") for t in model.tensors):
        return True
    return bool(model.n_ff) and ups[0].shape[-1] == 2 * (model.n_ff or 0)


def _ssm2_states(model: ModelInfo, f: LlamaCppFlags) -> int:
    """Mamba2 layers (n_group > 0) take each sequence's conv and SSM state into the graph:
    n_seq_max × (s + 2·r) floats (measured on the mamba2 and granitehybrid matrix)."""
    rec = model.recurrent
    if not rec.get("n_group"):
        return 0
    return f.parallel * (rec.get("s", 0) + 2 * rec.get("r", 0)) * F32

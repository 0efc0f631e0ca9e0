"""The per-architecture layer writers of ggufmodels.py beside its llama-like one: SSM, recurrent,
hybrid, MLA, encoder and other layers whose tensor set is not the llama set with flags, plus the
shared `Shape` and FFN writer. Each follows its `load_arch_tensors` in the vendored llama.cpp
(src/models/<arch>.cpp): the required tensors only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from gguf import GGUFWriter

__all__ = [
    "LORA_KV",
    "LORA_Q",
    "Shape",
    "bert",
    "deepseek2_layer",
    "falcon_h1_layer",
    "ffn",
    "gemma3n_globals",
    "gemma3n_layer",
    "gptoss_layer",
    "jamba_layer",
    "lfm2_conv_layer",
    "lora_attn_layer",
    "mamba2_mixer",
    "mamba_layer",
    "modern_bert",
    "nemotron_h_layer",
    "plamo2_layer",
    "qwen35_layer",
    "rwkv6_layer",
    "rwkv7_layer",
    "t5_encoder",
]


@dataclass(frozen=True)
class Shape:
    name: str
    arch: str = "llama"
    n_layer: int = 4
    n_embd: int = 256
    n_head: int = 8
    n_kv_head: int = 8
    n_ff: int = 768
    n_vocab: int = 4096
    head_dim: int | None = None
    context_length: int = 4096
    sliding_window: int | None = None
    sliding_window_pattern: int | tuple[bool, ...] | None = None
    weight_type: str = "F16"  # any ggml type for 2-D weights (zeros)
    tied_output: bool = True
    n_expert: int = 0
    n_expert_used: int = 0
    n_ff_exp: int | None = None
    extra_keys: dict[str, int | float] = field(default_factory=dict)
    ssm: tuple[int, int, int, int] = (4, 1024, 16, 32)  # mamba: d_conv, d_inner, d_state, dt_rank
    # mamba2 / hybrids: d_conv, d_inner, d_state, n_group, n_ssm_head (d_inner = 2 · n_embd)
    ssm2: tuple[int, int, int, int, int] = (4, 1024, 64, 1, 16)
    attention_layers: tuple[int, ...] = ()  # hybrids: the layers with attention (the rest: SSM)
    mlp_layers: tuple[int, ...] = ()  # nemotron_h: the layers that are a (gate-less) MLP only
    # deepseek2 MLA: q_lora_rank, kv_lora_rank, rope dim, qk_nope dim, v head dim
    mla: tuple[int, int, int, int, int] = (256, 256, 64, 128, 128)
    indexer: tuple[int, int] | None = None  # glm-dsa: indexer head count, head size
    n_layer_dense_lead: int = 1
    gdn: tuple[int, int, int, int] = (4, 64, 2, 4)  # qwen35: d_conv, head dim, n_k_heads, n_v_heads
    n_expert_shared: int = 1
    kda: tuple[int, int] = (4, 64)  # kimi-linear's KDA layers: d_conv, head dim
    shortconv_l_cache: int = 3  # lfm2: the short convolution's kernel (its state keeps l_cache - 1 rows)

    @property
    def hd(self) -> int:
        return self.head_dim or self.n_embd // self.n_head


def ffn(
    w: GGUFWriter,
    p: str,
    il: int,
    shape: Shape,
    extras: set[str],
    mat: Callable[..., None],
    vec: Callable[[str, int], None],
) -> None:
    """One layer's FFN: dense (gated or not, biased or not), or experts and their shared expert."""
    e = shape.n_embd
    dense_lead = "dense_lead" in extras and il < shape.n_layer_dense_lead
    dense_lead |= "moe_every_2nd" in extras and (il + 1) % 2 != 0
    if "arctic" in extras:  # the residual dense FFN (n_embd wide) and the experts' own norm
        mat(p + "ffn_gate.weight", e, e)
        mat(p + "ffn_up.weight", e, e)
        mat(p + "ffn_down.weight", e, e)
        vec(p + "ffn_norm_exps.weight", e)
    if shape.n_expert and not dense_lead:
        n_ff = shape.n_ff_exp or shape.n_ff
        w.add_tensor(p + "ffn_gate_inp.weight", np.zeros((shape.n_expert, e), dtype=np.float32))
        mat(p + "ffn_gate_exps.weight", shape.n_expert, n_ff, e)
        mat(p + "ffn_up_exps.weight", shape.n_expert, n_ff, e)
        mat(p + "ffn_down_exps.weight", shape.n_expert, e, n_ff)
        if "exp_probs_b" in extras:
            vec(p + "exp_probs_b.bias", shape.n_expert)
        if "chexps" in extras:  # grovemoe: n_expert / experts_per_group (2) experts, head_dim wide
            n_chunk = shape.n_expert // 2
            mat(p + "ffn_gate_chexps.weight", n_chunk, shape.hd, e)
            mat(p + "ffn_up_chexps.weight", n_chunk, shape.hd, e)
            mat(p + "ffn_down_chexps.weight", n_chunk, e, shape.hd)
        # a shared expert: n_ff wide (qwen2moe, hunyuan-moe), or expert_shared_count experts' width (deepseek)
        shared = {"shexp": shape.n_ff, "shexp_gated": shape.n_ff, "shexp_ffexp": n_ff * shape.n_expert_shared}
        for flag, width in shared.items():
            if flag in extras:
                if flag == "shexp_gated":
                    vec(p + "ffn_gate_inp_shexp.weight", e)
                mat(p + "ffn_gate_shexp.weight", width, e)
                mat(p + "ffn_up_shexp.weight", width, e)
                mat(p + "ffn_down_shexp.weight", e, width)
    else:
        n_ff = shape.n_ff // 2 if "ffn_half" in extras else shape.n_ff  # qwen: n_ff/2
        if "no_gate" not in extras:
            mat(p + "ffn_gate.weight", n_ff, e)
        mat(p + "ffn_up.weight", n_ff * (2 if "up_double" in extras else 1), e)
        mat(p + "ffn_down.weight", e, n_ff)
        if "ffn_bias" in extras:
            vec(p + "ffn_up.bias", n_ff)
            vec(p + "ffn_down.bias", e)
        if "gate_bias" in extras:
            vec(p + "ffn_gate.bias", shape.n_ff)


def _ones(w: GGUFWriter, name: str, *dims: int) -> None:
    w.add_tensor(name, np.ones(dims, dtype=np.float32))


def bert(
    w: GGUFWriter, shape: Shape, extras: set[str], mat: Callable[..., None], vec: Callable[[str, int], None]
) -> None:
    """src/models/bert.cpp, nomic-bert.cpp, jina-bert-v2.cpp load_arch_tensors (biases only
    where required)."""
    e = shape.n_embd
    w.add_tensor(
        "token_types.weight", np.zeros((2, e), dtype=np.float32)
    )  # added as a view: f32, as converted
    if "pos_embd" in extras:
        mat("position_embd.weight", shape.context_length, e)
    vec("token_embd_norm.weight", e)
    vec("token_embd_norm.bias", e)
    for i in range(shape.n_layer):
        p = f"blk.{i}."
        mat(p + "attn_q.weight", e, e)
        mat(p + "attn_k.weight", shape.n_kv_head * shape.hd, e)
        mat(p + "attn_v.weight", shape.n_kv_head * shape.hd, e)
        mat(p + "attn_output.weight", e, e)
        if "attn_out_bias" in extras:
            vec(p + "attn_output.bias", e)
        vec(p + "attn_output_norm.weight", e)
        vec(p + "attn_output_norm.bias", e)
        if "bert_moe" in extras and i % 2 == 1:  # _KEYS: moe_every_n_layers 2 (gate-less experts)
            w.add_tensor(p + "ffn_gate_inp.weight", np.zeros((shape.n_expert, e), dtype=np.float32))
            mat(p + "ffn_up_exps.weight", shape.n_expert, shape.n_ff, e)
            mat(p + "ffn_down_exps.weight", shape.n_expert, e, shape.n_ff)
            vec(p + "layer_output_norm.weight", e)
            vec(p + "layer_output_norm.bias", e)
            continue
        if "bert_gate" in extras:
            mat(p + "ffn_gate.weight", shape.n_ff, e)
        mat(p + "ffn_up.weight", shape.n_ff, e)
        mat(p + "ffn_down.weight", e, shape.n_ff)
        if "ffn_bias" in extras:
            vec(p + "ffn_down.bias", e)
        vec(p + "layer_output_norm.weight", e)
        vec(p + "layer_output_norm.bias", e)


def t5_encoder(shape: Shape, mat: Callable[..., None], vec: Callable[[str, int], None]) -> None:
    """src/models/t5encoder.cpp load_arch_tensors: pre-norm encoder layers (`enc.` names), a
    relative-position bias per layer (optional; written, as converted T5 models have it), a
    gated FFN, the encoder's output norm; the LM head is token_embd (no output tensor)."""
    e, kv = shape.n_embd, shape.n_kv_head * shape.hd
    vec("enc.output_norm.weight", e)
    for i in range(shape.n_layer):
        p = f"enc.blk.{i}."
        vec(p + "attn_norm.weight", e)
        mat(p + "attn_rel_b.weight", T5_BUCKETS, shape.n_head)
        mat(p + "attn_q.weight", kv, e)
        mat(p + "attn_k.weight", kv, e)
        mat(p + "attn_v.weight", kv, e)
        mat(p + "attn_o.weight", e, kv)
        vec(p + "ffn_norm.weight", e)
        mat(p + "ffn_gate.weight", shape.n_ff, e)
        mat(p + "ffn_up.weight", shape.n_ff, e)
        mat(p + "ffn_down.weight", e, shape.n_ff)


T5_BUCKETS = 32  # attention.relative_buckets_count (T5's)


def modern_bert(shape: Shape, mat: Callable[..., None], vec: Callable[[str, int], None]) -> None:
    """src/models/modern-bert.cpp load_arch_tensors: no biases, layer 0 without attn_norm."""
    e = shape.n_embd
    vec("token_embd_norm.weight", e)
    vec("output_norm.weight", e)
    for i in range(shape.n_layer):
        p = f"blk.{i}."
        if i:
            vec(p + "attn_norm.weight", e)
        mat(p + "attn_qkv.weight", 3 * e, e)
        mat(p + "attn_output.weight", e, e)
        mat(p + "ffn_up.weight", 2 * shape.n_ff, e)
        mat(p + "ffn_down.weight", e, shape.n_ff)
        vec(p + "ffn_norm.weight", e)


def qwen35_layer(
    w: GGUFWriter, p: str, il: int, shape: Shape, extras: set[str], mat: Callable[..., None]
) -> None:
    """src/models/qwen35.cpp load_arch_tensors: gated delta net, or (every 4th layer) gated attention."""
    e, hd = shape.n_embd, shape.hd
    d_conv, gd, n_k, n_v = shape.gdn
    key_dim, value_dim = gd * n_k, gd * n_v

    def f32(name: str, *dims: int) -> None:
        w.add_tensor(name, np.ones(dims, dtype=np.float32))

    f32(p + "post_attention_norm.weight", e)
    if (il + 1) % 4 == 0:
        mat(p + "attn_q.weight", hd * shape.n_head * 2, e)  # query and its gate
        mat(p + "attn_k.weight", hd * shape.n_kv_head, e)
        mat(p + "attn_v.weight", hd * shape.n_kv_head, e)
        mat(p + "attn_output.weight", e, hd * shape.n_head)
        f32(p + "attn_q_norm.weight", hd)
        f32(p + "attn_k_norm.weight", hd)
    else:
        mat(p + "attn_qkv.weight", 2 * key_dim + value_dim, e)
        mat(p + "attn_gate.weight", value_dim, e)
        f32(p + "ssm_conv1d.weight", 2 * key_dim + value_dim, d_conv)
        f32(p + "ssm_dt.bias", n_v)
        f32(p + "ssm_a", n_v)
        if "gdn_ba" in extras:  # qwen3next: beta and alpha in one projection
            mat(p + "ssm_ba.weight", 2 * n_v, e)
        else:
            mat(p + "ssm_beta.weight", n_v, e)
            mat(p + "ssm_alpha.weight", n_v, e)
        f32(p + "ssm_norm.weight", gd)
        mat(p + "ssm_out.weight", e, value_dim)
    ffn(w, p, il, shape, extras, mat, lambda name, n: _ones(w, name, n))


LORA_Q, LORA_KV = 384, 256  # minicpm3 / plm: q_lora_rank, kv_lora_rank


def lora_attn_layer(w: GGUFWriter, p: str, shape: Shape, extras: set[str], mat: Callable[..., None]) -> None:
    """src/models/minicpm3.cpp and plm.cpp load_arch_tensors: low-rank K/V (minicpm3: and Q)
    projections, half of each head rotary; minicpm3's FFN gated, plm's not."""
    e, hd, n_head = shape.n_embd, shape.hd, shape.n_head
    rope = hd // 2

    def f32(name: str, *dims: int) -> None:
        w.add_tensor(name, np.ones(dims, dtype=np.float32))

    if "lora_q" in extras:
        f32(p + "attn_q_a_norm.weight", LORA_Q)
        mat(p + "attn_q_a.weight", LORA_Q, e)
        mat(p + "attn_q_b.weight", n_head * hd, LORA_Q)
    else:
        mat(p + "attn_q.weight", n_head * hd, e)
    f32(p + "attn_kv_a_norm.weight", LORA_KV)
    mat(p + "attn_kv_a_mqa.weight", LORA_KV + rope, e)
    mat(p + "attn_kv_b.weight", n_head * (hd - rope + hd), LORA_KV)
    mat(p + "attn_output.weight", e, n_head * hd)
    f32(p + "ffn_norm.weight", e)
    if "lora_q" in extras:
        mat(p + "ffn_gate.weight", shape.n_ff, e)
    mat(p + "ffn_up.weight", shape.n_ff, e)
    mat(p + "ffn_down.weight", e, shape.n_ff)


def deepseek2_layer(w: GGUFWriter, p: str, il: int, shape: Shape, mat: Callable[..., None]) -> None:
    """src/models/deepseek2.cpp load_arch_tensors, MLA form (split k_b / v_b), not lite (q LoRA)."""
    e, n_head = shape.n_embd, shape.n_head
    q_lora, kv_lora, rope, nope, v_dim = shape.mla

    def f32(name: str, *dims: int) -> None:
        w.add_tensor(name, np.ones(dims, dtype=np.float32))

    f32(p + "attn_q_a_norm.weight", q_lora)
    f32(p + "attn_kv_a_norm.weight", kv_lora)
    mat(p + "attn_q_a.weight", q_lora, e)
    mat(p + "attn_q_b.weight", n_head * (nope + rope), q_lora)
    mat(p + "attn_kv_a_mqa.weight", kv_lora + rope, e)
    mat(p + "attn_k_b.weight", n_head, kv_lora, nope)
    mat(p + "attn_v_b.weight", n_head, v_dim, kv_lora)
    mat(p + "attn_output.weight", e, n_head * v_dim)
    f32(p + "ffn_norm.weight", e)
    if shape.indexer:  # glm-dsa's lightning indexer: one key head, n_idx query heads
        n_idx, idx_dim = shape.indexer
        f32(p + "indexer.k_norm.weight", idx_dim)
        f32(p + "indexer.k_norm.bias", idx_dim)
        mat(p + "indexer.proj.weight", n_idx, e)
        mat(p + "indexer.attn_k.weight", idx_dim, e)
        mat(p + "indexer.attn_q_b.weight", n_idx * idx_dim, q_lora)
    if il < shape.n_layer_dense_lead:
        mat(p + "ffn_gate.weight", shape.n_ff, e)
        mat(p + "ffn_up.weight", shape.n_ff, e)
        mat(p + "ffn_down.weight", e, shape.n_ff)
        return
    n_exp, n_ff = shape.n_expert, shape.n_ff_exp or shape.n_ff
    w.add_tensor(p + "ffn_gate_inp.weight", np.zeros((n_exp, e), dtype=np.float32))
    mat(p + "ffn_gate_exps.weight", n_exp, n_ff, e)
    mat(p + "ffn_up_exps.weight", n_exp, n_ff, e)
    mat(p + "ffn_down_exps.weight", n_exp, e, n_ff)
    shared = n_ff * shape.n_expert_shared
    mat(p + "ffn_gate_shexp.weight", shared, e)
    mat(p + "ffn_up_shexp.weight", shared, e)
    mat(p + "ffn_down_shexp.weight", e, shared)


def kimi_linear_layer(w: GGUFWriter, p: str, il: int, shape: Shape, mat: Callable[..., None]) -> None:
    """src/models/kimi-linear.cpp load_arch_tensors: a KDA layer (no KV heads: q/k/v with their
    short convolutions, the f/g LoRA pairs, beta, A, dt bias, the gated output norm) or an MLA
    layer (deepseek2's, without q LoRA); then deepseek2's FFN (dense lead, else experts with a
    required probability bias and a shared expert)."""
    e, n_head = shape.n_embd, shape.n_head
    d_conv, hd = shape.kda
    d_inner = n_head * hd

    def f32(name: str, *dims: int) -> None:
        w.add_tensor(name, np.ones(dims, dtype=np.float32))

    if il in shape.attention_layers:
        _, kv_lora, rope, nope, v_dim = shape.mla
        f32(p + "attn_kv_a_norm.weight", kv_lora)
        mat(p + "attn_q.weight", n_head * (nope + rope), e)  # its loader reads no q LoRA rank
        mat(p + "attn_kv_a_mqa.weight", kv_lora + rope, e)
        mat(p + "attn_k_b.weight", n_head, kv_lora, nope)
        mat(p + "attn_v_b.weight", n_head, v_dim, kv_lora)
        mat(p + "attn_output.weight", e, n_head * v_dim)
    else:
        for x in "qkv":
            mat(p + f"attn_{x}.weight", d_inner, e)
            f32(p + f"ssm_conv1d_{x}.weight", d_inner, 1, d_conv)
        mat(p + "ssm_f_a.weight", hd, e)
        mat(p + "ssm_f_b.weight", d_inner, hd)
        mat(p + "ssm_beta.weight", n_head, e)
        f32(p + "ssm_a", n_head, 1)
        f32(p + "ssm_dt.bias", d_inner)
        mat(p + "ssm_g_a.weight", hd, e)
        mat(p + "ssm_g_b.weight", d_inner, hd)
        f32(p + "ssm_norm.weight", hd)
        mat(p + "attn_output.weight", e, d_inner)
    f32(p + "ffn_norm.weight", e)
    if il < shape.n_layer_dense_lead:
        mat(p + "ffn_gate.weight", shape.n_ff, e)
        mat(p + "ffn_up.weight", shape.n_ff, e)
        mat(p + "ffn_down.weight", e, shape.n_ff)
        return
    n_exp, n_ff = shape.n_expert, shape.n_ff_exp or shape.n_ff
    w.add_tensor(p + "ffn_gate_inp.weight", np.zeros((n_exp, e), dtype=np.float32))
    w.add_tensor(p + "exp_probs_b.bias", np.zeros(n_exp, dtype=np.float32))
    mat(p + "ffn_gate_exps.weight", n_exp, n_ff, e)
    mat(p + "ffn_up_exps.weight", n_exp, n_ff, e)
    mat(p + "ffn_down_exps.weight", n_exp, e, n_ff)
    shared = n_ff * shape.n_expert_shared
    mat(p + "ffn_gate_shexp.weight", shared, e)
    mat(p + "ffn_up_shexp.weight", shared, e)
    mat(p + "ffn_down_shexp.weight", e, shared)


def falcon_h1_layer(w: GGUFWriter, p: str, shape: Shape, mat: Callable[..., None]) -> None:
    """src/models/falcon-h1.cpp load_arch_tensors: mamba2 mixer + attention + FFN in every layer."""
    e, hd = shape.n_embd, shape.hd
    mamba2_mixer(w, p, shape, mat)
    mat(p + "attn_q.weight", shape.n_head * hd, e)
    mat(p + "attn_k.weight", shape.n_kv_head * hd, e)
    mat(p + "attn_v.weight", shape.n_kv_head * hd, e)
    mat(p + "attn_output.weight", e, shape.n_head * hd)
    w.add_tensor(p + "ffn_norm", np.ones(e, dtype=np.float32))  # tn(LLM_TENSOR_FFN_NORM, i): no suffix
    mat(p + "ffn_gate.weight", shape.n_ff, e)
    mat(p + "ffn_up.weight", shape.n_ff, e)
    mat(p + "ffn_down.weight", e, shape.n_ff)


def nemotron_h_layer(
    w: GGUFWriter, p: str, il: int, shape: Shape, extras: set[str], mat: Callable[..., None]
) -> None:
    """src/models/nemotron-h.cpp load_arch_tensors: a mamba2 mixer, attention, or an MLP (up, down)."""
    e, hd = shape.n_embd, shape.hd
    if il in shape.attention_layers:
        mat(p + "attn_q.weight", shape.n_head * hd, e)
        mat(p + "attn_k.weight", shape.n_kv_head * hd, e)
        mat(p + "attn_v.weight", shape.n_kv_head * hd, e)
        mat(p + "attn_output.weight", e, shape.n_head * hd)
    elif il in shape.mlp_layers and "nh_moe" in extras:  # gate-less experts + shared
        n_exp, n_ff_exp, n_shexp = shape.n_expert, shape.n_ff_exp or shape.n_ff, 512  # _KEYS
        w.add_tensor(p + "ffn_gate_inp.weight", np.zeros((n_exp, e), dtype=np.float32))
        w.add_tensor(p + "exp_probs_b.bias", np.zeros(n_exp, dtype=np.float32))
        mat(p + "ffn_up_exps.weight", n_exp, n_ff_exp, e)
        mat(p + "ffn_down_exps.weight", n_exp, e, n_ff_exp)
        mat(p + "ffn_up_shexp.weight", n_shexp, e)
        mat(p + "ffn_down_shexp.weight", e, n_shexp)
    elif il in shape.mlp_layers:
        mat(p + "ffn_up.weight", shape.n_ff, e)
        mat(p + "ffn_down.weight", e, shape.n_ff)
    else:
        mamba2_mixer(w, p, shape, mat)


def lfm2_conv_layer(
    w: GGUFWriter, p: str, il: int, shape: Shape, extras: set[str], mat: Callable[..., None]
) -> None:
    """src/models/lfm2.cpp load_arch_tensors: a short-convolution layer and its dense FFN."""
    e = shape.n_embd
    w.add_tensor(p + "shortconv.conv.weight", np.ones((e, shape.shortconv_l_cache), dtype=np.float32))
    mat(p + "shortconv.in_proj.weight", 3 * e, e)
    mat(p + "shortconv.out_proj.weight", e, e)
    w.add_tensor(p + "ffn_norm.weight", np.ones(e, dtype=np.float32))
    ffn(
        w,
        p,
        il,
        shape,
        extras,
        mat,
        lambda name, n: w.add_tensor(name, np.ones(n, dtype=np.float32)),
    )


def mamba2_mixer(w: GGUFWriter, p: str, shape: Shape, mat: Callable[..., None]) -> None:
    """src/models/mamba2.cpp / granite-hybrid.cpp load_arch_tensors: the mamba2 mixer of one layer."""
    d_conv, d_inner, d_state, n_group, n_head = shape.ssm2
    conv_dim = d_inner + 2 * n_group * d_state

    def f32(name: str, *dims: int) -> None:
        w.add_tensor(name, np.ones(dims, dtype=np.float32))

    mat(p + "ssm_in.weight", d_inner + conv_dim + n_head, shape.n_embd)
    f32(p + "ssm_conv1d.weight", conv_dim, d_conv)
    f32(p + "ssm_conv1d.bias", conv_dim)
    f32(p + "ssm_dt.bias", n_head)
    f32(p + "ssm_a", n_head, 1)
    f32(p + "ssm_d", n_head, 1)
    f32(p + "ssm_norm.weight", n_group, d_inner // n_group)
    mat(p + "ssm_out.weight", shape.n_embd, d_inner)


def rwkv6_layer(w: GGUFWriter, p: str, shape: Shape, extras: set[str], mat: Callable[..., None]) -> None:
    """src/models/rwkv6.cpp load_arch_tensors: time mix (WKV) and channel mix (small ones F32)."""
    e = shape.n_embd
    head = 64
    mix_extra, decay_extra = 32, 64  # _KEYS: time_mix_extra_dim, time_decay_extra_dim

    def f32(name: str, *dims: int) -> None:
        w.add_tensor(name, np.zeros(dims, dtype=np.float32))

    qwen = "qwen_ffn" in extras  # rwkv6qwen2: no second norm, a gate, a qwen2 FFN
    if not qwen:
        f32(p + "attn_norm_2.weight", e)
        f32(p + "attn_norm_2.bias", e)
    f32(p + "time_mix_w1.weight", mix_extra * 5, e)
    f32(p + "time_mix_w2.weight", 5, e, mix_extra)
    f32(p + "time_mix_lerp_x.weight", 1, 1, e)
    f32(p + "time_mix_lerp_fused.weight", 5, 1, 1, e)
    if not qwen:  # QRWKV6 (rwkv6qwen2) has none: its graph takes the gated-linear-attention path
        f32(p + "time_mix_first.weight", e // head, head)
    f32(p + "time_mix_decay.weight", e)
    f32(p + "time_mix_decay_w1.weight", decay_extra, e)
    f32(p + "time_mix_decay_w2.weight", e, decay_extra)
    for name in ("key", "value", "receptance", "gate"):
        mat(p + f"time_mix_{name}.weight", e, e)
    if not qwen:
        f32(p + "time_mix_ln.weight", e)
        f32(p + "time_mix_ln.bias", e)
    mat(p + "time_mix_output.weight", e, e)
    if qwen:
        qwen_ffn(w, p, shape, mat)
        return
    f32(p + "channel_mix_lerp_k.weight", 1, 1, e)
    f32(p + "channel_mix_lerp_r.weight", 1, 1, e)
    mat(p + "channel_mix_key.weight", shape.n_ff, e)
    mat(p + "channel_mix_value.weight", e, shape.n_ff)
    mat(p + "channel_mix_receptance.weight", e, e)


def rwkv7_layer(
    w: GGUFWriter, p: str, il: int, shape: Shape, extras: set[str], mat: Callable[..., None]
) -> None:
    """src/models/rwkv7.cpp load_arch_tensors: LoRA'd decay/iclr/value/gate mixes (small ones F32)."""
    e = shape.n_embd
    decay, iclr, value_mix, gate = 64, 64, 32, 128  # _KEYS: the four LoRA ranks

    def f32(name: str, *dims: int) -> None:
        w.add_tensor(name, np.zeros(dims, dtype=np.float32))

    qwen = "qwen_ffn" in extras  # arwkv7: no second norm, a qwen2 FFN
    if not qwen:
        f32(p + "attn_norm_2.weight", e)
        f32(p + "attn_norm_2.bias", e)
    for name, rank in (("w", decay), ("a", iclr), ("v", iclr if il == 0 else value_mix)):
        f32(p + f"time_mix_{name}0.weight", e)
        f32(p + f"time_mix_{name}1.weight", rank, e)
        f32(p + f"time_mix_{name}2.weight", e, rank)
    f32(p + "time_mix_g1.weight", gate, e)
    f32(p + "time_mix_g2.weight", e, gate)
    f32(p + "time_mix_lerp_fused.weight", 6, 1, 1, e)
    for name in ("k_k", "k_a", "r_k"):
        f32(p + f"time_mix_{name}.weight", e)
    for name in ("key", "value", "receptance"):
        mat(p + f"time_mix_{name}.weight", e, e)
    f32(p + "time_mix_ln.weight", e)
    f32(p + "time_mix_ln.bias", e)
    mat(p + "time_mix_output.weight", e, e)
    if qwen:
        qwen_ffn(w, p, shape, mat)
        return
    f32(p + "channel_mix_lerp_k.weight", 1, 1, e)
    mat(p + "channel_mix_key.weight", shape.n_ff, e)
    mat(p + "channel_mix_value.weight", e, shape.n_ff)


def qwen_ffn(w: GGUFWriter, p: str, shape: Shape, mat: Callable[..., None]) -> None:
    """rwkv6qwen2 / arwkv7: a qwen2 FFN (RMS norm, gate, up, down) in place of the channel mix."""
    e = shape.n_embd
    w.add_tensor(p + "ffn_norm.weight", np.ones(e, dtype=np.float32))
    mat(p + "ffn_gate.weight", shape.n_ff, e)
    mat(p + "ffn_up.weight", shape.n_ff, e)
    mat(p + "ffn_down.weight", e, shape.n_ff)


def jamba_layer(
    w: GGUFWriter,
    p: str,
    il: int,
    shape: Shape,
    extras: set[str],
    mat: Callable[..., None],
    vec: Callable[[str, int], None],
) -> None:
    """src/models/jamba.cpp load_arch_tensors: a mamba layer (with dt/B/C norms) or attention,
    then the FFN (experts on every second layer)."""
    e = shape.n_embd
    if il in shape.attention_layers:
        kv_dim = shape.n_kv_head * shape.hd
        mat(p + "attn_q.weight", e, e)
        mat(p + "attn_k.weight", kv_dim, e)
        mat(p + "attn_v.weight", kv_dim, e)
        mat(p + "attn_output.weight", e, e)
    else:
        mamba_layer(w, p, shape, mat)
        _d_conv, _d_inner, d_state, dt_rank = shape.ssm
        vec(p + "ssm_dt_norm.weight", dt_rank)
        vec(p + "ssm_b_norm.weight", d_state)
        vec(p + "ssm_c_norm.weight", d_state)
    vec(p + "ffn_norm.weight", e)
    ffn(w, p, il, shape, extras, mat, vec)


def plamo2_layer(
    w: GGUFWriter, p: str, il: int, shape: Shape, mat: Callable[..., None], vec: Callable[[str, int], None]
) -> None:
    """src/models/plamo2.cpp load_arch_tensors: a mamba mixer with dt_rank heads, or attention."""
    e, hd = shape.n_embd, shape.hd
    d_conv, d_inner, d_state, n_heads = shape.ssm
    dt_dim = max(64, e // 16)

    def f32(name: str, *dims: int) -> None:
        w.add_tensor(name, np.ones(dims, dtype=np.float32))

    if il in shape.attention_layers:
        mat(p + "attn_qkv.weight", (shape.n_head + 2 * shape.n_kv_head) * hd, e)
        f32(p + "attn_q_norm.weight", shape.n_head, hd)
        f32(p + "attn_k_norm.weight", shape.n_kv_head, hd)
        mat(p + "attn_output.weight", e, shape.n_head * hd)
    else:
        mat(p + "ssm_in.weight", 2 * d_inner, e)
        f32(p + "ssm_conv1d.weight", d_inner, d_conv)
        mat(p + "ssm_x.weight", dt_dim + 2 * d_state, d_inner)
        f32(p + "ssm_dt.weight", n_heads, dt_dim)
        f32(p + "ssm_dt.bias", n_heads)
        f32(p + "ssm_a", n_heads)
        f32(p + "ssm_d", n_heads)
        mat(p + "ssm_out.weight", e, d_inner)
        f32(p + "ssm_dt_norm", dt_dim)
        f32(p + "ssm_b_norm", d_state)
        f32(p + "ssm_c_norm", d_state)
    vec(p + "post_attention_norm", e)
    vec(p + "ffn_norm.weight", e)
    mat(p + "ffn_up.weight", 2 * shape.n_ff, e)
    mat(p + "ffn_down.weight", e, shape.n_ff)
    vec(p + "post_ffw_norm", e)


def mamba_layer(w: GGUFWriter, p: str, shape: Shape, mat: Callable[..., None]) -> None:
    """src/models/mamba.cpp load_arch_tensors (small and 1-D tensors in F32)."""
    d_conv, d_inner, d_state, dt_rank = shape.ssm
    e = shape.n_embd

    def f32(name: str, *dims: int) -> None:
        w.add_tensor(name, np.zeros(dims, dtype=np.float32))

    mat(p + "ssm_in.weight", 2 * d_inner, e)
    f32(p + "ssm_conv1d.weight", d_inner, d_conv)
    f32(p + "ssm_conv1d.bias", d_inner)
    mat(p + "ssm_x.weight", dt_rank + 2 * d_state, d_inner)
    f32(p + "ssm_dt.weight", d_inner, dt_rank)
    f32(p + "ssm_dt.bias", d_inner)
    f32(p + "ssm_a", d_inner, d_state)
    f32(p + "ssm_d", d_inner)
    mat(p + "ssm_out.weight", e, d_inner)


def gptoss_layer(w: GGUFWriter, p: str, shape: Shape, mat: Callable[..., None]) -> None:
    """src/models/openai-moe.cpp load_arch_tensors: attention with sinks and biases, biased experts."""
    e, hd, n_exp = shape.n_embd, shape.hd, shape.n_expert
    n_ff = shape.n_ff_exp or shape.n_ff

    def f32(name: str, *dims: int) -> None:
        w.add_tensor(name, np.zeros(dims, dtype=np.float32))

    f32(p + "post_attention_norm.weight", e)
    mat(p + "attn_q.weight", shape.n_head * hd, e)
    mat(p + "attn_k.weight", shape.n_kv_head * hd, e)
    mat(p + "attn_v.weight", shape.n_kv_head * hd, e)
    mat(p + "attn_output.weight", e, shape.n_head * hd)
    f32(p + "attn_output.bias", e)
    f32(p + "attn_sinks.weight", shape.n_head)
    f32(p + "ffn_gate_inp.weight", n_exp, e)
    f32(p + "ffn_gate_inp.bias", n_exp)
    mat(p + "ffn_gate_exps.weight", n_exp, n_ff, e)
    mat(p + "ffn_up_exps.weight", n_exp, n_ff, e)
    mat(p + "ffn_down_exps.weight", n_exp, e, n_ff)
    f32(p + "ffn_gate_exps.bias", n_exp, n_ff)
    f32(p + "ffn_up_exps.bias", n_exp, n_ff)
    f32(p + "ffn_down_exps.bias", n_exp, e)


ALTUP, LAUREL, EMBD_ALTUP = 4, 64, 256  # gemma3n's hparams defaults (llama-hparams.h)


def gemma3n_globals(w: GGUFWriter, shape: Shape, mat: Callable[..., None]) -> None:
    """src/models/gemma3n.cpp load_arch_tensors: AltUp projections and per-layer embeddings."""
    e = shape.n_embd
    mat("altup_proj.weight", ALTUP - 1, e, e)
    mat("altup_unembd_proj.weight", ALTUP - 1, e, e)
    mat("per_layer_token_embd.weight", shape.n_vocab, EMBD_ALTUP * shape.n_layer)
    mat("per_layer_model_proj.weight", EMBD_ALTUP * shape.n_layer, e)
    w.add_tensor("per_layer_proj_norm.weight", np.ones(EMBD_ALTUP, dtype=np.float32))


def gemma3n_layer(w: GGUFWriter, p: str, shape: Shape, mat: Callable[..., None]) -> None:
    """src/models/gemma3n.cpp load_arch_tensors: a gemma3 layer plus AltUp, LAuReL and the
    per-layer input gate/projection (the attn_norm is written by the caller)."""
    e, hd = shape.n_embd, shape.hd

    def f32(name: str, *dims: int) -> None:
        w.add_tensor(name, np.ones(dims, dtype=np.float32))

    mat(p + "attn_q.weight", shape.n_head * hd, e)
    mat(p + "attn_k.weight", shape.n_kv_head * hd, e)
    mat(p + "attn_v.weight", shape.n_kv_head * hd, e)
    mat(p + "attn_output.weight", e, shape.n_head * hd)
    f32(p + "attn_q_norm.weight", hd)
    f32(p + "attn_k_norm.weight", hd)
    f32(p + "post_attention_norm.weight", e)
    f32(p + "ffn_norm.weight", e)
    mat(p + "ffn_gate.weight", shape.n_ff, e)
    mat(p + "ffn_up.weight", shape.n_ff, e)
    mat(p + "ffn_down.weight", e, shape.n_ff)
    f32(p + "post_ffw_norm.weight", e)
    mat(p + "inp_gate.weight", EMBD_ALTUP, e)
    mat(p + "proj.weight", e, EMBD_ALTUP)
    f32(p + "post_norm.weight", e)
    f32(p + "altup_correct_coef.weight", ALTUP, ALTUP)
    f32(p + "altup_correct_scale.weight", e)
    f32(p + "altup_predict_coef.weight", ALTUP * ALTUP, ALTUP)
    mat(p + "altup_router.weight", ALTUP, e)
    f32(p + "altup_router_norm.weight", e)
    mat(p + "laurel_l.weight", LAUREL, e)
    mat(p + "laurel_r.weight", e, LAUREL)
    f32(p + "laurel_post_norm.weight", e)

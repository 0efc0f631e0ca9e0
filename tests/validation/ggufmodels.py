"""Tiny-to-medium GGUF models of several architectures, written with gguf.GGUFWriter.

Weights are zeros (the tests measure allocations, not answers): an all-zero block is a
valid block of every ggml type (scale 0), so any weight type can be written, including
the K-quants `gguf.quants` cannot quantize. Shapes, tensor types and hyper-parameters
are real, so llama.cpp loads them like any model of that shape.

Each architecture's tensor set follows its `load_arch_tensors` in the vendored llama.cpp
(src/models/<arch>.cpp): the required tensors only. The llama-like layer (with per-architecture
flags) is written here; the other kinds of layer, `Shape` and the FFN writer live in
gguflayers.py. `WRITABLE` lists the architectures this writer knows; the fit matrix runs every
one of them that is also in the generated llama.cpp architecture data and in the `gguf`
package's architecture table.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from gguf import GGML_QUANT_SIZES, MODEL_ARCH_NAMES, ExpertGatingFuncType, GGMLQuantizationType, GGUFWriter
from gguf.quants import quantize

from tests.validation.gguflayers import (
    LORA_KV,
    LORA_Q,
    Shape,
    bert,
    deepseek2_layer,
    falcon_h1_layer,
    ffn,
    gemma3n_globals,
    gemma3n_layer,
    gptoss_layer,
    jamba_layer,
    kimi_linear_layer,
    lfm2_conv_layer,
    lora_attn_layer,
    mamba2_mixer,
    mamba_layer,
    modern_bert,
    nemotron_h_layer,
    plamo2_layer,
    qwen35_layer,
    rwkv6_layer,
    rwkv7_layer,
    t5_encoder,
)

# GPT-style layers: LayerNorms with biases, one fused QKV with its bias, a biased gate-less FFN
_GPT_LAYER = {"norm_bias", "fused_qkv", "qkv_bias", "attn_out_bias", "no_gate", "ffn_bias"}

# architecture → the per-layer extras its loader requires on top of the llama tensor set.
# Flags of the llama-like writer (_dense_layer, _ffn): no_attn_norm / no_ffn_norm /
# no_output_norm drop a norm; norm_bias adds LayerNorm biases; fused_qkv writes attn_qkv;
# qkv_bias / attn_out_bias / ffn_bias / gate_bias / output_bias add biases; no_gate and
# up_double shape the FFN; qk_norm (per head) / qk_norm_full (all heads); post_norms and
# attn_post_norm; sub_norms, attn_out_norm, tok_norm, pos_embd, enc_output_norm; experts:
# dense_lead, moe_every_2nd, exp_probs_b and a shared expert (shexp, shexp_gated: n_ff wide;
# shexp_ffexp: expert_shared_count experts wide); output_required / tied_always for the LM head.
_EXTRAS: dict[str, set[str]] = {
    "llama": set(),
    "qwen2": set(),
    "qwen3": {"qk_norm"},
    "qwen3moe": {"qk_norm", "moe_only"},
    "gemma2": {"post_norms", "tied_always"},
    "gemma3": {"qk_norm", "post_norms"},
    "phi3": {"up_double", "no_gate"},
    "granite": set(),
    "mistral3": set(),
    "smollm3": set(),
    "mamba": {"ssm"},
    "gpt-oss": {"gptoss"},
    "deepseek2": {"mla"},  # multi-head latent attention: one compressed K row per cell, no V cache
    "mamba2": {"ssm2"},  # mamba2 SSM layers only
    "granitehybrid": {"ssm2"},  # mamba2 layers + attention layers (head_count_kv 0 marks the SSM ones)
    "bert": {"bert", "pos_embd"},  # encoder-only embeddings model: no KV cache, no output head, non-causal
    "nomic-bert": {"bert", "bert_gate"},  # rotary positions, a gated FFN
    "jina-bert-v2": {"bert", "attn_out_bias", "ffn_bias"},  # ALiBi, biases required
    "qwen35": {"gdn", "qk_norm"},  # gated delta net layers, full attention on every 4th layer
    "lfm2": {"shortconv", "qk_norm"},  # short-convolution layers + attention (KV heads 0 marks conv)
    "falcon-h1": {"ssm2", "parallel_ssm"},  # every layer: a mamba2 mixer and attention side by side
    # three kinds of layer: mamba2 mixer (no KV heads, no FFN), attention alone, or an MLP alone
    "nemotron_h": {"ssm2", "nemotron_h"},
    # llama-like layers, with the variations their loaders require (see _dense_layer)
    "gemma": {"tied_always"},
    "command-r": {"tied_always", "no_ffn_norm"},  # attention and FFN in parallel off one norm
    "cohere2": {"tied_always", "no_ffn_norm"},
    "starcoder2": {"norm_bias", "no_gate", "attn_out_bias", "ffn_bias"},
    "olmo2": {"no_attn_norm", "no_ffn_norm", "qk_norm_full", "post_norms", "output_required"},
    "olmo": {"no_attn_norm", "no_ffn_norm", "no_output_norm"},  # non-parametric layer norms
    "stablelm": {"norm_bias", "output_required"},
    "internlm2": {"output_required"},
    "exaone": set(),
    "exaone4": {"no_attn_norm", "no_ffn_norm", "qk_norm", "post_norms"},
    "qwen2moe": {"shexp_gated", "output_required"},
    "granitemoe": set(),  # experts n_ff wide (no expert_feed_forward_length)
    "olmoe": {"qk_norm_full", "output_required"},
    "phimoe": {"norm_bias", "attn_out_bias", "output_required", "output_bias"},
    "minicpm": set(),
    "ernie4_5": set(),
    "ernie4_5-moe": {"dense_lead"},
    "seed_oss": {"no_ffn_norm", "attn_post_norm"},
    "apertus": {"no_gate", "qk_norm", "output_required"},
    "arcee": {"no_gate"},
    "glm4": {"no_gate", "up_double", "post_norms"},
    "deepseek": {"dense_lead", "shexp_ffexp"},
    "hunyuan-dense": {"qk_norm"},
    "hunyuan-moe": {"qk_norm", "shexp"},  # experts and the shared expert n_ff wide
    # the post-attention norm is the FFN's norm; a dense leading layer; an expert-bias per layer
    "glm4moe": {"no_ffn_norm", "attn_post_norm", "dense_lead", "shexp_ffexp", "exp_probs_b"},
    "rwkv6": {"rwkv6", "tok_norm", "norm_bias", "output_required"},  # time mix + channel mix, WKV state
    "jais": {*(_GPT_LAYER - {"no_gate"}), "gate_bias", "output_required"},  # GPT-style, a gated FFN
    "chatglm": {"no_gate", "up_double"},  # gate and up in one tensor
    "smallthinker": set(),
    "rwkv7": {"rwkv7", "tok_norm", "norm_bias", "output_required"},
    "bitnet": {"sub_norms", "tied_always"},  # norms inside attention and FFN; the LM head is tok_embd
    "exaone-moe": {"qk_norm", "dense_lead", "shexp_ffexp", "output_required"},
    "bailingmoe2": {"fused_qkv", "qk_norm", "dense_lead", "shexp_ffexp", "output_required"},
    "openelm": {"fused_qkv", "qk_norm", "tied_always"},
    "llama4": {"moe_every_2nd", "shexp_ffexp"},  # experts on every second layer; chunked attention
    "gemma-embedding": {"qk_norm", "post_norms"},  # EmbeddingGemma: a gemma3 encoder, symmetric window
    "eurobert": set(),  # a llama-like encoder: no LM head
    "jina-bert-v3": {"bert"},  # rotary positions
    "neo-bert": {"fused_qkv", "no_gate", "up_double", "enc_output_norm"},  # an encoder, SwiGLU in one up
    "qwen35moe": {"gdn", "qk_norm", "shexp_gated"},  # qwen35's layers with experts and a shared expert
    "lfm2moe": {"shortconv", "qk_norm", "dense_lead", "exp_probs_b"},
    # mamba (v1) layers with attention on some (head_count_kv 0 marks the mamba ones); experts
    # n_ff wide on every second layer, a dense FFN on the others
    "jamba": {"ssm", "jamba", "moe_every_2nd"},
    # mamba layers (per-head dt, norms without ".weight") and attention layers with a fused QKV
    # and per-head q/k norms; every layer a gate-less up-double FFN between post norms
    "plamo2": {"ssm", "plamo2"},
    # qwen35moe's layers with beta and alpha in one tensor (ssm_ba): Qwen3-Next
    "qwen3next": {"gdn", "gdn_ba", "qk_norm", "shexp_gated"},  # lfm2 with experts after layer 0
    "hunyuan_vl": {"qk_norm"},  # hunyuan-dense's loader
    "qwen2vl": set(),
    "qwen3vl": {"qk_norm"},
    "qwen3vlmoe": {"qk_norm"},
    "pangu-embedded": {"attn_out_bias"},
    "maincoder": {"qk_norm"},
    "bailingmoe": {"shexp_ffexp", "output_required"},
    "dots1": {"qk_norm", "dense_lead", "shexp_ffexp", "output_required"},
    "dbrx": {"fused_qkv", "no_ffn_norm", "attn_out_norm", "output_required"},  # LayerNorm, no biases
    # GPT-style: LayerNorm with biases, one fused QKV, a gate-less FFN
    "gpt2": {*_GPT_LAYER, "pos_embd"},
    "starcoder": {*_GPT_LAYER, "pos_embd"},
    "gptneox": {*_GPT_LAYER, "output_required"},
    "bloom": {*_GPT_LAYER, "tok_norm"},
    "mpt": {"fused_qkv", "no_gate"},  # ALiBi, no biases
    "falcon": {"norm_bias", "fused_qkv", "no_ffn_norm", "no_gate"},  # attention and FFN in parallel
    "baichuan": {"output_required"},
    "orion": {"norm_bias", "output_required"},
    "xverse": {"output_required"},
    "codeshell": {"norm_bias", "attn_out_bias", "no_gate", "ffn_bias", "output_required"},
    "refact": set(),
    "plamo": {"no_ffn_norm", "output_required"},  # attention and FFN in parallel
    "nemotron": {"norm_bias", "no_gate", "output_required"},
    # added for issue 17 (each from its load_arch_tensors)
    "qwen": {"fused_qkv", "qkv_bias", "ffn_half", "output_required"},  # gate/up/down n_ff/2 wide
    "jais2": {"norm_bias", "attn_out_bias", "no_gate", "ffn_bias"},  # LayerNorms, a biased gate-less MLP
    "deci": set(),  # llama's tensors (per-layer heads and n_ff are optional arrays)
    "plamo3": {"fused_qkv", "qk_norm", "post_norms_bare", "no_gate", "up_double"},
    "minimax-m2": {"qk_norm_full", "exp_probs_b", "output_required"},  # experts n_ff wide
    "chameleon": {"qk_norm_heads"},  # q/k norms per head, {head_dim, n_head}
    "nomic-bert-moe": {"bert", "bert_moe"},
    # ModernBERT: fused QKV, GeGLU in one up tensor, no biases, a symmetric window on 2 of 3 layers
    "modern-bert": {"bert", "modern_bert"},  # nomic-bert's encoder, experts on every second layer
    "mistral4": {"mla"},  # deepseek2's loader and graph
    "glm-dsa": {"mla"},  # deepseek2's layers with a lightning indexer and its key cache
    # KDA linear-attention layers (recurrent state) and MLA layers; output.weight required
    "kimi-linear": {"mla", "kimi", "output_required"},
    "llama-embed": set(),  # llama's loader; its graph in the embedding form
    # nemotron_h's three kinds of layer, the MLP ones gate-less experts and a gate-less shared expert
    "nemotron_h_moe": {"ssm2", "nemotron_h", "nh_moe"},
    # low-rank K/V (and Q) projections, decompressed into an ordinary per-head KV cache
    "minicpm3": {"lora_attn", "lora_q"},
    "plm": {"lora_attn", "tied_always"},  # q unfactored; a gate-less FFN
    "grovemoe": {"qk_norm", "chexps", "moe_only"},  # experts, then "chunk" experts of a group
    # gemma3-like layers (q/k norms, post norms), a rope_freqs tensor for the full-attention
    # layers, a required per-layer window array; no per-layer embeddings, no experts
    "gemma4": {"qk_norm", "post_norms", "rope_freqs"},
    # gemma3's layers with AltUp (four hidden-state copies), LAuReL and per-layer embeddings
    "gemma3n": {"gemma3n"},
    "paddleocr": set(),  # ernie4_5's loader, a qwen2vl-like graph (multimodal rope sections)
    "deepseek2-ocr": {"dense_lead", "shexp_ffexp"},  # deepseek2's graph without MLA, K/V n_embd wide
    "cogvlm": {"fused_qkv", "visexp"},  # a second (vision-expert) attention and FFN per layer
    "arctic": {"arctic"},  # a dense FFN n_embd wide beside experts n_ff wide, on every layer
    # a gated attention (attn_gate, q wide), post norms, experts after a dense layer
    "afmoe": {"qk_norm", "post_norms", "attn_gate", "dense_lead", "exp_probs_b", "shexp_ffexp"},
    # experts n_ff wide (no expert_feed_forward_length), no dense FFN; attention softcapping
    "grok": {"attn_out_norm", "ffn_post_norm", "moe_only"},
    # experts after a dense first layer; a per-layer sliding-window array (required)
    "mimo2": {"dense_lead", "exp_probs_b", "output_required"},
    "step35": {"dense_lead", "shexp_ffexp", "exp_probs_b", "output_required"},
    # rwkv time mix with a qwen2 FFN (RWKV-distilled Qwen): no channel mix, RMS norms
    "rwkv6qwen2": {"rwkv6", "qwen_ffn", "output_required"},
    "arwkv7": {"rwkv7", "qwen_ffn", "output_required"},
    # diffusion models: llama-like tensors, non-causal, no KV cache, an LM head
    "dream": set(),
    "llada": set(),
    "llada-moe": {"qk_norm", "output_required"},
    "rnd1": {"qk_norm"},
    # T5's encoder alone (an embeddings model): relative position buckets, no KV read
    "t5encoder": {"t5enc"},
    "phi2": {
        "norm_bias",
        "attn_out_bias",
        "no_ffn_norm",
        "no_gate",
        "ffn_bias",
        "output_required",
        "output_bias",
    },
}

# hyper-parameters the loaders require beyond the common ones ("{arch}" is the architecture)
_MROPE = [11, 11, 10, 0]  # multimodal rope sections: a head of 64 (32 rotary pairs)
_KEYS: dict[str, dict[str, bool | int | float | list[int]]] = {
    "rwkv6": {"{arch}.wkv.head_size": 64, "{arch}.time_mix_extra_dim": 32, "{arch}.time_decay_extra_dim": 64},
    # one token shift (the time mix's; no channel mix): the graph asserts n_embd == n_embd_r
    "rwkv6qwen2": {
        "{arch}.wkv.head_size": 64,
        "{arch}.time_mix_extra_dim": 32,
        "{arch}.time_decay_extra_dim": 64,
        "{arch}.token_shift_count": 1,
    },
    "arwkv7": {
        "{arch}.wkv.head_size": 64,
        "{arch}.token_shift_count": 1,
        "{arch}.attention.decay_lora_rank": 64,
        "{arch}.attention.iclr_lora_rank": 64,
        "{arch}.attention.value_residual_mix_lora_rank": 32,
        "{arch}.attention.gate_lora_rank": 128,
    },
    "rwkv7": {
        "{arch}.wkv.head_size": 64,
        "{arch}.attention.decay_lora_rank": 64,
        "{arch}.attention.iclr_lora_rank": 64,
        "{arch}.attention.value_residual_mix_lora_rank": 32,
        "{arch}.attention.gate_lora_rank": 128,
    },
    "exaone-moe": {
        "{arch}.leading_dense_block_count": 1,
        "{arch}.expert_shared_feed_forward_length": 512,
        "{arch}.expert_gating_func": 1,  # softmax
    },
    "bailingmoe2": {
        "{arch}.leading_dense_block_count": 1,
        "{arch}.expert_shared_count": 1,
        "{arch}.expert_shared_feed_forward_length": 512,
        "{arch}.expert_gating_func": 1,
    },
    "llama4": {"{arch}.interleave_moe_layer_step": 2},
    "lfm2moe": {"{arch}.leading_dense_block_count": 1, "{arch}.expert_gating_func": 2},  # sigmoid
    "qwen2vl": {"{arch}.rope.dimension_sections": _MROPE},
    "qwen3vl": {"{arch}.rope.dimension_sections": _MROPE},
    "qwen3vlmoe": {"{arch}.rope.dimension_sections": _MROPE},
    "bailingmoe": {"{arch}.expert_shared_count": 1},
    # the graph aborts on gating function NONE (llm_graph_context::build_moe_ffn): softmax
    "dots1": {
        "{arch}.leading_dense_block_count": 1,
        "{arch}.expert_shared_count": 1,
        "{arch}.expert_gating_func": 1,
    },
    "smallthinker": {"{arch}.expert_gating_func": 1},
    "dbrx": {"{arch}.attention.clamp_kqv": 8.0},
    "gptneox": {"{arch}.use_parallel_residual": True},
    "cohere2": {"{arch}.logit_scale": 0.125},
    "granitemoe": {"{arch}.logit_scale": 1.0},
    "ernie4_5-moe": {"{arch}.interleave_moe_layer_step": 1, "{arch}.leading_dense_block_count": 1},
    "deepseek": {"{arch}.leading_dense_block_count": 1, "{arch}.expert_shared_count": 1},
    "glm4moe": {"{arch}.leading_dense_block_count": 1, "{arch}.expert_shared_count": 1},
    "nomic-bert-moe": {"{arch}.moe_every_n_layers": 2},
    "step35": {"{arch}.expert_shared_feed_forward_length": 512},
    "grovemoe": {"{arch}.expert_group_scale": 0.05, "{arch}.experts_per_group": 2},
    "nemotron_h_moe": {"{arch}.expert_shared_feed_forward_length": 512},
    "paddleocr": {"{arch}.rope.dimension_sections": _MROPE},
    # sliding layers' heads as wide as the full ones' (our estimate has one head size)
    "gemma4": {
        "{arch}.embedding_length_per_layer_input": 0,
        "{arch}.attention.key_length_swa": 64,
        "{arch}.attention.value_length_swa": 64,
    },
    "deepseek2-ocr": {"{arch}.leading_dense_block_count": 1, "{arch}.expert_shared_count": 1},
    "afmoe": {
        "{arch}.leading_dense_block_count": 1,
        "{arch}.expert_shared_count": 1,
        "{arch}.expert_gating_func": 2,  # sigmoid
    },
    "minimax-m2": {"{arch}.expert_gating_func": 2},  # sigmoid
    "t5encoder": {"{arch}.attention.relative_buckets_count": 32},
    "glm-dsa": {
        "{arch}.attention.indexer.head_count": 8,
        "{arch}.attention.indexer.key_length": 128,
        "{arch}.attention.indexer.top_k": 256,
    },
    "apertus": {"xielu.alpha_n": 0.8, "xielu.alpha_p": 0.8, "xielu.beta": 0.5, "xielu.eps": 1e-6},
}
WRITABLE = tuple(a for a in _EXTRAS if a in set(MODEL_ARCH_NAMES.values()))

__all__ = ["WRITABLE", "Shape", "write_gguf"]


def _vocab(n: int) -> tuple[list[bytes], list[float], list[int]]:
    # A valid SentencePiece-style vocab: unk, bos, eos, 256 byte tokens, then fillers.
    tokens = [b"<unk>", b"<s>", b"</s>"] + [f"<0x{i:02X}>".encode() for i in range(256)]
    types = [2, 3, 3] + [6] * 256
    tokens += [f"t{i}".encode() for i in range(n - len(tokens))]
    types += [1] * (n - len(types))
    return tokens[:n], [0.0] * n, types[:n]


def _wordpiece_vocab(n: int) -> tuple[list[bytes], list[float], list[int]]:
    # BERT's layout: [PAD] 0, [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103 (llama-vocab.cpp's
    # WPM defaults), no byte tokens (WPM has none), then word pieces.
    special = {0: b"[PAD]", 100: b"[UNK]", 101: b"[CLS]", 102: b"[SEP]", 103: b"[MASK]"}
    tokens = [special.get(i, f"[unused{i}]".encode()) for i in range(104)]
    types = [2 if i == 100 else 3 for i in range(104)]
    tokens += [f"w{i}".encode() for i in range(n - len(tokens))]
    types += [1] * (n - len(types))
    return tokens[:n], [0.0] * n, types[:n]


def write_gguf(shape: Shape, path: Path) -> Path:
    extras = _EXTRAS.get(shape.arch, set())
    w = GGUFWriter(str(path), shape.arch)
    w.add_name("cortex synthetic")  # not the arch: llama.cpp keys vocab quirks off general.name
    w.add_block_count(shape.n_layer)
    w.add_context_length(shape.context_length)
    w.add_embedding_length(shape.n_embd)
    if "nemotron_h" in extras:  # n_ff 0 marks the mixer and attention layers
        w.add_feed_forward_length([shape.n_ff if i in shape.mlp_layers else 0 for i in range(shape.n_layer)])
        w.add_layer_norm_eps(1e-5)  # required by src/models/nemotron-h.cpp
    else:
        w.add_feed_forward_length(shape.n_ff)
    w.add_head_count(shape.n_head)
    if "mla" in extras:  # as convert_hf_to_gguf writes MLA: one latent "head" per cell
        q_lora, kv_lora, rope, nope, v_dim = shape.mla
        if "kimi" in extras:  # no KV heads marks a KDA layer (conversion/kimi_linear.py)
            w.add_head_count_kv([1 if i in shape.attention_layers else 0 for i in range(shape.n_layer)])
            w.add_ssm_conv_kernel(shape.kda[0])
            w.add_kda_head_dim(shape.kda[1])
            w.add_expert_gating_func(ExpertGatingFuncType.SIGMOID)
        else:
            w.add_head_count_kv(1)
        w.add_key_length(kv_lora + rope)
        w.add_value_length(kv_lora)
        w.add_key_length_mla(nope + rope)
        w.add_value_length_mla(v_dim)
        w.add_q_lora_rank(q_lora)
        w.add_kv_lora_rank(kv_lora)
        w.add_leading_dense_block_count(shape.n_layer_dense_lead)
        w.add_expert_shared_count(shape.n_expert_shared)
    elif (
        ("ssm2" in extras and shape.arch != "mamba2" and "parallel_ssm" not in extras)
        or "shortconv" in extras
        or "jamba" in extras
        or "plamo2" in extras
    ):  # hybrid: no KV on SSM/conv
        kv = [shape.n_kv_head if i in shape.attention_layers else 0 for i in range(shape.n_layer)]
        w.add_head_count_kv(kv)
        w.add_key_length(shape.hd)
        w.add_value_length(shape.hd)
    else:
        w.add_head_count_kv(shape.n_kv_head)
        w.add_key_length(shape.hd)
        w.add_value_length(shape.hd)
    w.add_layer_norm_rms_eps(1e-6)
    if not {"bert", "nemotron_h"} & extras:  # LayerNorm architectures require it (the rest ignore it)
        w.add_layer_norm_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    if "mla" in extras:
        w.add_rope_dimension_count(shape.mla[2])
    elif "lora_attn" in extras:  # half of each head rotary, half not (minicpm3, plm)
        w.add_rope_dimension_count(shape.hd // 2)
        w.add_kv_lora_rank(LORA_KV)
        if "lora_q" in extras:
            w.add_q_lora_rank(LORA_Q)
    elif shape.arch != "gemma3":
        w.add_rope_dimension_count(shape.hd)
    if shape.sliding_window:
        w.add_sliding_window(shape.sliding_window)
    if isinstance(shape.sliding_window_pattern, tuple):
        w.add_array(f"{shape.arch}.attention.sliding_window_pattern", list(shape.sliding_window_pattern))
    elif shape.sliding_window_pattern is not None:
        w.add_uint32(f"{shape.arch}.attention.sliding_window_pattern", shape.sliding_window_pattern)
    if shape.n_expert:
        w.add_expert_count(shape.n_expert)
        w.add_expert_used_count(shape.n_expert_used)
        if shape.n_ff_exp:
            w.add_expert_feed_forward_length(shape.n_ff_exp)
    if "ssm" in extras:
        d_conv, d_inner, d_state, dt_rank = shape.ssm
        w.add_ssm_conv_kernel(d_conv)
        w.add_ssm_inner_size(d_inner)
        w.add_ssm_state_size(d_state)
        w.add_ssm_time_step_rank(dt_rank)
        if "plamo2" in extras:  # required by its loader; 0: one conv over d_inner (as mamba)
            w.add_ssm_group_count(0)
    if "gdn" in extras:  # src/models/qwen35.cpp load_arch_hparams
        d_conv, gd, n_k, n_v = shape.gdn
        w.add_ssm_conv_kernel(d_conv)
        w.add_ssm_inner_size(gd * n_v)
        w.add_ssm_state_size(gd)
        w.add_ssm_time_step_rank(n_v)
        w.add_ssm_group_count(n_k)
        w.add_rope_dimension_sections([11, 11, 10, 0])
    if "ssm2" in extras:
        d_conv, d_inner, d_state, n_group, n_ssm_head = shape.ssm2
        w.add_ssm_conv_kernel(d_conv)
        w.add_ssm_inner_size(d_inner)
        w.add_ssm_state_size(d_state)
        w.add_ssm_time_step_rank(n_ssm_head)
        w.add_ssm_group_count(n_group)
    if "shortconv" in extras:  # src/models/lfm2.cpp load_arch_hparams
        w.add_uint32(f"{shape.arch}.shortconv.l_cache", shape.shortconv_l_cache)
    if "bert" in extras:
        from gguf import PoolingType

        w.add_layer_norm_eps(1e-12)
        w.add_causal_attention(False)
        w.add_pooling_type(PoolingType.MEAN)
        w.add_token_type_count(2)
    for k, v in _KEYS.get(shape.arch, {}).items():
        key = k.format(arch=shape.arch)
        if isinstance(v, list):
            w.add_array(key, v)
        elif isinstance(v, bool):
            w.add_bool(key, v)
        elif isinstance(v, float):
            w.add_float32(key, v)
        else:
            w.add_uint32(key, v)
    for k, v in shape.extra_keys.items():
        if isinstance(v, float):
            w.add_float32(f"{shape.arch}.{k}", v)
        else:
            w.add_uint32(f"{shape.arch}.{k}", v)
    if "bert" in extras:
        tokens, scores, types = _wordpiece_vocab(shape.n_vocab)
        w.add_tokenizer_model("bert")
    else:
        tokens, scores, types = _vocab(shape.n_vocab)
        w.add_tokenizer_model("llama")
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
        w.add_unk_token_id(0)
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)

    wanted = GGMLQuantizationType[shape.weight_type]

    def mat(name: str, *dims: int) -> None:
        # numpy shape (…, rows, cols) = ggml ne [cols, rows, …]
        qtype = _fitting(wanted, dims[-1])
        if qtype == GGMLQuantizationType.F16:
            w.add_tensor(name, np.zeros(dims, dtype=np.float16))
        elif qtype == GGMLQuantizationType.F32:
            w.add_tensor(name, np.zeros(dims, dtype=np.float32))
        elif qtype in (GGMLQuantizationType.Q8_0, GGMLQuantizationType.Q4_0, GGMLQuantizationType.MXFP4):
            # really quantized (gguf.quants); every row is the same, so quantize one and tile it
            row = quantize(np.zeros((1, dims[-1]), dtype=np.float32), qtype)
            w.add_tensor(name, np.broadcast_to(row, (*dims[:-1], row.shape[-1])).copy(), raw_dtype=qtype)
        else:  # zero blocks of the type: valid for every ggml type
            block, size = GGML_QUANT_SIZES[qtype]
            raw = np.zeros((*dims[:-1], dims[-1] // block * size), dtype=np.uint8)
            w.add_tensor(name, raw, raw_dtype=qtype)

    def vec(name: str, n: int) -> None:
        w.add_tensor(name, np.ones(n, dtype=np.float32))

    e = shape.n_embd
    mat("token_embd.weight", shape.n_vocab, e)
    if "pos_embd" in extras and "bert" not in extras:  # learned positions (gpt2, starcoder)
        mat("position_embd.weight", shape.context_length, e)
    if "tok_norm" in extras:  # a LayerNorm right after the embedding (bloom)
        vec("token_embd_norm.weight", e)
        vec("token_embd_norm.bias", e)
    if "t5enc" in extras:
        t5_encoder(shape, mat, vec)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return path
    if "bert" in extras:
        if "modern_bert" in extras:
            modern_bert(shape, mat, vec)
        else:
            bert(w, shape, extras, mat, vec)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return path
    # lfm2's output norm is named token_embd_norm (llama-arch.cpp LLM_TENSOR_OUTPUT_NORM_LFM2)
    if "enc_output_norm" in extras:
        vec("enc.output_norm.weight", e)
    elif "no_output_norm" not in extras:
        vec("token_embd_norm.weight" if "shortconv" in extras else "output_norm.weight", e)
        if "norm_bias" in extras:
            vec("output_norm.bias", e)
    if (not shape.tied_output and "tied_always" not in extras) or {"gptoss", "output_required"} & extras:
        mat("output.weight", shape.n_vocab, e)
        if "output_bias" in extras:
            vec("output.bias", shape.n_vocab)
    if "gemma3n" in extras:
        gemma3n_globals(w, shape, mat)
    if "rope_freqs" in extras:  # one tensor, shared by the full-attention layers (gemma4)
        vec("rope_freqs.weight", shape.hd // 2)
    for i in range(shape.n_layer):
        p = f"blk.{i}."
        if "no_attn_norm" not in extras:
            vec(p + "attn_norm.weight", e)
            if "norm_bias" in extras:
                vec(p + "attn_norm.bias", e)
        if "gemma3n" in extras:
            gemma3n_layer(w, p, shape, mat)
            continue
        if "jamba" in extras:
            jamba_layer(w, p, i, shape, extras, mat, vec)
            continue
        if "plamo2" in extras:
            plamo2_layer(w, p, i, shape, mat, vec)
            continue
        if "ssm" in extras:
            mamba_layer(w, p, shape, mat)
            continue
        if "rwkv6" in extras:
            rwkv6_layer(w, p, shape, extras, mat)
            continue
        if "rwkv7" in extras:
            rwkv7_layer(w, p, i, shape, extras, mat)
            continue
        if "gptoss" in extras:
            gptoss_layer(w, p, shape, mat)
            continue
        if "kimi" in extras:
            kimi_linear_layer(w, p, i, shape, mat)
            continue
        if "mla" in extras:
            deepseek2_layer(w, p, i, shape, mat)
            continue
        if "lora_attn" in extras:
            lora_attn_layer(w, p, shape, extras, mat)
            continue
        if "gdn" in extras:
            qwen35_layer(w, p, i, shape, extras, mat)
            continue
        if "parallel_ssm" in extras:
            falcon_h1_layer(w, p, shape, mat)
            continue
        if "nemotron_h" in extras:
            nemotron_h_layer(w, p, i, shape, extras, mat)
            continue
        if "shortconv" in extras and i not in shape.attention_layers:
            lfm2_conv_layer(w, p, i, shape, extras, mat)
            continue
        if "ssm2" in extras and i not in shape.attention_layers:
            mamba2_mixer(w, p, shape, mat)
            if shape.arch == "mamba2":
                continue
            vec(p + "ffn_norm.weight", e)
            mat(p + "ffn_gate.weight", shape.n_ff, e)
            mat(p + "ffn_up.weight", shape.n_ff, e)
            mat(p + "ffn_down.weight", e, shape.n_ff)
            continue
        _dense_layer(w, p, i, shape, extras, mat, vec)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _dense_layer(
    w: GGUFWriter,
    p: str,
    il: int,
    shape: Shape,
    extras: set[str],
    mat: Callable[..., None],
    vec: Callable[[str, int], None],
) -> None:
    """The llama-like layer after its attn_norm: attention, FFN (dense or experts), and the
    per-architecture variations the loaders require (biases, norms, shared experts)."""
    e, hd = shape.n_embd, shape.hd
    q_dim, kv_dim = shape.n_head * hd, shape.n_kv_head * hd
    if "fused_qkv" in extras:
        mat(p + "attn_qkv.weight", q_dim + 2 * kv_dim, e)
        if "qkv_bias" in extras:
            vec(p + "attn_qkv.bias", q_dim + 2 * kv_dim)
    else:
        mat(p + "attn_q.weight", q_dim, e)
        mat(p + "attn_k.weight", kv_dim, e)
        mat(p + "attn_v.weight", kv_dim, e)
    mat(p + "attn_output.weight", e, q_dim)
    if "qkv_bias" in extras and "fused_qkv" not in extras:
        vec(p + "attn_q.bias", q_dim)
        vec(p + "attn_k.bias", kv_dim)
        vec(p + "attn_v.bias", kv_dim)
    if "attn_out_bias" in extras:
        vec(p + "attn_output.bias", e)
    if "sub_norms" in extras:  # bitnet: a norm before the attention output and the FFN's down
        vec(p + "attn_sub_norm.weight", e)
        vec(p + "ffn_sub_norm.weight", shape.n_ff)
    if "attn_out_norm" in extras:  # a norm after the attention output (dbrx)
        vec(p + "attn_output_norm.weight", e)
    if "no_ffn_norm" not in extras:
        vec(p + "ffn_norm.weight", e)
        if "norm_bias" in extras:
            vec(p + "ffn_norm.bias", e)
    ffn(w, p, il, shape, extras, mat, vec)
    if "qk_norm" in extras:
        vec(p + "attn_q_norm.weight", hd)
        vec(p + "attn_k_norm.weight", hd)
    if "qk_norm_full" in extras:  # over all heads at once (olmo2)
        vec(p + "attn_q_norm.weight", q_dim)
        vec(p + "attn_k_norm.weight", kv_dim)
    if "qk_norm_heads" in extras:  # one norm per head (chameleon)
        w.add_tensor(p + "attn_q_norm.weight", np.ones((shape.n_head, hd), dtype=np.float32))
        w.add_tensor(p + "attn_k_norm.weight", np.ones((shape.n_kv_head, hd), dtype=np.float32))
    if "post_norms" in extras or "attn_post_norm" in extras:
        vec(p + "post_attention_norm.weight", e)
    if "post_norms" in extras:
        vec(p + "post_ffw_norm.weight", e)
    if "visexp" in extras:  # cogvlm: the vision expert's attention and FFN (image tokens)
        mat(p + "vis_attn_qkv.weight", 3 * q_dim, e)
        mat(p + "vis_attn_output.weight", e, q_dim)
        mat(p + "vis_gate.weight", shape.n_ff, e)
        mat(p + "vis_up.weight", shape.n_ff, e)
        mat(p + "vis_down.weight", e, shape.n_ff)
    if "ffn_post_norm" in extras:  # grok: only the FFN's post norm
        vec(p + "post_ffw_norm.weight", e)
    if "attn_gate" in extras:  # afmoe: a sigmoid gate on the attention output, q wide
        mat(p + "attn_gate.weight", q_dim, e)
    if "post_norms_bare" in extras:  # tn(LLM_TENSOR_ATTN_POST_NORM, i): no ".weight" (plamo3)
        vec(p + "post_attention_norm", e)
        vec(p + "post_ffw_norm", e)


def _fitting(wanted: GGMLQuantizationType, row: int) -> GGMLQuantizationType:
    """The wanted type if a row of `row` elements holds whole blocks of it; else Q8_0, else F16
    (what llama-quantize does with tensors too narrow for a K-quant)."""
    for qtype in (wanted, GGMLQuantizationType.Q8_0, GGMLQuantizationType.F16):
        if row % GGML_QUANT_SIZES[qtype][0] == 0:
            return qtype
    return GGMLQuantizationType.F16

"""Tiny-to-medium GGUF models for tests, written with gguf.GGUFWriter.

Weights are zeros (the tests measure allocations, not answers); shapes, tensor types
and hyper-parameters are real, so llama.cpp loads them like any model of that shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter
from gguf.quants import quantize


@dataclass(frozen=True)
class Shape:
    name: str
    arch: str = "llama"  # llama or gemma3
    n_layer: int = 4
    n_embd: int = 256
    n_head: int = 8
    n_kv_head: int = 8
    n_ff: int = 768
    n_vocab: int = 4096
    head_dim: int | None = None
    context_length: int = 4096
    sliding_window: int | None = None
    weight_type: str = "F16"  # F16 or Q8_0 for 2-D weights
    tied_output: bool = True

    @property
    def hd(self) -> int:
        return self.head_dim or self.n_embd // self.n_head


def _vocab(n: int) -> tuple[list[bytes], list[float], list[int]]:
    # A valid SentencePiece-style vocab: unk, bos, eos, 256 byte tokens, then fillers.
    tokens = [b"<unk>", b"<s>", b"</s>"] + [f"<0x{i:02X}>".encode() for i in range(256)]
    types = [2, 3, 3] + [6] * 256
    tokens += [f"t{i}".encode() for i in range(n - len(tokens))]
    types += [1] * (n - len(types))
    return tokens[:n], [0.0] * n, types[:n]


def write_gguf(shape: Shape, path: Path) -> Path:
    w = GGUFWriter(str(path), shape.arch)
    w.add_name(shape.name)
    w.add_block_count(shape.n_layer)
    w.add_context_length(shape.context_length)
    w.add_embedding_length(shape.n_embd)
    w.add_feed_forward_length(shape.n_ff)
    w.add_head_count(shape.n_head)
    w.add_head_count_kv(shape.n_kv_head)
    w.add_key_length(shape.hd)
    w.add_value_length(shape.hd)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(10000.0)
    if shape.arch == "llama":
        w.add_rope_dimension_count(shape.hd)
    if shape.sliding_window:
        w.add_sliding_window(shape.sliding_window)
    tokens, scores, types = _vocab(shape.n_vocab)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)

    qtype = GGMLQuantizationType[shape.weight_type]

    def mat(name: str, rows: int, cols: int) -> None:
        # numpy shape (rows, cols) = ggml ne [cols, rows]
        data = np.zeros((rows, cols), dtype=np.float32)
        if qtype == GGMLQuantizationType.F16:
            w.add_tensor(name, data.astype(np.float16))
        else:
            w.add_tensor(name, quantize(data, qtype), raw_dtype=qtype)

    def vec(name: str, n: int) -> None:
        w.add_tensor(name, np.ones(n, dtype=np.float32))

    e, hd = shape.n_embd, shape.hd
    mat("token_embd.weight", shape.n_vocab, e)
    vec("output_norm.weight", e)
    if not shape.tied_output:
        mat("output.weight", shape.n_vocab, e)
    for i in range(shape.n_layer):
        p = f"blk.{i}."
        vec(p + "attn_norm.weight", e)
        mat(p + "attn_q.weight", shape.n_head * hd, e)
        mat(p + "attn_k.weight", shape.n_kv_head * hd, e)
        mat(p + "attn_v.weight", shape.n_kv_head * hd, e)
        mat(p + "attn_output.weight", e, shape.n_head * hd)
        vec(p + "ffn_norm.weight", e)
        mat(p + "ffn_gate.weight", shape.n_ff, e)
        mat(p + "ffn_up.weight", shape.n_ff, e)
        mat(p + "ffn_down.weight", e, shape.n_ff)
        if shape.arch == "gemma3":
            vec(p + "attn_q_norm.weight", hd)
            vec(p + "attn_k_norm.weight", hd)
            vec(p + "post_attention_norm.weight", e)
            vec(p + "post_ffw_norm.weight", e)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path

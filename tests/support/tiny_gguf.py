"""Tiny but valid llama-architecture GGUF files for fast engine tests.

Random weights, a byte-fallback SentencePiece vocabulary: llama-server loads it
in well under a second and generates (meaningless) tokens.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFWriter, TokenType

N_EMBD = 64
N_HEAD = 4
N_HEAD_KV = 2
N_LAYER = 2
N_FF = 128
N_CTX_TRAIN = 2048
WORDS = ["▁the", "▁a", "▁cat", "▁dog", "▁is", "▁on", "▁mat", "▁hello", "▁world", "▁and", "."]


def write_tiny_llama(
    path: Path,
    *,
    n_ctx_train: int = N_CTX_TRAIN,
    arch: str = "llama",
    n_layer: int = N_LAYER,
    n_embd: int = N_EMBD,
    seed: int = 0,
) -> Path:
    """Write a tiny llama GGUF to `path`.

    `arch` other than llama gives an unsupported-architecture file; more layers give a
    bigger KV cache per context cell (for out-of-memory tests).
    """
    rng = np.random.default_rng(seed)
    tokens: list[bytes] = [b"<unk>", b"<s>", b"</s>"]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL]
    tokens += [f"<0x{i:02X}>".encode() for i in range(256)]
    types += [TokenType.BYTE] * 256
    tokens += [w.encode() for w in WORDS]
    types += [TokenType.NORMAL] * len(WORDS)
    n_vocab = len(tokens)
    scores = [0.0] * 3 + [-1000.0] * 256 + [-float(i) for i in range(len(WORDS))]

    w = GGUFWriter(str(path), arch)
    w.add_name("cortex-tiny-llama")
    w.add_context_length(n_ctx_train)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_rope_dimension_count(n_embd // N_HEAD)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(0)  # all F32
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)

    def t(name: str, *shape: int) -> None:
        w.add_tensor(name, (rng.standard_normal(shape) * 0.02).astype(np.float32))

    head_dim = n_embd // N_HEAD
    t("token_embd.weight", n_vocab, n_embd)
    w.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    t("output.weight", n_vocab, n_embd)
    for i in range(n_layer):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        t(f"blk.{i}.attn_q.weight", n_embd, n_embd)
        t(f"blk.{i}.attn_k.weight", N_HEAD_KV * head_dim, n_embd)
        t(f"blk.{i}.attn_v.weight", N_HEAD_KV * head_dim, n_embd)
        t(f"blk.{i}.attn_output.weight", n_embd, n_embd)
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        t(f"blk.{i}.ffn_gate.weight", N_FF, n_embd)
        t(f"blk.{i}.ffn_up.weight", N_FF, n_embd)
        t(f"blk.{i}.ffn_down.weight", n_embd, N_FF)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path

"""Real public config.json contents, and safetensors files with matching headers.

The configs are copied from the models' public Hugging Face repos (no downloads at test
time). Each shard gets a real safetensors header describing the model's real tensors;
the data region is a sparse hole (`truncate`), so a 93 GB Mixtral costs no disk — and
proves the inspector reads headers only.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

LLAMA_31_8B_INSTRUCT: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 128000,
    "eos_token_id": [128001, 128008, 128009],
    "hidden_act": "silu",
    "hidden_size": 4096,
    "initializer_range": 0.02,
    "intermediate_size": 14336,
    "max_position_embeddings": 131072,
    "mlp_bias": False,
    "model_type": "llama",
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
        "rope_type": "llama3",
    },
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.42.3",
    "use_cache": True,
    "vocab_size": 128256,
}

QWEN25_7B_INSTRUCT_AWQ: dict[str, Any] = {
    "architectures": ["Qwen2ForCausalLM"],
    "attention_dropout": 0.0,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "hidden_act": "silu",
    "hidden_size": 3584,
    "initializer_range": 0.02,
    "intermediate_size": 18944,
    "max_position_embeddings": 32768,
    "max_window_layers": 28,
    "model_type": "qwen2",
    "num_attention_heads": 28,
    "num_hidden_layers": 28,
    "num_key_value_heads": 4,
    "quantization_config": {
        "bits": 4,
        "group_size": 128,
        "modules_to_not_convert": None,
        "quant_method": "awq",
        "version": "gemm",
        "zero_point": True,
    },
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "sliding_window": 131072,
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
    "transformers_version": "4.41.1",
    "use_cache": True,
    "use_sliding_window": False,
    "vocab_size": 152064,
}

MIXTRAL_8X7B_INSTRUCT: dict[str, Any] = {
    "architectures": ["MixtralForCausalLM"],
    "attention_dropout": 0.0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "hidden_act": "silu",
    "hidden_size": 4096,
    "initializer_range": 0.02,
    "intermediate_size": 14336,
    "max_position_embeddings": 32768,
    "model_type": "mixtral",
    "num_attention_heads": 32,
    "num_experts_per_tok": 2,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "num_local_experts": 8,
    "output_router_logits": False,
    "rms_norm_eps": 1e-05,
    "rope_theta": 1000000.0,
    "router_aux_loss_coef": 0.02,
    "sliding_window": None,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.36.0.dev0",
    "use_cache": True,
    "vocab_size": 32000,
}

GEMMA2_9B_IT: dict[str, Any] = {
    "architectures": ["Gemma2ForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "attn_logit_softcapping": 50.0,
    "bos_token_id": 2,
    "cache_implementation": "hybrid",
    "eos_token_id": 1,
    "final_logit_softcapping": 30.0,
    "head_dim": 256,
    "hidden_act": "gelu_pytorch_tanh",
    "hidden_activation": "gelu_pytorch_tanh",
    "hidden_size": 3584,
    "initializer_range": 0.02,
    "intermediate_size": 14336,
    "max_position_embeddings": 8192,
    "model_type": "gemma2",
    "num_attention_heads": 16,
    "num_hidden_layers": 42,
    "num_key_value_heads": 8,
    "pad_token_id": 0,
    "query_pre_attn_scalar": 256,
    "rms_norm_eps": 1e-06,
    "rope_theta": 10000.0,
    "sliding_window": 4096,
    "sliding_window_size": 4096,
    "torch_dtype": "float32",
    "transformers_version": "4.42.0.dev0",
    "use_cache": True,
    "vocab_size": 256000,
}

GEMMA3_1B_IT: dict[str, Any] = {
    "architectures": ["Gemma3ForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "attn_logit_softcapping": None,
    "bos_token_id": 2,
    "cache_implementation": "hybrid",
    "eos_token_id": [1, 106],
    "final_logit_softcapping": None,
    "head_dim": 256,
    "hidden_activation": "gelu_pytorch_tanh",
    "hidden_size": 1152,
    "initializer_range": 0.02,
    "intermediate_size": 6912,
    "max_position_embeddings": 32768,
    "model_type": "gemma3_text",
    "num_attention_heads": 4,
    "num_hidden_layers": 26,
    "num_key_value_heads": 1,
    "pad_token_id": 0,
    "query_pre_attn_scalar": 256,
    "rms_norm_eps": 1e-06,
    "rope_local_base_freq": 10000,
    "rope_scaling": None,
    "rope_theta": 1000000,
    "sliding_window": 512,
    "sliding_window_pattern": 6,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.50.0.dev0",
    "use_cache": True,
    "vocab_size": 262144,
}

DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "I32": 4}
Tensor = tuple[str, str, list[int]]  # name, dtype, shape


def dense_tensors(cfg: dict[str, Any], dtype: str) -> list[Tensor]:
    """The HF tensor list of a Llama-family checkpoint (Llama, Qwen2, Mixtral, Gemma 2/3)."""
    h, ff, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or h // nh
    gemma = cfg["model_type"].startswith("gemma")
    out: list[Tensor] = [("model.embed_tokens.weight", dtype, [v, h]), ("model.norm.weight", dtype, [h])]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out += [
            (p + "input_layernorm.weight", dtype, [h]),
            (p + "post_attention_layernorm.weight", dtype, [h]),
            (p + "self_attn.q_proj.weight", dtype, [nh * hd, h]),
            (p + "self_attn.k_proj.weight", dtype, [nkv * hd, h]),
            (p + "self_attn.v_proj.weight", dtype, [nkv * hd, h]),
            (p + "self_attn.o_proj.weight", dtype, [h, nh * hd]),
        ]
        if gemma:
            out += [
                (p + "pre_feedforward_layernorm.weight", dtype, [h]),
                (p + "post_feedforward_layernorm.weight", dtype, [h]),
            ]
            if cfg["model_type"].startswith("gemma3"):
                out += [
                    (p + "self_attn.q_norm.weight", dtype, [hd]),
                    (p + "self_attn.k_norm.weight", dtype, [hd]),
                ]
        if cfg.get("num_local_experts"):
            out.append((p + "block_sparse_moe.gate.weight", dtype, [cfg["num_local_experts"], h]))
            for e in range(cfg["num_local_experts"]):
                q = f"{p}block_sparse_moe.experts.{e}."
                out += [
                    (q + "w1.weight", dtype, [ff, h]),
                    (q + "w2.weight", dtype, [h, ff]),
                    (q + "w3.weight", dtype, [ff, h]),
                ]
        else:
            out += [
                (p + "mlp.gate_proj.weight", dtype, [ff, h]),
                (p + "mlp.up_proj.weight", dtype, [ff, h]),
                (p + "mlp.down_proj.weight", dtype, [h, ff]),
            ]
    if not cfg.get("tie_word_embeddings", gemma):
        out.append(("lm_head.weight", dtype, [v, h]))
    return out


def awq_tensors(cfg: dict[str, Any]) -> list[Tensor]:
    """AutoAWQ GEMM layout: qweight/qzeros int32 packed 8 × 4-bit, fp16 scales; Qwen2 q/k/v biases."""
    h, ff, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = h // nh
    g = cfg["quantization_config"]["group_size"]
    out: list[Tensor] = [
        ("model.embed_tokens.weight", "F16", [v, h]),
        ("model.norm.weight", "F16", [h]),
        ("lm_head.weight", "F16", [v, h]),
    ]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out += [
            (p + "input_layernorm.weight", "F16", [h]),
            (p + "post_attention_layernorm.weight", "F16", [h]),
        ]
        linears = {
            "self_attn.q_proj": (h, nh * hd),
            "self_attn.k_proj": (h, nkv * hd),
            "self_attn.v_proj": (h, nkv * hd),
            "self_attn.o_proj": (nh * hd, h),
            "mlp.gate_proj": (h, ff),
            "mlp.up_proj": (h, ff),
            "mlp.down_proj": (ff, h),
        }
        for name, (fin, fout) in linears.items():
            out += [
                (f"{p}{name}.qweight", "I32", [fin, fout // 8]),
                (f"{p}{name}.qzeros", "I32", [fin // g, fout // 8]),
                (f"{p}{name}.scales", "F16", [fin // g, fout]),
            ]
            if name in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
                out.append((f"{p}{name}.bias", "F16", [fout]))
    return out


def tensor_bytes(t: Tensor) -> int:
    n = DTYPE_BYTES[t[1]]
    for s in t[2]:
        n *= s
    return n


def write_hf_folder(folder: Path, cfg: dict[str, Any], tensors: list[Tensor], *, shards: int = 2) -> int:
    """Write config.json + sharded safetensors (header + sparse data). Returns the data bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(cfg, indent=2))
    per = -(-len(tensors) // shards)
    weight_map: dict[str, str] = {}
    total = 0
    for k in range(shards):
        chunk = tensors[k * per : (k + 1) * per]
        name = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
        off = 0
        for t in chunk:
            size = tensor_bytes(t)
            header[t[0]] = {"dtype": t[1], "shape": t[2], "data_offsets": [off, off + size]}
            off += size
            weight_map[t[0]] = name
        raw = json.dumps(header).encode()
        raw += b" " * (-len(raw) % 8)
        with (folder / name).open("wb") as fh:
            fh.write(struct.pack("<Q", len(raw)))
            fh.write(raw)
            fh.truncate(8 + len(raw) + off)  # sparse: the data region is a hole
        total += off
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return total

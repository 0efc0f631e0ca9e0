"""HF-style folder inspection: config.json + the JSON header of each *.safetensors file.

Only the 8-byte header length and the JSON header are read; tensor data is never
touched, so a 140 GB model inspects in milliseconds. Byte sizes come from each
tensor's `data_offsets` and are therefore exact.
"""

from __future__ import annotations

import json
import logging
import struct
from collections import Counter
from pathlib import Path
from typing import Any

from cortexctl.validation.modelinfo import ModelInfo, ModelInspectionError, QuantInfo, TensorInfo

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors' own limit
# Keys vLLM reads, in order, to derive a model's maximum length (config/model_arch utils).
MAX_LEN_KEYS = (
    "max_position_embeddings",
    "n_positions",
    "max_seq_len",
    "seq_length",
    "model_max_length",
    "max_sequence_length",
    "max_seq_length",
    "seq_len",
)
QUANT_SIDE_FILES = ("quant_config.json", "quantize_config.json")
_FIX_RECOPY = "Re-copy the model folder (cortexctl bundle import) and verify its checksums."


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of one .safetensors file, checked against the file's size."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        raw = fh.read(8)
        if len(raw) < 8:
            raise ModelInspectionError(f"{path} is too short to be a safetensors file", fix=_FIX_RECOPY)
        (n,) = struct.unpack("<Q", raw)
        if n == 0 or n > MAX_HEADER_BYTES or 8 + n > size:
            raise ModelInspectionError(
                f"{path}: invalid safetensors header length {n} (file has {size} bytes)", fix=_FIX_RECOPY
            )
        try:
            header = json.loads(fh.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelInspectionError(
                f"{path}: safetensors header is not JSON ({exc})", fix=_FIX_RECOPY
            ) from None
    if not isinstance(header, dict):
        raise ModelInspectionError(f"{path}: safetensors header is not a JSON object", fix=_FIX_RECOPY)
    data_end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + n + data_end > size:
        raise ModelInspectionError(
            f"{path} is truncated: its header describes {8 + n + data_end} bytes, the file has {size}",
            fix=_FIX_RECOPY,
        )
    return header


def _safetensors_files(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ModelInspectionError(f"{index} is not a valid index ({exc})", fix=_FIX_RECOPY) from None
        files = [folder / name for name in sorted(set(weight_map.values()))]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise ModelInspectionError(
                f"{folder}: shards named in model.safetensors.index.json are missing: {', '.join(missing)}",
                fix=_FIX_RECOPY,
            )
        return files
    return sorted(folder.glob("*.safetensors"))


def _text_config(config: dict[str, Any]) -> dict[str, Any]:
    # Multimodal wrappers (Gemma 3, Mistral 3, LLaVA …) keep the LM's shape in text_config.
    text = config.get("text_config")
    if isinstance(text, dict) and text.get("num_hidden_layers"):
        merged = dict(config)
        merged.update(text)
        return merged
    return config


def _swa_layers(cfg: dict[str, Any], n_layers: int) -> tuple[int | None, tuple[bool, ...]]:
    window = cfg.get("sliding_window")
    if not window or cfg.get("use_sliding_window") is False:
        return None, ()
    types = cfg.get("layer_types")
    if isinstance(types, list) and types:
        return int(window), tuple(t == "sliding_attention" for t in types[:n_layers])
    model_type = cfg.get("model_type", "")
    if model_type.startswith("gemma2"):
        return int(window), tuple(il % 2 == 0 for il in range(n_layers))  # even layers slide
    pattern = cfg.get("sliding_window_pattern") or cfg.get("_sliding_window_pattern")
    if pattern:
        n = int(pattern)
        return int(window), tuple((il + 1) % n != 0 for il in range(n_layers))
    return int(window), (True,) * n_layers  # Mistral-style: every layer slides


def derived_max_len(cfg: dict[str, Any]) -> tuple[int, int | None]:
    """(max length, length before rope scaling) the way vLLM derives max_model_len."""
    lengths = [int(cfg[k]) for k in MAX_LEN_KEYS if isinstance(cfg.get(k), int | float) and cfg[k] > 0]
    base = min(lengths) if lengths else 0
    rope = cfg.get("rope_scaling") or {}
    if not isinstance(rope, dict) or not rope:
        return base, None
    kind = rope.get("rope_type") or rope.get("type")
    factor = rope.get("factor")
    # llama3/longrope/su already publish the scaled length; Gemma 3's too.
    if (
        kind in ("su", "longrope", "llama3")
        or not factor
        or str(cfg.get("model_type", "")).startswith("gemma3")
    ):
        return base, None
    orig = int(rope.get("original_max_position_embeddings") or base) if kind == "yarn" else base
    return int(orig * float(factor)), base


def quantization_of(folder: Path, cfg: dict[str, Any]) -> QuantInfo | None:
    qc = cfg.get("quantization_config")
    if not isinstance(qc, dict):
        qc = None
        for name in QUANT_SIDE_FILES:
            side = folder / name
            if side.is_file():
                try:
                    qc = json.loads(side.read_text())
                except json.JSONDecodeError as exc:
                    raise ModelInspectionError(f"{side} is not valid JSON ({exc})", fix=_FIX_RECOPY) from None
                qc.setdefault("quant_method", "awq" if name == "quant_config.json" else "gptq")
                break
    if not qc:
        return None
    method = str(qc.get("quant_method") or "unknown").lower()
    if method == "bitsandbytes" or qc.get("load_in_4bit") or qc.get("load_in_8bit"):
        return QuantInfo(method="bitsandbytes", bits=4 if qc.get("load_in_4bit") else 8, details=qc)
    bits = qc.get("bits") or qc.get("w_bit") or (8 if method == "fp8" else None)
    group = qc.get("group_size") or qc.get("q_group_size")
    return QuantInfo(method=method, bits=int(bits) if bits else None, group_size=group, details=qc)


def inspect_hf(folder: Path) -> ModelInfo:
    """Read an HF model folder. Raises ModelInspectionError with a fix on bad input."""
    if not folder.is_dir():
        raise ModelInspectionError(
            f"Model folder not found: {folder}", fix="Import the model or fix spec.model.path."
        )
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise ModelInspectionError(
            f"{folder} has no config.json, so it is not an HF model folder",
            fix="Copy the model's full HF folder (config.json, *.safetensors, tokenizer files) "
            "or use a .gguf file "
            "with the llamacpp engine.",
        )
    try:
        raw = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelInspectionError(f"{cfg_path} is not valid JSON ({exc})", fix=_FIX_RECOPY) from None
    if not isinstance(raw, dict):
        raise ModelInspectionError(f"{cfg_path} is not a JSON object", fix=_FIX_RECOPY)
    cfg = _text_config(raw)
    files = _safetensors_files(folder)
    if not files:
        raise ModelInspectionError(
            f"{folder} has no *.safetensors weights",
            fix="vLLM needs safetensors weights here; convert .bin checkpoints "
            "or copy the safetensors shards.",
        )
    tensors: list[TensorInfo] = []
    by_dtype: Counter[str] = Counter()
    n_params = 0
    for f in files:
        for name, meta in read_safetensors_header(f).items():
            if name == "__metadata__":
                continue
            start, end = (int(x) for x in meta["data_offsets"])
            shape = tuple(int(s) for s in meta["shape"])
            tensors.append(TensorInfo(name=name, dtype=str(meta["dtype"]), shape=shape, nbytes=end - start))
            by_dtype[str(meta["dtype"])] += end - start
            count = 1
            for s in shape:
                count *= s
            n_params += count
    try:
        return _model_info(folder, raw, cfg, tensors, by_dtype, n_params)
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise ModelInspectionError(
            f"{cfg_path} lacks a field validation needs ({type(exc).__name__}: {exc})", fix=_FIX_RECOPY
        ) from None


def _mla(cfg: dict[str, Any]) -> tuple[int, int] | None:
    """DeepSeek-style multi-head latent attention caches kv_lora_rank + qk_rope_head_dim per token."""
    if not cfg.get("kv_lora_rank"):
        return None
    return int(cfg["kv_lora_rank"]), int(cfg.get("qk_rope_head_dim") or 0)


def _model_info(
    folder: Path,
    raw: dict[str, Any],
    cfg: dict[str, Any],
    tensors: list[TensorInfo],
    by_dtype: Counter[str],
    n_params: int,
) -> ModelInfo:
    n_layers = int(cfg["num_hidden_layers"])
    n_embd = int(cfg["hidden_size"])
    n_heads = int(cfg["num_attention_heads"])
    n_kv = int(cfg.get("num_key_value_heads") or n_heads)
    head_dim = int(cfg.get("head_dim") or n_embd // n_heads)
    window, swa = _swa_layers(cfg, n_layers)
    max_len, orig_len = derived_max_len(cfg)
    archs = raw.get("architectures") or [cfg.get("model_type", "unknown")]
    return ModelInfo(
        path=str(folder),
        format="hf",
        architecture=str(archs[0]),
        n_params=n_params,
        n_layers=n_layers,
        n_heads=n_heads,
        n_kv_heads=(n_kv,) * n_layers,
        head_dim_k=head_dim,
        head_dim_v=head_dim,
        n_embd=n_embd,
        n_ff=cfg.get("intermediate_size"),
        context_length=max_len,
        original_context_length=orig_len,
        vocab_size=int(cfg.get("vocab_size") or 0),
        weight_bytes=sum(by_dtype.values()),
        bytes_by_dtype=dict(by_dtype),
        sliding_window=window,
        swa_layers=swa,
        n_experts=cfg.get("num_local_experts") or cfg.get("num_experts"),
        n_experts_used=cfg.get("num_experts_per_tok"),
        torch_dtype=str(cfg.get("torch_dtype") or cfg.get("dtype") or raw.get("torch_dtype") or "") or None,
        quantization=quantization_of(folder, raw),
        rope_scaling=cfg.get("rope_scaling"),
        tensors=tuple(tensors),
        mla=_mla(cfg),
    )

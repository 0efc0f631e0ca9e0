"""GGUF inspection: header key/values and the tensor table, read-only, no weights loaded.

The header is parsed by `gguf_header` (fast; `gguf` package type tables); tensor
data stays untouched on disk.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

from cortexctl.engines.llamacpp.arch import (
    indexer_layers,
    is_causal,
    known_archs,
    kv_layers,
    memory_kind,
    resolve_swa,
    swa_not_recurrent,
)
from cortexctl.validation.gguf_header import ArrayInfo, GGUFFormatError, read_gguf_header
from cortexctl.validation.modelinfo import ModelInfo, ModelInspectionError, QuantInfo, TensorInfo

log = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"


def is_gguf(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(4) == GGUF_MAGIC
    except OSError:
        return False


def _value(fields: dict[str, Any], key: str, default: Any = None) -> Any:
    value = fields.get(key)
    return default if value is None or isinstance(value, ArrayInfo) else value


def _per_layer(value: Any, n_layers: int, default: int) -> tuple[int, ...]:
    if value is None:
        return (default,) * n_layers
    if isinstance(value, list):
        vals = [int(v) for v in value] or [default]
        return tuple(vals[i] if i < len(vals) else vals[-1] for i in range(n_layers))
    return (int(value),) * n_layers


def inspect_gguf(path: Path) -> ModelInfo:
    """Read a GGUF file's metadata. Raises ModelInspectionError with a fix on bad input."""
    if not path.is_file():
        raise ModelInspectionError(
            f"Model file not found: {path}",
            fix="Import the model (cortexctl bundle import) or fix spec.model.path.",
        )
    if not is_gguf(path):
        raise ModelInspectionError(
            f"{path} is not a GGUF file (no GGUF magic bytes)",
            fix="Point spec.model.path at a .gguf file, or at an HF folder with config.json for vLLM.",
        )
    try:
        header = read_gguf_header(path)
    except (GGUFFormatError, OSError, UnicodeDecodeError) as exc:
        raise ModelInspectionError(
            f"{path} is a damaged or truncated GGUF file ({exc})",
            fix="Re-copy the file and compare its sha256 with the recipe's spec.model.sha256.",
        ) from None
    size = path.stat().st_size
    tensors = []
    for t in header.tensors:
        end = t.offset + t.nbytes
        if end > size:
            raise ModelInspectionError(
                f"{path} is truncated: tensor {t.name} ends at byte {end} but the file has {size}",
                fix="Re-copy the file and compare its sha256 with the recipe's spec.model.sha256.",
            )
        tensors.append(
            TensorInfo(name=t.name, dtype=t.ggml_type, shape=t.shape, nbytes=t.nbytes, offset=t.offset)
        )
    return _model_info(path, header.fields, tensors)


def _model_info(path: Path, fields: dict[str, Any], tensors: list[TensorInfo]) -> ModelInfo:
    arch = _value(fields, "general.architecture")
    if not isinstance(arch, str):
        raise ModelInspectionError(
            f"{path}: GGUF without general.architecture", fix="Re-convert the model with a current llama.cpp."
        )

    def key(name: str, default: Any = None) -> Any:
        return _value(fields, f"{arch}.{name}", default)

    n_layers = int(key("block_count", 0))
    n_embd = int(key("embedding_length", 0))
    heads = key("attention.head_count", 0)
    n_heads = int(max(heads) if isinstance(heads, list) else heads)
    n_kv = _per_layer(key("attention.head_count_kv"), n_layers, n_heads)
    head_k = int(key("attention.key_length", n_embd // n_heads if n_heads else 0))
    head_v = int(key("attention.value_length", head_k))
    raw_window = key("attention.sliding_window")
    # what llama.cpp's loader makes of the window key for this architecture (data from its source)
    swa = resolve_swa(arch, n_layers, int(raw_window) if raw_window is not None else None,
                      _value(fields, f"{arch}.attention.sliding_window_pattern"))  # fmt: skip
    approximate = [swa.guessed] if swa.guessed else []
    memory = memory_kind(arch)
    if memory is None:
        approximate.append(f"architecture {arch!r} is not in llama.cpp's model table: KV cache assumed")
        memory = "kv"
    ff = key("feed_forward_length")
    recr_layers, n_kv, recr_guess = _recurrent_layers(arch, memory, n_kv, ff, key)
    if recr_guess:
        approximate.append(recr_guess)
    own_kv, kv_guess = kv_layers(arch, n_layers, key("attention.shared_kv_layers"))
    if kv_guess:
        approximate.append(kv_guess)
    idx_layers, idx_guess = indexer_layers(
        arch, n_layers, int(key("context_length", 0)), key("attention.indexer.types")
    )
    if idx_guess:
        approximate.append(idx_guess)
    swa_layers = swa.layers
    if swa_layers and recr_layers and swa_not_recurrent(arch):
        swa_layers = tuple(not r for r in recr_layers)
    by_dtype: Counter[str] = Counter()
    n_params = 0
    for t in tensors:
        by_dtype[t.dtype] += t.nbytes
        n = 1
        for s in t.shape:
            n *= s
        n_params += n
    vocab = _vocab_size(fields, arch, tensors)
    ftype = _value(fields, "general.file_type")
    ftype_name = _file_type_name(ftype)
    return ModelInfo(
        path=str(path),
        format="gguf",
        architecture=arch,
        n_params=n_params,
        n_layers=n_layers,
        n_heads=n_heads,
        n_kv_heads=n_kv,
        head_dim_k=head_k,
        head_dim_v=head_v,
        n_embd=n_embd,
        n_ff=int(max(ff) if isinstance(ff, list) else ff) if ff is not None else None,
        context_length=int(key("context_length", 0)),
        vocab_size=vocab,
        weight_bytes=sum(by_dtype.values()),
        bytes_by_dtype=dict(by_dtype),
        sliding_window=swa.window,
        swa_layers=swa_layers,
        n_experts=_int_or_none(key("expert_count")),
        n_experts_used=_int_or_none(key("expert_used_count")),
        quantization=QuantInfo(method="gguf", details={"file_type": ftype_name}) if ftype_name else None,
        rope_scaling=_rope_scaling(key),
        tensors=tuple(tensors),
        file_type=ftype_name,
        n_ff_exp=_int_or_none(key("expert_feed_forward_length")),
        n_expert_shared=int(key("expert_shared_count", 0) or 0),
        memory=memory,
        causal=is_causal(arch, key("attention.causal")),
        recurrent=_recurrent(key, n_embd, n_heads),
        recurrent_layers=recr_layers,
        # MLA (deepseek2 and kin, llama-kv-cache.cpp has_v = !is_mla): no V cache
        v_cache=not (key("attention.key_length_mla") and key("attention.value_length_mla")),
        head_dim_k_mla=int(key("attention.key_length_mla", 0) or 0),
        n_dense_lead=int(key("leading_dense_block_count", 0) or 0),
        kv_layers=own_kv,
        indexer_layers=idx_layers,
        indexer_head_dim=int(key("attention.indexer.key_length", 0) or 0),
        indexer_heads=int(key("attention.indexer.head_count", 0) or 0),
        indexer_top_k=int(key("attention.indexer.top_k", 0) or 0),
        approximate=tuple(approximate),
    )


def _recurrent_layers(
    arch: str, memory: str, n_kv: tuple[int, ...], ff: Any, key: Any
) -> tuple[tuple[bool, ...], tuple[int, ...], str | None]:
    """A hybrid's recurrent layers and the KV heads of its attention layers, by the rule its
    loader uses (data: `recurrent_layers`, from hparams.is_recr_impl; create_memory's filters).

    Returns (recurrent per layer, KV heads per layer, what is guessed or None)."""
    if memory != "hybrid":
        return (), n_kv, None
    n = len(n_kv)
    rule = (known_archs().get(arch) or {}).get("recurrent_layers") or {}
    if rule.get("rule") == "all":  # falcon-h1: attention and SSM on every layer
        return tuple(True for _ in n_kv), n_kv, None
    if rule.get("rule") == "key_or_interval":  # qwen3next, qwen35 …: the SSM layers have no KV
        listed = key("attention.recurrent_layers")
        if isinstance(listed, list):
            recr = tuple(bool(listed[i]) if i < len(listed) else False for i in range(n))
        else:
            every = int(key("full_attention_interval", rule.get("interval_default", 4)) or 1)
            recr = tuple((i + 1) % every != 0 for i in range(n))
        return recr, tuple(0 if r else h for r, h in zip(recr, n_kv, strict=True)), None
    if rule.get("rule") in ("no_kv_heads", "no_kv_heads_no_ff"):
        n_ff = _per_layer(ff, n, 0) if rule["rule"] == "no_kv_heads_no_ff" else (0,) * n
        return tuple(h == 0 and f == 0 for h, f in zip(n_kv, n_ff, strict=True)), n_kv, None
    guess = f"hybrid {arch!r}: recurrent layers assumed to be those without KV heads"
    return tuple(h == 0 for h in n_kv), n_kv, guess


def _recurrent(key: Any, n_embd: int, n_head: int) -> dict[str, int]:
    """Floats per sequence and recurrent layer: conv/shift state r, SSM/WKV state s (llama-hparams.cpp)."""
    if (kda := key("kda.head_dim")) is not None:  # kimi-linear: q/k/v conv states, a hd × hd state a head
        d_conv = int(key("ssm.conv_kernel", 0) or 0) or 4
        return {"r": 3 * (d_conv - 1) * n_head * int(kda), "s": int(kda) * int(kda) * n_head, "kda": int(kda)}
    if (d_inner := key("ssm.inner_size")) is not None:  # mamba, mamba2 and hybrids
        d_conv, d_state = int(key("ssm.conv_kernel", 0)), int(key("ssm.state_size", 0))
        n_group = int(key("ssm.group_count", 0) or 0)
        return {
            "r": (d_conv - 1) * (int(d_inner) + 2 * n_group * d_state) if d_conv else 0,
            "s": d_state * int(d_inner),
            "d_state": d_state,
            "n_group": n_group,
        }
    if (l_cache := key("shortconv.l_cache")) is not None:  # lfm2: conv state only (n_embd_r)
        return {"r": n_embd * (int(l_cache) - 1), "s": 0}
    if (head := key("wkv.head_size")) is not None:  # rwkv6/7
        shift = int(key("token_shift_count", 2) or 2)
        return {"r": shift * n_embd, "s": n_embd * int(head)}
    return {}


def _int_or_none(v: Any) -> int | None:
    return int(v) if v is not None else None


def _vocab_size(fields: dict[str, Any], arch: str, tensors: list[TensorInfo]) -> int:
    tokens = fields.get("tokenizer.ggml.tokens")
    if isinstance(tokens, ArrayInfo):
        return tokens.length  # number of items, without decoding 100k+ strings
    if isinstance(tokens, list):
        return len(tokens)
    if (v := _value(fields, f"{arch}.vocab_size")) is not None:
        return int(v)
    for t in tensors:
        if t.name == "token_embd.weight" and len(t.shape) == 2:
            return t.shape[1]
    return 0


def _rope_scaling(key: Any) -> dict[str, Any] | None:
    kind = key("rope.scaling.type")
    factor = key("rope.scaling.factor")
    if kind is None and factor is None:
        return None
    return {
        "type": kind,
        "factor": factor,
        "original_context_length": key("rope.scaling.original_context_length"),
    }


def _file_type_name(ftype: Any) -> str | None:
    if ftype is None:
        return None
    try:
        from cortexctl.validation.gguf_constants import LlamaFileType

        return LlamaFileType(int(ftype)).name.removeprefix("MOSTLY_")
    except (ValueError, ImportError):
        return str(ftype)

"""Per-architecture llama.cpp behaviour, as data generated from the pinned llama.cpp source.

`cortexctl/engines/llamacpp/data/llamacpp-arch-<version>.json` is written by
`scripts/gen_llamacpp_arch.py` from the vendored llama.cpp of the pinned
llama-cpp-python release: which architectures honour a sliding window and with which
layer pattern, which keep a KV cache / recurrent state / nothing, and which weight
types get a repacked CPU copy on which CPUs. The GGUF only says what the converter
wrote; this says what the loader does with it (llama and qwen2 never read
`sliding_window`, phi3 reads and disables it, gemma3 applies a 6-layer pattern).

An architecture missing from the data is estimated with the generic rule (a sliding
window, if present, on every layer) and the estimate says it is approximate.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from cortexctl.engines.llamacpp.pin import VERSION as LLAMACPP_VERSION

_DATA_DIR = Path(__file__).resolve().parent / "data"


@cache
def arch_data(version: str = LLAMACPP_VERSION) -> dict[str, Any]:
    path = _DATA_DIR / f"llamacpp-arch-{version}.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def known_archs() -> dict[str, Any]:
    archs: dict[str, Any] = arch_data()["archs"]
    return archs


@dataclass(frozen=True)
class SwaResolution:
    window: int | None  # None: no sliding-window cache (the key is ignored or absent)
    layers: tuple[bool, ...]  # True for a sliding-window layer (empty: none)
    kind: str = "none"  # standard, chunked, symmetric
    guessed: str | None = None  # why this is a guess (architecture not in the data …)


def _pattern_layers(n: int, dense_first: bool, n_layers: int) -> tuple[bool, ...]:
    """llama_hparams::set_swa_pattern."""
    if dense_first:
        return tuple(n == 0 or il % n != 0 for il in range(n_layers))
    return tuple(n == 0 or il % n < n - 1 for il in range(n_layers))


def resolve_swa(arch: str, n_layers: int, window: int | None, pattern: Any) -> SwaResolution:
    """What llama.cpp's load_arch_hparams makes of `<arch>.attention.sliding_window[_pattern]`.

    `window` is the key's value: None when the GGUF has no such key, 0 when it says 0 (some
    loaders tell the two apart: llama4 turns its window off only for an explicit 0)."""
    entry = known_archs().get(arch)
    if entry is None:
        if not window:
            return SwaResolution(None, ())
        layers = (
            tuple(bool(p) for p in pattern[:n_layers])
            if isinstance(pattern, list)
            else _pattern_layers(int(pattern) if pattern else 0, False, n_layers)
        )
        return SwaResolution(
            window,
            layers,
            "standard",
            guessed=f"architecture {arch!r} is not in llama.cpp {LLAMACPP_VERSION}",
        )
    swa = entry.get("swa")
    if swa is None or swa.get("type") == "none":
        return SwaResolution(None, ())  # never read (llama, qwen2) or read and disabled (phi3)
    if swa.get("when") == "key" and not window:
        return SwaResolution(None, ())
    if swa.get("when") == "unless_zero" and window == 0:
        return SwaResolution(None, ())  # llama4: only a key of 0 turns it off; no key keeps it on
    if swa.get("when") == "n_layer" and n_layers != swa.get("n_layer"):
        return SwaResolution(None, ())  # only that model size slides (exaone4: 64 layers)
    # the loader's own window, set after reading the key (llama4: 8192), or the key, else a default
    w = swa["window_default"] if swa.get("window_override") else window or swa.get("window_default")
    if not w:
        return SwaResolution(None, ())
    kind = str(swa["type"])
    if isinstance(pattern, list):  # a per-layer array in the GGUF always wins
        layers = tuple(bool(p) for p in pattern[:n_layers])
        layers += (False,) * (n_layers - len(layers))
        return SwaResolution(int(w), layers, kind)
    p = swa.get("pattern")
    if isinstance(p, int):
        n = int(pattern) if pattern is not None and swa.get("pattern_key") == "optional" else p
        return SwaResolution(int(w), _pattern_layers(n, bool(swa.get("dense_first")), n_layers), kind)
    if p == "not_recurrent":  # lfm2: the attention layers slide; inspect_gguf masks the recurrent ones
        return SwaResolution(int(w), (True,) * n_layers, kind)
    return SwaResolution(
        int(w),
        (True,) * n_layers,
        kind,
        guessed=f"{arch}: llama.cpp sets its sliding-window layers in code (pattern {p!r}); assumed all",
    )


def swa_not_recurrent(arch: str) -> bool:
    """The loader makes exactly the non-recurrent layers sliding (lfm2)."""
    return (known_archs().get(arch, {}).get("swa") or {}).get("pattern") == "not_recurrent"


def memory_kind(arch: str) -> str | None:
    """kv, recurrent, hybrid or none; None when the architecture is not in the data."""
    entry = known_archs().get(arch)
    return None if entry is None else str(entry["memory"])


def has_output_tensor(arch: str) -> bool:
    """Whether the loader creates an LM head tensor (its own or token_embd duplicated for it);
    data `output_tensor: false` where the graph multiplies by token_embd itself (bitnet)."""
    return bool((known_archs().get(arch) or {}).get("output_tensor", True))


def embeddings_logits(arch: str) -> bool:
    """Whether the graph computes vocab-wide logits in embeddings mode too (data
    `embeddings_logits`: false where the builder skips the LM head there, as lfm2's does)."""
    return bool((known_archs().get(arch) or {}).get("embeddings_logits", True))


def graph_logits(arch: str, memory: str) -> bool:
    """Whether the graph has an LM head at all (data `logits: false` for graphs that never set
    t_logits: bert-like encoders); diffusion models (dream, llada) keep no cache but have one.
    Not in the data: an LM head unless the model keeps no memory."""
    entry = known_archs().get(arch)
    if entry is None:
        return memory != "none"
    return bool(entry.get("logits", True))


def attn_no_cache(arch: str) -> bool:
    """Whether the graph attends over the ubatch without reading its KV cache (data
    `attn_no_cache`: llama-embed builds llama's graph in its embedding form)."""
    return bool((known_archs().get(arch) or {}).get("attn_no_cache", False))


def kv_layers(arch: str, n_layers: int, shared: Any) -> tuple[int | None, str | None]:
    """How many leading layers own a KV cache (data `kv_layers`, from the loader's
    `n_layer_kv_from_start`; the rest reuse the last ones' cache): gemma3n's fixed 20,
    gemma4's block count less `attention.shared_kv_layers`. Returns (count or None for
    every layer, what is guessed or None)."""
    rule = (known_archs().get(arch) or {}).get("kv_layers")
    if rule is None:
        return None, None
    if "count" in rule:
        return min(int(rule["count"]), n_layers), None
    if "shared_key" in rule:
        return n_layers - int(shared or 0), None
    return None, f"{arch}: which layers own a KV cache is set in a way not parsed; every layer counted"


def indexer_layers(
    arch: str, n_layers: int, context_length: int, types: Any
) -> tuple[tuple[bool, ...], str | None]:
    """The layers with a lightning-indexer key cache (data `indexer_cache`, from create_memory's
    llama_kv_cache_dsa: glm-dsa): the `attention.indexer.types` array where the loader reads
    it, else every layer (below `all_below_ctx` trained context). Returns (per layer, what is
    guessed or None); () for an architecture without one."""
    rule = (known_archs().get(arch) or {}).get("indexer_cache")
    if rule is None:
        return (), None
    if rule.get("layers") == "types_key_or_all" and isinstance(types, list) and len(types) >= n_layers:
        return tuple(bool(t) for t in types[:n_layers]), None
    below = rule.get("all_below_ctx")
    if below is not None and context_length >= int(below):
        return (
            (True,) * n_layers,
            f"{arch}: a {context_length}-token model's indexer layers come from a built-in table;"
            " every layer counted",
        )
    return (True,) * n_layers, None


def pos_bias(arch: str) -> bool:
    """Whether the graph adds a relative-position bias to KQ (data `pos_bias`: t5, t5encoder),
    which makes build_attn_mha skip flash attention whatever the flag."""
    return bool((known_archs().get(arch) or {}).get("pos_bias", False))


def tied_output_first(arch: str) -> bool:
    """Whether the loader creates the tied LM head before tok_embd (data `tied_output_first`:
    gemma3n, gemma4), which without mmap loads token_embd a second time."""
    return bool((known_archs().get(arch) or {}).get("tied_output_first", False))


def all_outputs(arch: str) -> bool:
    """Whether the graph computes logits for every token of the ubatch, not only the outputs
    (data `all_outputs`: cogvlm's graph never selects output rows)."""
    return bool((known_archs().get(arch) or {}).get("all_outputs", False))


def flash_attn_allowed(arch: str) -> bool:
    """False where llama_init_from_model forces flash attention off (data `flash_attn`: grok)."""
    return bool((known_archs().get(arch) or {}).get("flash_attn", True))


def logits_copies(arch: str) -> int:
    """Vocab-wide tensors per output in the graph: 2 where it copies the LM head's output
    (data `logits_copies`: chameleon's ggml_set_1d masking image tokens), else 1."""
    return int((known_archs().get(arch) or {}).get("logits_copies", 1))


# rwkv compute (compute.py): (n_embd-wide floats a token live in the time mix, copies of
# each sequence's WKV state in the graph), measured on the rwkv6/rwkv7/arwkv7 fit matrix
# (fitted constants, not derived from the source)
WKV_PHASE = {"rwkv6": (15, 1), "rwkv7": (20, 2), "arwkv7": (18, 2), "rwkv6qwen2": (13, 2)}


def unmeasured_rules(arch: str, memory: str, recurrent: dict[str, int]) -> list[str]:
    """What the estimate guesses for an architecture in the data that no measurement covers:
    models that need llama_encode (t5: llama-server never runs an encoder), and recurrent
    models whose graph is not an SSM and not measured (none in this version's data since
    rwkv6qwen2 and arwkv7 were measured: counted as a dense FFN), and KDA layers' compute
    (kimi-linear)."""
    out = []
    if (known_archs().get(arch) or {}).get("encoder"):
        out.append(f"{arch}: an encoder-decoder model; llama-server never runs its encoder (llama_encode)")
    if memory == "recurrent" and recurrent and not recurrent.get("d_state") and arch not in WKV_PHASE:
        out.append(f"{arch}: compute buffer of its WKV/time-mix graph not modelled (dense-FFN rule)")
    if recurrent.get("kda"):
        # kimi-linear (2026-12-02): state and MLA cache exact; on the synthetic matrix (8 KDA heads,
        # 64 wide) the MLA, FFN and output phases dominate, so the KDA phase was never measured
        out.append(f"{arch}: compute of its KDA (linear attention) layers not modelled")
    return out


def graph_max_nodes(arch: str, n_tokens: int, n_tensors: int) -> tuple[int, int]:
    """llama_context::graph_max_nodes: (this architecture's node budget, the default budget)."""
    d = arch_data()["graph_nodes_default"]
    default = max(int(d["min"]), int(d["per_tensor"]) * n_tensors)
    rule = (known_archs().get(arch) or {}).get("graph_nodes")
    if rule is None:
        return default, default
    return max(n_tokens * int(rule["per_token"]), int(rule["per_tensor"]) * n_tensors), default


def is_causal(arch: str, causal_key: Any) -> bool:
    """llama-model.cpp load_hparams reads `<arch>.attention.causal` for every architecture
    (default true); an architecture's own loader may then force it off (data: causal false)."""
    entry = known_archs().get(arch) or {}
    if entry.get("causal", True) is False:
        return False
    return bool(causal_key) if causal_key is not None else True


# ---- CPU weight repacking (ggml-cpu/repack.cpp) ------------------------------------------

_X86_FLAGS = {"avx2": "avx2", "avx512": "avx512f", "avx512_vnni": "avx512_vnni", "f16c": "f16c"}
_ARM_FLAGS = {"neon": "asimd", "dotprod": "asimddp", "matmul_int8": "i8mm", "sve": "sve"}


@cache
def host_cpu_features() -> frozenset[str]:
    """ggml's names for this CPU's features, from /proc/cpuinfo (empty where unreadable)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    m = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", text, re.M)
    have = set(m.group(1).split()) if m else set()
    feats = {ggml for ggml, linux in {**_X86_FLAGS, **_ARM_FLAGS}.items() if linux in have}
    return frozenset(feats)


def _tensor_op(name: str) -> str | None:
    base = name.rsplit(".", 1)[0] if name.endswith((".weight", ".bias")) else name
    generic = re.sub(r"^((?:enc\.|dec\.)?blk)\.\d+\.", r"\1.{bid}.", base)  # t5's enc./dec. layers
    info = arch_data()["tensor_ops"].get(generic)
    return None if info is None else str(info["op"])


def repack_layout(name: str, ggml_type: str, shape: tuple[int, ...], features: frozenset[str]) -> str | None:
    """The repacked layout llama.cpp picks for this weight on a CPU with `features`, or None.

    `shape` is the ggml ne order (ne[0] = row length). Only weights whose op the repack
    buffer supports qualify: 2-D MUL_MAT, 3-D MUL_MAT_ID (experts); never GET_ROWS.
    """
    rules = arch_data()["repack"].get(ggml_type)
    if not rules or len(shape) < 2:
        return None
    op = _tensor_op(name)
    if not (op == "MUL_MAT" and len(shape) == 2 or op == "MUL_MAT_ID" and len(shape) == 3):
        return None
    for rule in rules:
        if all(f in features for f in rule["features"]) and shape[1] % int(rule["row_multiple"]) == 0:
            return str(rule["layout"])
    return None

#!/usr/bin/env python3
"""Generate cortexctl/engines/llamacpp/data/llamacpp-arch-<version>.json from the vendored llama.cpp source.

    pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d /tmp/lcp
    python3 scripts/gen_llamacpp_arch.py --sdist /tmp/lcp/llama_cpp_python-0.3.36.tar.gz \
        -o cortexctl/engines/llamacpp/data/llamacpp-arch-0.3.36.json

The memory estimate needs, per architecture, what llama.cpp's model loader decides,
not what the GGUF says: a `<arch>.attention.sliding_window` key is honoured by some
architectures, ignored by others (llama, qwen2 never read it), disabled by others
(phi3), and combined with a hard-coded layer pattern by others (gemma3: 5 of 6
layers slide; gpt-oss: every other layer). This reads the same source llama.cpp is
built from:

- `src/llama-arch.cpp` LLM_ARCH_NAMES: enum → GGUF architecture name; and
  llm_arch_is_recurrent / llm_arch_is_hybrid / llm_arch_is_diffusion.
- `src/llama-model.cpp`: the `case LLM_ARCH_X: return new llama_model_y(...)` table,
  and create_memory()'s list of architectures that get no KV cache at all.
- `src/models/models.h`: class inheritance (a class without its own
  load_arch_hparams uses its base's).
- `src/models/<arch>.cpp` load_arch_hparams(): every `hparams.swa_type = …`,
  `load_swa_pattern(ml, n[, dense_first])`, `set_swa_pattern(n)`, the
  sliding-window-pattern array read, a default `hparams.n_swa = N`,
  `hparams.causal_attn = false`, and for hybrids how `hparams.is_recr_impl` marks the
  recurrent layers (every layer, head_count_kv 0, or a per-layer key with a
  full-attention interval as default).
- `src/models/<arch>.cpp` graph builders: which skip the LM head in embeddings mode
  (`if (!cparams.embeddings)` around `t_logits`: lfm2, and lfm2moe that reuses its graph);
  all others compute vocab-wide logits for every output there too.
- `src/models/<arch>.cpp` graph builders that never set `res->t_logits` (encoders):
  no LM head in the compute graph in any mode; and those that copy the LM head's output
  (`cur = ggml_set_1d(ctx0, cur, …)`, not in place: chameleon), two vocab-wide tensors;
  and those that always build a graph template in its embedding form (`graph<true>` where
  the flag selects `build_attn_inp_no_cache` and drops t_logits: llama-embed).
- `src/models/<arch>.cpp` graph builders with an LM head that never select output rows
  (no `inp_out_ids`: cogvlm): vocab-wide logits for every token of the ubatch.
- `src/models/<arch>.cpp` graph builders that add a relative-position bias to KQ
  (`build_pos_bias`: t5, t5encoder): attention without flash attention, the bias beside KQ.
- `src/llama-context.cpp` llama_init_from_model(): architectures whose flash attention is
  forced off whatever the flag says (grok): their graph materialises the KQ matrix.
- `src/models/<arch>.cpp` load_arch_tensors(): whether the tied LM head (token_embd created
  again, TENSOR_DUPLICATED) is created before tok_embd itself (gemma3n, gemma4): loaded
  without mmap it is then a second copy.
- `src/models/<arch>.cpp` load_arch_hparams(): `hparams.n_layer_kv_from_start` — only the
  first layers own a KV cache, the rest reuse the last ones' (create_memory's `reuse`,
  llama_hparams::has_kv): a fixed count (gemma3n: 20) or the block count less a key
  (gemma4: `attention.shared_kv_layers`).
- `src/llama-model.cpp` create_memory(): architectures with a DSA cache
  (`llama_kv_cache_dsa`: glm-dsa), an indexer key cache beside the MLA cache.
- `src/llama-model.cpp` llama_model_has_encoder(): encoder-decoder (and encoder) models
  that need llama_encode, which llama-server never calls (t5).
- `src/llama-context.cpp` graph_max_nodes(): the node budget of each graph; some
  architectures (qwen35, qwen3next, …) get n_tokens × 40 nodes, and every graph result
  allocates (and zeroes) metadata for that many nodes on the heap.
- `ggml/src/ggml-cpu/repack.cpp` ggml_repack_get_optimal_repack_type(): which weight
  types get a repacked CPU copy (CPU_REPACK buffer), under which CPU features, for
  which row counts.

Where a load function sets SWA in a way this parser does not recognise, the entry
says `"swa": {"pattern": "custom"}` and the estimate reports itself as approximate.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

_ARCH_NAME = re.compile(r'\{\s*(LLM_ARCH_\w+)\s*,\s*"([^"]+)"\s*\}')
_CASE_NEW = re.compile(r"case\s+(LLM_ARCH_\w+)\s*:\s*return\s+new\s+(llama_model_\w+)\s*\(")
_STRUCT = re.compile(r"^struct\s+(llama_model_\w+)\s*:\s*public\s+(llama_model_\w+)", re.M)
_HPARAMS_FN = re.compile(r"void\s+(llama_model_\w+)::load_arch_hparams\s*\([^)]*\)\s*\{")
_SWA_TYPE = re.compile(r"swa_type\s*=\s*LLAMA_SWA_TYPE_(\w+)")
_LOAD_PATTERN = re.compile(
    r"load_swa_pattern\s*\(\s*ml\s*,\s*(\d+)\s*(?:,\s*(?:/\*.*?\*/\s*)?(true|false))?\s*\)"
)
_SET_PATTERN = re.compile(r"set_swa_pattern\s*\(\s*(\d+)\s*(?:,\s*(true|false))?\s*\)")
_PATTERN_ARR = re.compile(
    r"get_arr\s*\(\s*LLM_KV_ATTENTION_SLIDING_WINDOW_PATTERN\s*,\s*hparams\.is_swa_impl\s*(,\s*false)?\s*\)"
)
# `if (hparams.n_layer() == 64) { … swa_type = … }`: only that model size slides (exaone4's 32B)
_IF_N_LAYER = re.compile(r"if\s*\(\s*hparams\.n_layer\(\)\s*==\s*(\d+)\s*\)")
_N_SWA_DEFAULT = re.compile(r"hparams\.n_swa\s*=\s*(\d+)\s*;")
# `if (found_swa && hparams.n_swa == 0) { … NONE … } else { … a type … }`: only a key that is
# present and 0 turns the window off; without the key the window is on (llama4: 8192, chunked)
_OFF_ONLY_IF_ZERO = re.compile(
    r"if\s*\(\s*\w+\s*&&\s*hparams\.n_swa\s*==\s*0\s*\)\s*\{[^{}]*LLAMA_SWA_TYPE_NONE"
)
_READS_WINDOW = re.compile(
    r"get_key\s*\(\s*LLM_KV_ATTENTION_SLIDING_WINDOW\s*,\s*hparams\.n_swa\s*(,\s*false)?\s*\)"
)
_KV_FROM_START = re.compile(r"hparams\.n_layer_kv_from_start\s*=\s*([^;]+);")
_KV_FROM_N = re.compile(r"^(\d+)$")
_KV_FROM_SHARED = re.compile(r"^hparams\.n_layer_all\s*-\s*(?:\(\s*int32_t\s*\)\s*)?(\w+)$")
_KV_NAME = re.compile(r'\{\s*(LLM_KV_\w+)\s*,\s*"%s\.([^"]+)"\s*\}')
_TENSORS_FN = re.compile(r"void\s+(llama_model_\w+)::load_arch_tensors\s*\([^)]*\)\s*\{")
# an LM head tensor: `output = create_tensor(…)` (its own, or token_embd duplicated for it)
_OUTPUT_TENSOR = re.compile(r"\boutput\s*=\s*create_tensor")
_NON_CAUSAL = re.compile(r"hparams\.causal_attn\s*=\s*false")
_READS_CAUSAL = re.compile(r"LLM_KV_ATTENTION_CAUSAL")
_IS_SWA_LOOP = re.compile(r"is_swa_impl\s*\[\s*il\s*\]\s*=")
# lfm2: every layer that is not recurrent slides (is_swa_impl[il] = !hparams.is_recr_impl[il])
_SWA_NOT_RECR = re.compile(r"is_swa_impl\s*\[\s*il\s*\]\s*=\s*!\s*hparams\.is_recr_impl\s*\[\s*il\s*\]")
# Which layers of a hybrid hold recurrent state (hparams.is_recr_impl, create_memory's filter)
_RECR_ALL = re.compile(r"std::fill\s*\(\s*hparams\.is_recr_impl\.begin\(\)[^;]*,\s*true\s*\)")
_RECR_KEY = re.compile(r"LLM_KV_ATTENTION_RECURRENT_LAYERS")
_RECR_INTERVAL = re.compile(r"full_attn_interval\s*=\s*(\d+)\s*;")
_RECR_NO_KV = re.compile(r"is_recr_impl\s*\[\s*\w+\s*\]\s*=\s*[^;]*n_head_kv\s*\(\s*\w+\s*\)\s*==\s*0")
_RECR_NO_FF = re.compile(r"is_recr_impl\s*\[[^;]*n_ff\s*\(\s*\w+\s*\)\s*==\s*0")
_REPACK_TYPE = re.compile(r"cur->type\s*==\s*GGML_TYPE_(\w+)\)\s*\{")
_REPACK_IF = re.compile(
    r"if\s*\((.+?)\)\s*\{\s*if\s*\(\s*cur->ne\[1\]\s*%\s*(\d+)\s*==\s*0\s*\)\s*\{\s*return\s*&(\w+);", re.S
)
_TENSOR_NAME = re.compile(r'\{\s*(LLM_TENSOR_\w+)\s*,\s*"([^"]+)"\s*\}')
_TENSOR_INFO = re.compile(
    r"\{\s*(LLM_TENSOR_\w+)\s*,\s*\{\s*LLM_TENSOR_LAYER_(\w+)\s*,\s*GGML_OP_(\w+)\s*\}\s*\}"
)
_HAS = re.compile(r"ggml_cpu_has_(\w+)\s*\(\s*\)")
# A graph builder that puts the LM head under `if (!cparams.embeddings)` has no vocab-wide
# logits in embeddings mode (lfm2.cpp); every other builder computes them there too.
_LOGITS_UNLESS_EMBD = re.compile(r"if\s*\(\s*!\s*cparams\.embeddings\s*\)\s*\{[^{}]*t_logits")
# llama_context::graph_max_nodes: `res = std::max<uint32_t>(n_tokens * A, B u * model.n_tensors())`
# per group of architectures, else `std::max<uint32_t>(1024u, 8u*model.n_tensors())`
_MAX_NODES_BRANCH = re.compile(
    r"if\s*\((?P<cond>[^{]*?)\)\s*\{[^{}]*?res\s*=\s*std::max<uint32_t>\(\s*n_tokens\s*\*\s*(?P<tok>\d+)\s*,"
    r"\s*(?P<ten>\d+)u?\s*\*\s*model\.n_tensors\(\)\s*\)",
    re.S,
)
_MAX_NODES_DEFAULT = re.compile(
    r"else\s*\{\s*res\s*=\s*std::max<uint32_t>\(\s*(\d+)u?\s*,\s*(\d+)u?\s*\*\s*model\.n_tensors\(\)\s*\)"
)
_GRAPH_CTOR = re.compile(r"(llama_model_\w+)::graph\b")
_LOGITS_SET_COPY = re.compile(r"\bcur\s*=\s*ggml_set_1d\s*\(\s*ctx0\s*,\s*cur\s*,")
_GRAPH_TEMPLATE = re.compile(
    r"template\s*<\s*bool\s+(\w+)\s*>\s*(llama_model_\w+)::graph<\s*\1\s*>::graph\s*\([^)]*\)[^{]*\{"
)
_GRAPH_TEMPLATE_ALIAS = re.compile(
    r"^struct\s+(llama_model_\w+)\s*:[^{]*\{(?:(?!^\};).)*?using\s+graph\s*=\s*(llama_model_\w+)::graph<\s*\w+\s*>\s*;",
    re.M | re.S,
)
# an explicit specialisation of a graph template for its flag set (t5's encoder graph)
_GRAPH_TRUE_SPEC = re.compile(
    r"template\s*<\s*>\s*(llama_model_\w+)::graph<\s*true\s*>::graph\s*\([^)]*\)[^{]*\{"
)
# a class whose graph is another's template with the flag set (`using graph = X::graph<true>;`)
_GRAPH_TRUE_ALIAS = re.compile(
    r"^struct\s+(llama_model_\w+)\s*:[^{]*\{(?:(?!^\};).)*?"
    r"using\s+graph\s*=\s*(llama_model_\w+)::graph<\s*true\s*>\s*;",
    re.M | re.S,
)
_PLAIN_GRAPH = re.compile(r"return\s+std::make_unique<\s*graph\s*>\s*\(\s*\*this\s*,\s*params\s*\)\s*;")
_BUILD_GRAPH_FN = re.compile(r"std::unique_ptr<llm_graph_context>\s+(llama_model_\w+)::build_arch_graph\s*\(")
_ALWAYS_TRUE_GRAPH = re.compile(
    r"return\s+std::make_unique<\s*graph<\s*true\s*>\s*>\s*\(\s*\*this\s*,\s*params\s*\)\s*;"
)
_FA_FORCED_OFF = re.compile(
    r"if\s*\(\s*params\.flash_attn_type\s*!=\s*LLAMA_FLASH_ATTN_TYPE_DISABLED\s*&&\s*model->arch\s*==\s*"
    r"(LLM_ARCH_\w+)\s*\)\s*\{[^{}]*params\.flash_attn_type\s*=\s*LLAMA_FLASH_ATTN_TYPE_DISABLED"
)
_GRAPH_DEF = re.compile(r"(llama_model_\w+)::graph(?:<\w+>)?::graph\s*\(")
_GRAPH_ALIAS = re.compile(
    r"^struct\s+(llama_model_\w+)\s*:[^{]*\{(?:(?!^\};).)*?using\s+graph\s*=\s*(llama_model_\w+)::graph",
    re.M | re.S,
)


_TIED_OUTPUT = re.compile(
    r"\boutput\s*=\s*create_tensor\s*\(\s*tn\s*\(\s*LLM_TENSOR_TOKEN_EMBD\b[^;]*TENSOR_DUPLICATED"
)
_TOK_EMBD = re.compile(r"\btok_embd\s*=\s*create_tensor\s*\(")


def _tied_output_first(tensors_body: str) -> bool:
    tied, tok = _TIED_OUTPUT.search(tensors_body), _TOK_EMBD.search(tensors_body)
    return bool(tied and tok and tied.start() < tok.start())


def parse_kv_layers(body: str, kv_names: dict[str, str]) -> dict[str, Any] | None:
    """Which leading layers own a KV cache (`hparams.n_layer_kv_from_start`): a fixed count,
    the block count less a key's value, or "custom" for a form not recognised; None when the
    loader does not set it (every layer has its own)."""
    m = _KV_FROM_START.search(body)
    if m is None:
        return None
    expr = m.group(1).strip()
    if n := _KV_FROM_N.match(expr):
        return {"count": int(n.group(1))}
    if (var := _KV_FROM_SHARED.match(expr)) and (
        read := re.search(r"get_key\s*\(\s*(LLM_KV_\w+)\s*,\s*" + var.group(1) + r"\b", body)
    ):
        if read.group(1) in kv_names:
            return {"shared_key": kv_names[read.group(1)]}
    return {"rule": "custom"}


def parse_recurrent_layers(body: str) -> dict[str, Any] | None:
    """How a hybrid marks its recurrent layers: every layer, by head_count_kv 0, or by a
    per-layer key with a full-attention interval as default. None: not recognised."""
    if _RECR_ALL.search(body):
        return {"rule": "all"}  # falcon-h1: attention and SSM on every layer
    if _RECR_KEY.search(body):
        m = _RECR_INTERVAL.search(body)
        return {"rule": "key_or_interval", "interval_default": int(m.group(1)) if m else 4}
    if _RECR_NO_KV.search(body):
        return {"rule": "no_kv_heads_no_ff" if _RECR_NO_FF.search(body) else "no_kv_heads"}
    return None


def _body(text: str, start: int) -> str:
    """The brace-balanced block that opens at or after `start`."""
    i = text.index("{", start)
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    raise ValueError("unbalanced braces")


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _switch_cases(text: str, fn: str, returning: str = "true") -> set[str]:
    """The LLM_ARCH_* names of a `bool fn(…)` switch listed before its first `return <returning>`."""
    body = _body(text, text.index(f"bool {fn}("))
    true_part = body.split(f"return {returning}")[0]
    return set(re.findall(r"case\s+(LLM_ARCH_\w+)", true_part))


_CASE_GROUP = re.compile(r"((?:case\s+LLM_ARCH_\w+\s*:\s*)+)\{")


def indexer_cache_archs(model_cpp: str) -> set[str]:
    """Architectures whose create_memory() case builds a DSA cache (`new llama_kv_cache_dsa(`:
    glm-dsa …): beside the MLA cache, a K-only indexer cache, one key head of
    `attention.indexer.key_length` per cell, on the layers with a full indexer."""
    text = _strip_comments(model_cpp)
    body = _body(text, text.index("llama_model::create_memory("))
    out: set[str] = set()
    for m in _CASE_GROUP.finditer(body):
        if re.search(r"new\s+llama_kv_cache_dsa\s*\(", _body(body, m.end() - 1)):
            out.update(re.findall(r"LLM_ARCH_\w+", m.group(1)))
    return out


def _no_memory_archs(model_cpp: str) -> set[str]:
    body = _body(model_cpp, model_cpp.index("llama_model::create_memory("))
    m = re.search(r"((?:case\s+LLM_ARCH_\w+\s*:\s*)+)\{\s*res\s*=\s*nullptr;", body)
    return set(re.findall(r"LLM_ARCH_\w+", m.group(1))) if m else set()


def parse_swa(body: str) -> dict[str, Any] | None:
    """What load_arch_hparams does with sliding windows (None: never reads or sets SWA)."""
    types = _SWA_TYPE.findall(body)
    enabled = [t for t in types if t != "NONE"]
    reads = _READS_WINDOW.search(body)
    if not enabled:
        if reads or types:
            return {"type": "none", "window_key": "ignored"}  # read, then disabled (phi3)
        return None
    kind = enabled[0].lower()
    # enabled only when the window key is present (and > 0): both NONE and a type are assigned
    when = "key" if "NONE" in types else "always"
    if when == "key" and _OFF_ONLY_IF_ZERO.search(body):
        when = "unless_zero"
    out: dict[str, Any] = {"type": kind, "when": when}
    for size_check in _IF_N_LAYER.finditer(body):
        if _SWA_TYPE.search(_body(body, size_check.end())) and when == "always":
            # enabled for one layer count only: any other size keeps no sliding window
            out.update(when="n_layer", n_layer=int(size_check.group(1)))
    if reads:
        out["window_key"] = "optional" if reads.group(1) else "required"
    if m := _N_SWA_DEFAULT.search(body):
        out["window_default"] = int(m.group(1))
        if reads and m.start() > reads.start():
            # assigned after the key is read: the key's value never counts (llama4, smallthinker)
            out["window_override"] = True
    if m := _LOAD_PATTERN.search(body):
        # load_swa_pattern: a per-layer bool array from the GGUF wins, else the GGUF's
        # integer pattern, else this default
        out.update(pattern=int(m.group(1)), dense_first=m.group(2) == "true", pattern_key="optional")
    elif m := _PATTERN_ARR.search(body):
        out.update(pattern="array", pattern_key="optional" if m.group(1) else "required")
    elif m := _SET_PATTERN.search(body):
        out.update(pattern=int(m.group(1)), dense_first=m.group(2) == "true", pattern_key="none")
    else:
        out.update(pattern="custom")  # set per layer in code (lfm2: the non-recurrent layers)
    return out


def parse_tensor_ops(arch_cpp: str) -> dict[str, dict[str, str]]:
    """GGUF tensor name pattern → the layer kind and the op that uses it (LLM_TENSOR_INFOS).

    A weight gets a CPU_REPACK copy only when the repack buffer supports this op
    (MUL_MAT for 2-D, MUL_MAT_ID for 3-D expert tensors); token embeddings are GET_ROWS.
    """
    names = dict(_TENSOR_NAME.findall(_body(arch_cpp, arch_cpp.index("LLM_TENSOR_NAMES"))))
    infos = _TENSOR_INFO.findall(_body(arch_cpp, arch_cpp.index("LLM_TENSOR_INFOS")))
    out = {}
    for enum, layer, op in infos:
        if enum in names:
            out[names[enum].replace("%d", "{bid}").replace("%d", "{xid}")] = {
                "layer": layer.lower(),
                "op": op,
            }
    return out


def parse_repack(repack_cpp: str) -> dict[str, list[dict[str, Any]]]:
    """Per weight type: the (CPU features, row multiple) alternatives that give a CPU_REPACK copy."""
    fn = repack_cpp.index("ggml_repack_get_optimal_repack_type(const struct ggml_tensor * cur)")
    body = _strip_comments(_body(repack_cpp, fn))
    body = re.sub(r"#if defined __riscv_zvfh.*?#endif", "", body, flags=re.S)  # riscv vector only
    out: dict[str, list[dict[str, Any]]] = {}
    matches = list(_REPACK_TYPE.finditer(body))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(body)
        block = body[m.end() : end]
        rules = []
        for cond, mult, target in _REPACK_IF.findall(block):
            for alt in cond.split("||"):
                feats = []
                for t in alt.split("&&"):
                    h = _HAS.search(t)
                    feats.append(h.group(1) if h else "?" + t.strip().strip("()").strip())
                rules.append({"features": feats, "row_multiple": int(mult), "layout": target})
        if rules:
            out[m.group(1)] = rules
    return out


def no_logits_in_embeddings(models_dir: Path, models_h: str) -> set[str]:
    """Model classes whose graph skips the LM head when the context runs in embeddings mode."""
    classes: set[str] = set()
    for path in sorted(models_dir.glob("*.cpp")):
        text = _strip_comments(path.read_text())
        if _LOGITS_UNLESS_EMBD.search(text):
            classes.update(_GRAPH_CTOR.findall(text))
    # classes that reuse another's graph (`using graph = llama_model_lfm2::graph<iswa>`)
    classes.update(cls for cls, base in _GRAPH_ALIAS.findall(models_h) if base in classes)
    return classes


def graphs_without_logits(models_dir: Path, models_h: str) -> set[str]:
    """Model classes whose graph never sets `res->t_logits` (bert-like encoders, gemma-embedding,
    modern-bert …: pooling reads the hidden states), in generation and embeddings mode alike.
    Every other graph has an LM head (diffusion models too: dream, llada, though they keep no
    KV cache)."""
    classes: set[str] = set()
    for path in sorted(models_dir.glob("*.cpp")):
        text = _strip_comments(path.read_text())
        if "t_logits" not in text:
            classes.update(_GRAPH_DEF.findall(text))
    classes.update(cls for cls, base in _GRAPH_ALIAS.findall(models_h) if base in classes)
    return classes


def graphs_copying_logits(models_dir: Path, models_h: str) -> set[str]:
    """Model classes whose graph writes into its LM head's output with a non-inplace
    ggml_set_1d (chameleon masks its image tokens): a second vocab-wide tensor per output."""
    classes: set[str] = set()
    for path in sorted(models_dir.glob("*.cpp")):
        text = _strip_comments(path.read_text())
        if _LOGITS_SET_COPY.search(text) and "t_logits" in text:
            classes.update(_GRAPH_DEF.findall(text))
    classes.update(cls for cls, base in _GRAPH_ALIAS.findall(models_h) if base in classes)
    return classes


def embedding_graphs(models_dir: Path, models_h: str) -> set[str]:
    """Model classes that always build a templated graph with its flag set (`return
    std::make_unique<graph<true>>` and nothing else), where that template (`template <bool P>
    X::graph<P>::graph`) attends without a cache under `if constexpr (P)` and sets t_logits
    only under `if constexpr (!P)`: llama-embed, llama's graph in its embedding form. The
    loader still gives it a KV cache (create_memory), which the graph never reads. Also
    classes whose graph is another's explicitly specialised `graph<true>` (`using graph =
    X::graph<true>;`, built plainly) that attends without a cache and sets no t_logits:
    t5encoder, t5's encoder graph."""
    texts = {path: _strip_comments(path.read_text()) for path in sorted(models_dir.glob("*.cpp"))}
    templates: dict[str, str] = {}
    for text in texts.values():
        for m in _GRAPH_TEMPLATE.finditer(text):
            cls, param = m.group(2), m.group(1)
            body = _body(text, m.end() - 1)
            when = rf"if\s+constexpr\s*\(\s*{param}\s*\)\s*\{{[^{{}}]*"
            unless = rf"if\s+constexpr\s*\(\s*!\s*{param}\s*\)\s*\{{[^{{}}]*"
            no_cache = re.search(when + "build_attn_inp_no_cache", body)
            logits_unless = re.search(unless + "t_logits", body)
            if no_cache and logits_unless:
                templates[cls] = param
    aliases = {cls: base for cls, base in _GRAPH_TEMPLATE_ALIAS.findall(models_h)}
    out: set[str] = set()
    for text in texts.values():
        for m in _BUILD_GRAPH_FN.finditer(text):
            cls = m.group(1)
            body = _body(text, m.start()).strip()
            if _ALWAYS_TRUE_GRAPH.fullmatch(body) and aliases.get(cls, cls) in templates:
                out.add(cls)
    specs: set[str] = set()
    for text in texts.values():
        for m in _GRAPH_TRUE_SPEC.finditer(text):
            body = _body(text, m.end() - 1)
            if "build_attn_inp_no_cache" in body and "t_logits" not in body:
                specs.add(m.group(1))
    true_aliases = {cls: base for cls, base in _GRAPH_TRUE_ALIAS.findall(models_h) if base in specs}
    for text in texts.values():
        for m in _BUILD_GRAPH_FN.finditer(text):
            cls = m.group(1)
            if cls in true_aliases and _PLAIN_GRAPH.fullmatch(_body(text, m.start()).strip()):
                out.add(cls)
    return out


def graphs_with_pos_bias(models_dir: Path, models_h: str) -> set[str]:
    """Model classes whose graph adds a relative-position bias to KQ (`build_pos_bias`: t5,
    and t5encoder through `using graph = llama_model_t5::graph<true>`). build_attn_mha then
    runs without flash attention whatever the flag (`use_flash_attn = … && kq_b == nullptr`)
    and keeps the bias, n_head × n_kv × n_tokens floats, beside KQ."""
    out: set[str] = set()
    for path in sorted(models_dir.glob("*.cpp")):
        text = _strip_comments(path.read_text())
        if "build_pos_bias" in text:
            out.update(m.group(1) for m in _GRAPH_DEF.finditer(text))
    aliases = {cls: base for cls, base in _GRAPH_TEMPLATE_ALIAS.findall(models_h)}
    return out | {cls for cls, base in aliases.items() if base in out}


def graphs_with_all_outputs(models_dir: Path, models_h: str) -> set[str]:
    """Model classes whose graph has an LM head but never selects the output rows
    (no `inp_out_ids`): logits for every token of the ubatch, generating too (cogvlm)."""
    classes: set[str] = set()
    for path in sorted(models_dir.glob("*.cpp")):
        text = _strip_comments(path.read_text())
        if "t_logits" in text and "inp_out_ids" not in text:
            classes.update(_GRAPH_DEF.findall(text))
    classes.update(cls for cls, base in _GRAPH_ALIAS.findall(models_h) if base in classes)
    return classes


def flash_attn_forced_off(context_cpp: str) -> set[str]:
    """Architectures llama_init_from_model turns flash attention off for, whatever the flag says
    (`if (params.flash_attn_type != …DISABLED && model->arch == LLM_ARCH_X) { … = DISABLED; }`:
    grok, whose graph applies its own attention softcapping to a materialised KQ matrix)."""
    return {m.group(1) for m in _FA_FORCED_OFF.finditer(_strip_comments(context_cpp))}


def parse_graph_max_nodes(context_cpp: str) -> tuple[dict[str, Any], dict[str, dict[str, int]]]:
    """The graph node budget (llama_context::graph_max_nodes): the default, and the enum names
    of the architectures that get max(n_tokens · per_token, per_tensor · n_tensors) instead.

    Each llm_graph_result and the scheduler size their metadata by it (buf_compute_meta: one
    ggml_tensor + object per node, plus the graph's node/leaf/hash tables), so it is heap
    memory that grows with the ubatch for those architectures. A branch that also tests
    something besides the architecture (`LLM_ARCH_X && hparams…`) is left out."""
    body = _strip_comments(_body(context_cpp, context_cpp.index("llama_context::graph_max_nodes(")))
    m = _MAX_NODES_DEFAULT.search(body)
    if m is None:
        raise ValueError("graph_max_nodes: default branch not recognised")
    default = {"min": int(m.group(1)), "per_tensor": int(m.group(2))}
    per_arch: dict[str, dict[str, int]] = {}
    for b in _MAX_NODES_BRANCH.finditer(body):
        rule = {"per_token": int(b.group("tok")), "per_tensor": int(b.group("ten"))}
        for term in b.group("cond").split("||"):
            plain = re.fullmatch(r"\s*\(?\s*model\.arch\s*==\s*(LLM_ARCH_\w+)\s*\)?\s*", term)
            if plain:
                per_arch[plain.group(1)] = rule
    return default, per_arch


def generate(src: Path) -> dict[str, Any]:
    arch_cpp = (src / "src/llama-arch.cpp").read_text()
    model_cpp = (src / "src/llama-model.cpp").read_text()
    models_h = (src / "src/models/models.h").read_text()
    repack_cpp = (src / "ggml/src/ggml-cpu/repack.cpp").read_text()

    names_block = _body(arch_cpp, arch_cpp.index("LLM_ARCH_NAMES"))
    names = dict(_ARCH_NAME.findall(names_block))
    kv_names = dict(_KV_NAME.findall(arch_cpp))
    classes = dict(_CASE_NEW.findall(model_cpp))
    bases = dict(_STRUCT.findall(models_h))
    recurrent = _switch_cases(arch_cpp, "llm_arch_is_recurrent")
    hybrid = _switch_cases(arch_cpp, "llm_arch_is_hybrid")
    diffusion = _switch_cases(arch_cpp, "llm_arch_is_diffusion")
    no_memory = _no_memory_archs(model_cpp)
    indexer_cache = indexer_cache_archs(model_cpp)
    # an encoder with a decoder needs llama_encode; one without (t5encoder) is decoded as an encoder graph
    has_encoder = _switch_cases(model_cpp, "llama_model_has_encoder") - _switch_cases(
        model_cpp, "llama_model_has_decoder", returning="false"
    )
    no_embd_logits = no_logits_in_embeddings(src / "src/models", models_h)
    no_logits = graphs_without_logits(src / "src/models", models_h)
    logits_copied = graphs_copying_logits(src / "src/models", models_h)
    embedding_form = embedding_graphs(src / "src/models", models_h)
    all_outputs = graphs_with_all_outputs(src / "src/models", models_h)
    pos_bias = graphs_with_pos_bias(src / "src/models", models_h)
    context_cpp = (src / "src/llama-context.cpp").read_text()
    nodes_default, nodes_per_arch = parse_graph_max_nodes(context_cpp)
    no_flash_attn = flash_attn_forced_off(context_cpp)

    bodies: dict[str, str] = {}
    tensor_bodies: dict[str, str] = {}
    for path in sorted((src / "src/models").glob("*.cpp")):
        text = _strip_comments(path.read_text())
        for m in _HPARAMS_FN.finditer(text):
            bodies[m.group(1)] = _body(text, m.start())
        for m in _TENSORS_FN.finditer(text):
            tensor_bodies[m.group(1)] = _body(text, m.start())

    archs: dict[str, Any] = {}
    for enum, name in sorted(names.items(), key=lambda kv: kv[1]):
        cls = classes.get(enum)
        if cls is None:
            continue  # not loadable as a model (clip, unknown)
        owner = cls
        while owner not in bodies and owner in bases:
            owner = bases[owner]
        body = bodies.get(owner, "")
        if enum in recurrent:
            memory = "recurrent"
        elif enum in hybrid:
            memory = "hybrid"
        elif enum in no_memory:
            memory = "none"
        else:
            memory = "kv"
        entry: dict[str, Any] = {"class": cls, "memory": memory}
        swa = parse_swa(body)
        if swa is not None:
            if swa.get("pattern") == "custom" and _SWA_NOT_RECR.search(body):
                swa["pattern"] = "not_recurrent"
            entry["swa"] = swa
        if _NON_CAUSAL.search(body):
            entry["causal"] = False
        elif _READS_CAUSAL.search(body):
            entry["causal"] = "key"
        if memory == "hybrid":
            recr = parse_recurrent_layers(body)
            entry["recurrent_layers"] = recr if recr is not None else {"rule": "custom"}
        if (kv_layers := parse_kv_layers(body, kv_names)) is not None:
            entry["kv_layers"] = kv_layers  # the other layers reuse the last ones' KV cache
        if enum in indexer_cache:
            # a lightning-indexer key cache beside the MLA cache; which layers have one: the
            # `attention.indexer.types` array where the loader reads it, else every layer
            # (GLM 5/5.1; a 1M-context GLM 5.2 without the key gets a built-in table)
            types_key = "LLM_KV_ATTENTION_INDEXER_TYPES" in body
            entry["indexer_cache"] = {"layers": "types_key_or_all" if types_key else "all"}
            if fill := re.search(r"fill\s*\(\s*hparams\.is_indexer_full_impl[^;]*;", body):
                # `if (n_ctx_train < N) fill(…, 1)`: every layer below N, a built-in table above
                if below := re.search(r"n_ctx_train\s*<\s*(\d+)", body[: fill.start()]):
                    entry["indexer_cache"]["all_below_ctx"] = int(below.group(1))
        if enum in has_encoder:
            entry["encoder"] = True  # runs llama_encode, which llama-server never calls
        if enum in nodes_per_arch:
            entry["graph_nodes"] = nodes_per_arch[enum]
        if cls in no_embd_logits:
            entry["embeddings_logits"] = False
        if cls in no_logits:
            entry["logits"] = False
        if cls in logits_copied:
            entry["logits_copies"] = 2
        if cls in all_outputs:
            entry["all_outputs"] = True  # no inp_out_ids: logits for every token (cogvlm)
        if cls in pos_bias:
            entry["pos_bias"] = True  # a relative-position bias on KQ: no flash attention (t5)
        if enum in no_flash_attn:
            entry["flash_attn"] = False  # forced off at context creation (grok)
        if cls in embedding_form:
            # llama-embed: attention over the ubatch (no cache read), no LM head
            entry.update(attn_no_cache=True, logits=False)
        if enum in diffusion:
            entry["diffusion"] = True
        owner = cls
        while owner not in tensor_bodies and owner in bases:
            owner = bases[owner]
        if owner in tensor_bodies and _tied_output_first(tensor_bodies[owner]):
            # the tied LM head (token_embd, TENSOR_DUPLICATED) is created before tok_embd itself:
            # loaded without mmap, it is a second copy of token_embd (gemma3n, gemma4)
            entry["tied_output_first"] = True
        if owner in tensor_bodies and not _OUTPUT_TENSOR.search(tensor_bodies[owner]):
            # no LM head tensor (encoders: bert …; bitnet's graph multiplies by token_embd
            # itself): token_embd stays an input-only tensor — no repacked output copy
            entry["output_tensor"] = False
        if not body:
            entry["hparams_source"] = "missing"
        archs[name] = entry
    return {
        "archs": archs,
        "graph_nodes_default": nodes_default,
        "repack": parse_repack(repack_cpp),
        "tensor_ops": parse_tensor_ops(arch_cpp),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--src", type=Path, help="a vendored llama.cpp tree (…/vendor/llama.cpp)")
    g.add_argument("--sdist", type=Path, help="the llama-cpp-python sdist .tar.gz")
    p.add_argument("--version", default=None, help="llama-cpp-python version (default: from the sdist name)")
    p.add_argument("-o", "--output", type=Path, required=True)
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if a.sdist:
            with tarfile.open(a.sdist) as tf:
                members = [m for m in tf.getmembers() if "/vendor/llama.cpp/src/" in m.name
                           or m.name.endswith("ggml-cpu/repack.cpp")]  # fmt: skip
                tf.extractall(tmp, members=members, filter="data")
            src = next(Path(tmp).glob("*/vendor/llama.cpp"))
            version = a.version or re.sub(r"^llama_cpp_python-|\.tar\.gz$", "", a.sdist.name)
            origin = f"{a.sdist.name}: vendor/llama.cpp"
        else:
            src = a.src
            version = a.version or "unknown"
            origin = str(src)
        data = generate(src)
    if len(data["archs"]) < 20 or "llama" not in data["archs"] or not data["repack"]:
        print(f"parsed only {len(data['archs'])} architectures: the source layout changed", file=sys.stderr)
        return 1
    out = {
        "generated": {
            "by": "scripts/gen_llamacpp_arch.py",
            "from": origin,
            "llama_cpp_python": version,
        },
        **data,
    }
    a.output.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"{len(data['archs'])} architectures, {len(data['repack'])} repackable types → {a.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

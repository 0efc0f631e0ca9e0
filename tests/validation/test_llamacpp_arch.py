"""The per-architecture llama.cpp data, its generator, and the estimate rules built on it (no engine)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from cortexctl.engines.llamacpp.arch import known_archs, repack_layout, resolve_swa
from cortexctl.engines.llamacpp.args import LlamaCppArgs
from cortexctl.engines.llamacpp.estimate import estimate_llamacpp
from cortexctl.engines.llamacpp.estimate_flags import LlamaCppFlags
from cortexctl.engines.llamacpp.weights import place_weights
from cortexctl.validation import inspect_model
from tests.support.tiny_gguf import write_tiny_llama
from tests.validation.ggufmodels import Shape, write_gguf

ROOT = Path(__file__).resolve().parents[2]
AVX2 = frozenset({"avx2", "f16c"})
NEON_DOT = frozenset({"neon", "dotprod"})


def _gen():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_llamacpp_arch", ROOT / "scripts/gen_llamacpp_arch.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gen_llamacpp_arch"] = mod
    spec.loader.exec_module(mod)
    return mod


# ---- the generated data says what the loader does -----------------------------------------


def test_data_covers_the_loader_table_and_the_issue_architectures() -> None:
    archs = known_archs()
    assert len(archs) > 100
    assert "swa" not in archs["llama"] and "swa" not in archs["qwen2"]  # never read the key
    assert archs["phi3"]["swa"] == {"type": "none", "window_key": "ignored"}  # read, then disabled
    assert archs["gemma3"]["swa"]["pattern"] == 6 and archs["gemma3"]["swa"]["when"] == "key"
    assert archs["gpt-oss"]["swa"]["pattern"] == 2
    assert archs["gemma2"]["swa"]["window_default"] == 4096
    assert archs["mamba"]["memory"] == "recurrent" and archs["bert"]["memory"] == "none"
    # lfm2's graph skips the LM head in embeddings mode; lfm2moe reuses that graph
    assert archs["lfm2"]["embeddings_logits"] is False and archs["lfm2moe"]["embeddings_logits"] is False
    assert "embeddings_logits" not in archs["gemma3"]  # computes vocab-wide logits there too
    # graph node budget: n_tokens × 40 for the delta-net models, the default for the rest
    assert archs["qwen35"]["graph_nodes"] == {"per_token": 40, "per_tensor": 32}
    assert "graph_nodes" not in archs["llama"]
    # issue 17: read from the graph builders and llama_init_from_model
    assert archs["bert"]["logits"] is False and "logits" not in archs["dream"]  # diffusion: an LM head
    assert archs["chameleon"]["logits_copies"] == 2  # ggml_set_1d copies the logits
    assert archs["llama-embed"]["attn_no_cache"] is True and archs["llama-embed"]["logits"] is False
    assert archs["grok"]["flash_attn"] is False and "flash_attn" not in archs["llama"]
    assert archs["llama4"]["swa"]["when"] == "unless_zero"
    assert archs["cogvlm"]["all_outputs"] is True and "all_outputs" not in archs["llama"]  # no inp_out_ids
    assert archs["gemma4"]["tied_output_first"] and "tied_output_first" not in archs["gemma3"]
    # only the first layers own a KV cache: gemma3n's fixed 20, gemma4's count less a key
    assert archs["gemma3n"]["kv_layers"] == {"count": 20}
    assert archs["gemma4"]["kv_layers"] == {"shared_key": "attention.shared_kv_layers"}
    assert "kv_layers" not in archs["gemma3"]
    # t5encoder (no decoder) is decoded as t5's encoder graph: no cache read, no LM head, a
    # relative-position bias on KQ; t5 itself needs llama_encode
    t5e = archs["t5encoder"]
    assert t5e["attn_no_cache"] and t5e["logits"] is False and t5e["pos_bias"] and "encoder" not in t5e
    assert archs["t5"]["encoder"] and archs["t5"]["pos_bias"] and "pos_bias" not in archs["llama"]
    # glm-dsa: a DSA cache (MLA + indexer keys), every layer below a 1M-token trained context
    assert archs["glm-dsa"]["indexer_cache"] == {"layers": "types_key_or_all", "all_below_ctx": 1048576}
    assert "indexer_cache" not in archs["deepseek2"]


@pytest.mark.parametrize(
    ("arch", "window", "pattern", "expect"),
    [
        ("llama", 256, None, (None, 0)),  # the key is ignored
        ("qwen2", 4096, None, (None, 0)),
        ("phi3", 2047, None, (None, 0)),  # "Phi SWA is currently disabled"
        ("gemma3", 512, None, (512, 10)),  # 5 of every 6 layers slide
        ("gemma3", None, None, (None, 0)),  # gemma3 without the key: no SWA at all
        ("gemma2", None, None, (4096, 6)),  # gemma2 defaults to 4096, every other layer
        ("gpt-oss", 128, None, (128, 6)),
        ("gemma3", 512, 3, (512, 8)),  # the GGUF's integer pattern overrides the default
        ("gemma3", 512, [True, False] * 6, (512, 6)),  # and a per-layer array wins
        ("cohere2", 4096, None, (4096, 9)),
        ("llama4", None, None, (8192, 9)),  # no key: the loader's chunked 8192 window, 3 of 4 layers
        ("llama4", 256, None, (8192, 9)),  # a key's value is overwritten
        ("llama4", 0, None, (None, 0)),  # only an explicit 0 turns it off
    ],
)
def test_resolve_swa(arch: str, window: int | None, pattern: object, expect: tuple[int | None, int]) -> None:
    r = resolve_swa(arch, 12, window, pattern)
    assert (r.window, sum(r.layers)) == expect
    assert r.guessed is None


def test_unknown_architecture_is_a_guess() -> None:
    r = resolve_swa("not-an-arch", 4, 128, None)
    assert r.window == 128 and all(r.layers) and r.guessed and "not-an-arch" in r.guessed


def test_repack_rules_follow_cpu_features_op_and_rows() -> None:
    assert repack_layout("blk.0.attn_q.weight", "Q4_0", (512, 512), AVX2) == "q4_0_8x8_q8_0"
    assert repack_layout("blk.0.attn_q.weight", "Q4_0", (512, 512), NEON_DOT) == "q4_0_4x4_q8_0"
    assert repack_layout("blk.0.attn_q.weight", "Q4_0", (512, 12), AVX2) is None  # rows % 8
    assert repack_layout("token_embd.weight", "Q4_0", (512, 512), AVX2) is None  # GET_ROWS
    assert repack_layout("output.weight", "Q4_K", (512, 32000), AVX2) == "q4_K_8x8_q8_K"
    assert repack_layout("blk.0.ffn_up_exps.weight", "Q4_0", (512, 1024, 8), AVX2) == "q4_0_8x8_q8_0"
    assert repack_layout("blk.0.attn_q.weight", "Q8_0", (512, 512), AVX2) is None  # only NEON repacks Q8_0
    assert repack_layout("blk.0.attn_q.weight", "F16", (512, 512), AVX2) is None


# ---- the generator parses the real source layout ------------------------------------------

_MODEL_CPP = """
void llama_model_foo::load_arch_hparams(llama_model_loader & ml) {
    const bool found_swa = ml.get_key(LLM_KV_ATTENTION_SLIDING_WINDOW, hparams.n_swa, false);
    if (found_swa && hparams.n_swa > 0) {
        hparams.swa_type = LLAMA_SWA_TYPE_STANDARD;
        load_swa_pattern(ml, 4, /*dense_first=*/true);
    } else {
        hparams.swa_type = LLAMA_SWA_TYPE_NONE;
    }
}
"""


_LLAMA4_CPP = """
void llama_model_llama4::load_arch_hparams(llama_model_loader & ml) {
    const bool found_swa = ml.get_key(LLM_KV_ATTENTION_SLIDING_WINDOW, hparams.n_swa, false);
    if (found_swa && hparams.n_swa == 0) {
        hparams.swa_type             = LLAMA_SWA_TYPE_NONE;
    } else {
        hparams.swa_type                = LLAMA_SWA_TYPE_CHUNKED;
        hparams.n_swa                   = 8192;
        load_swa_pattern(ml, 4);
    }
}
"""


def test_generator_parses_swa_rules() -> None:
    gen = _gen()
    body = gen._body(_MODEL_CPP, 0)
    assert gen.parse_swa(body) == {
        "type": "standard", "when": "key", "window_key": "optional",
        "pattern": 4, "dense_first": True, "pattern_key": "optional",
    }  # fmt: skip
    assert gen.parse_swa("ml.get_key(LLM_KV_ROPE_FREQ_BASE, x);") is None
    assert gen.parse_swa(gen._body(_LLAMA4_CPP, 0))["when"] == "unless_zero"
    assert gen.parse_swa("hparams.swa_type = LLAMA_SWA_TYPE_NONE;") == {
        "type": "none",
        "window_key": "ignored",
    }


def test_generator_parses_the_layers_that_own_a_kv_cache() -> None:
    gen = _gen()
    names = {"LLM_KV_ATTENTION_SHARED_KV_LAYERS": "attention.shared_kv_layers"}
    shared = (
        "uint32_t n = 0; ml.get_key(LLM_KV_ATTENTION_SHARED_KV_LAYERS, n, false);"
        " hparams.n_layer_kv_from_start = hparams.n_layer_all - (int32_t)n;"
    )
    assert gen.parse_kv_layers(shared, names) == {"shared_key": "attention.shared_kv_layers"}
    assert gen.parse_kv_layers("hparams.n_layer_kv_from_start = 20;", names) == {"count": 20}
    assert gen.parse_kv_layers("hparams.n_layer_kv_from_start = f(x);", names) == {"rule": "custom"}
    assert gen.parse_kv_layers("hparams.n_swa = 512;", names) is None


def test_shared_kv_layers_get_no_cache_of_their_own(tmp_path: Path) -> None:
    """gemma4's last `attention.shared_kv_layers` layers reuse an earlier layer's KV cache
    (llama_hparams::has_kv, create_memory's `reuse`): the estimate counts the others only."""

    def gemma4(name: str, shared: int) -> Path:
        shape = Shape(name=name, arch="gemma4", n_layer=8, n_embd=64, n_head=2, n_kv_head=1, head_dim=64,
                      n_ff=128, n_vocab=512, sliding_window=256,
                      sliding_window_pattern=(True, True, True, False) * 2,
                      extra_keys={"attention.shared_kv_layers": shared} if shared else {})  # fmt: skip
        return write_gguf(shape, tmp_path / f"{name}.gguf")

    full, half = inspect_model(gemma4("full", 0)), inspect_model(gemma4("half", 4))
    assert full.kv_layers == 8 and half.kv_layers == 4 and not half.approximate
    args = LlamaCppArgs(context_length=4096, parallel=1)
    a, b = estimate_llamacpp(full, args), estimate_llamacpp(half, args)
    row = 2 * 64 * 2  # K and V, one KV head of 64, f16
    assert a.get("kv_full") == 2 * 4096 * row and b.get("kv_full") == 1 * 4096 * row
    swa = 768  # pad(window 256 + ubatch 512, 256) cells
    assert a.get("kv_swa") == 6 * swa * row and b.get("kv_swa") == 3 * swa * row


def test_generator_finds_graphs_without_logits_in_embeddings_mode(tmp_path: Path) -> None:
    (tmp_path / "a.cpp").write_text("""template <bool iswa>
llama_model_a::graph<iswa>::graph(const llama_model & model, const llm_graph_params & params) {
    res->t_embd = cur;
    if (!cparams.embeddings) {  // the LM head
        cur = build_lora_mm(model.output, cur, model.output_s);
        res->t_logits = cur;
    }
}""")
    (tmp_path / "b.cpp").write_text("""llama_model_b::graph::graph(const llama_model & model) {
    cur = build_lora_mm(model.output, cur);
    res->t_logits = cur;
}""")
    models_h = """struct llama_model_c : public llama_model_base {
    template <bool iswa>
    using graph = llama_model_a::graph<iswa>;
};

struct llama_model_d : public llama_model_base {
    using graph = llama_model_b::graph;
};
"""
    assert _gen().no_logits_in_embeddings(tmp_path, models_h) == {"llama_model_a", "llama_model_c"}


def test_generator_reads_each_graphs_lm_head(tmp_path: Path) -> None:
    """Issue 17: graphs without an LM head, with a copied one, with one on every token, and a
    template built in its embedding form (no cache read, no LM head)."""
    (tmp_path / "enc.cpp").write_text("""llama_model_enc::graph::graph(const llama_model & model) {
    res->t_embd = cur;
}""")
    (tmp_path / "cham.cpp").write_text("""llama_model_cham::graph::graph(const llama_model & model) {
    ggml_tensor * inp_out_ids = build_inp_out_ids();
    cur = build_lora_mm(model.output, cur);
    cur = ggml_set_1d(ctx0, cur, img_logits, 4);
    res->t_logits = cur;
}""")
    (tmp_path / "vlm.cpp").write_text("""llama_model_vlm::graph::graph(const llama_model & model) {
    cur = build_lora_mm(model.output, cur);
    res->t_logits = cur;
}""")
    (tmp_path / "base.cpp").write_text("""template <bool embed>
llama_model_base2::graph<embed>::graph(const llama_model & model, const llm_graph_params & params) {
    ggml_tensor * inp_out_ids = build_inp_out_ids();
    if constexpr (embed) {
        inp_attn = build_attn_inp_no_cache();
    } else {
        inp_attn = build_attn_inp_kv();
    }
    if constexpr (!embed) {
        cur = build_lora_mm(model.output, cur, model.output_s);
        res->t_logits = cur;
    }
}""")
    (tmp_path / "emb.cpp").write_text("""std::unique_ptr<llm_graph_context> llama_model_emb::build_arch_graph(
        const llm_graph_params & params) const {
    return std::make_unique<graph<true>>(*this, params);
}""")
    models_h = """struct llama_model_enc2 : public llama_model_base {
    using graph = llama_model_enc::graph;
};

struct llama_model_emb : public llama_model_base2 {
    template <bool embed>
    using graph = llama_model_base2::graph<embed>;
};
"""
    gen = _gen()
    assert gen.graphs_without_logits(tmp_path, models_h) == {"llama_model_enc", "llama_model_enc2"}
    assert gen.graphs_copying_logits(tmp_path, models_h) == {"llama_model_cham"}
    assert gen.graphs_with_all_outputs(tmp_path, models_h) == {"llama_model_vlm"}
    assert gen.embedding_graphs(tmp_path, models_h) == {"llama_model_emb"}
    context = """llama_context * llama_init_from_model(llama_model * model, llama_context_params params) {
    if (params.flash_attn_type != LLAMA_FLASH_ATTN_TYPE_DISABLED && model->arch == LLM_ARCH_GROK) {
        LLAMA_LOG_WARN("%s: flash_attn is not compatible with Grok - forcing off\\n", __func__);
        params.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    }
}"""
    assert gen.flash_attn_forced_off(context) == {"LLM_ARCH_GROK"}


def test_generator_reads_an_explicit_encoder_graph_with_a_position_bias(tmp_path: Path) -> None:
    """t5encoder: its graph is t5's explicitly specialised `graph<true>` (no cache read, no LM
    head, a relative-position bias); t5's own graph<false> reads the cache."""
    (tmp_path / "t5.cpp").write_text("""template <>
llama_model_t5::graph<false>::graph(const llama_model & model, const llm_graph_params & params) {
    auto * inp_attn_self  = build_attn_inp_kv();
    ggml_tensor * kq_b = build_pos_bias(pos_bucket_dec, attn_rel_b);
    res->t_logits = cur;
}

template <>
llama_model_t5::graph<true>::graph(const llama_model & model, const llm_graph_params & params) {
    auto * inp_attn = build_attn_inp_no_cache();
    ggml_tensor * kq_b = build_pos_bias(pos_bucket_enc, attn_rel_b);
    res->t_embd = cur;
}""")
    (tmp_path / "t5encoder.cpp").write_text("""std::unique_ptr<llm_graph_context>
    llama_model_t5encoder::build_arch_graph(const llm_graph_params & params) const {
    return std::make_unique<graph>(*this, params);
}""")
    (tmp_path / "llama.cpp").write_text("""llama_model_llama::graph::graph(const llama_model & model) {
    res->t_logits = cur;
}""")
    models_h = """struct llama_model_t5encoder : public llama_model_base {
    using graph = llama_model_t5::graph<true>;
};
"""
    gen = _gen()
    assert gen.embedding_graphs(tmp_path, models_h) == {"llama_model_t5encoder"}
    assert gen.graphs_with_pos_bias(tmp_path, models_h) == {"llama_model_t5", "llama_model_t5encoder"}


def test_generator_finds_the_dsa_cache() -> None:
    model_cpp = """llama_memory_i * llama_model::create_memory(const llama_memory_params & params) const {
    switch (arch) {
        case LLM_ARCH_BERT:
            {
                res = nullptr;
            } break;
        case LLM_ARCH_GLM_DSA:
        case LLM_ARCH_DEEPSEEK32:
            {
                if (mtp) {
                    res = new llama_kv_cache(*this);
                } else {
                    res = new llama_kv_cache_dsa(*this, params.type_k);
                }
            } break;
        case LLM_ARCH_OTHER:
            {
                res = new llama_kv_cache_dsa_iswa(*this);
            } break;
    }
}"""
    assert _gen().indexer_cache_archs(model_cpp) == {"LLM_ARCH_GLM_DSA", "LLM_ARCH_DEEPSEEK32"}


def test_generator_parses_the_graph_node_budget() -> None:
    src = """uint32_t llama_context::graph_max_nodes(uint32_t n_tokens) const {
    uint32_t res;
    if (model.arch == LLM_ARCH_KIMI_K3 || model.arch == LLM_ARCH_GLM5_NEXT) {
        // the n_tokens*40 budget below is exhausted at ubatch 3840
        res = std::max<uint32_t>(n_tokens * 160, 64u * model.n_tensors());
    } else if (model.arch == LLM_ARCH_QWEN35 ||
        (model.arch == LLM_ARCH_DFLASH && model.hparams.dsv4_hc_mult > 0) ||
        model.arch == LLM_ARCH_HY_V4) {
        res = std::max<uint32_t>(n_tokens * 40, 32u * model.n_tensors());
    } else {
        res = std::max<uint32_t>(1024u, 8u*model.n_tensors());
    }
    return res;
}"""
    default, per_arch = _gen().parse_graph_max_nodes(src)
    assert default == {"min": 1024, "per_tensor": 8}
    assert per_arch == {
        "LLM_ARCH_KIMI_K3": {"per_token": 160, "per_tensor": 64},
        "LLM_ARCH_GLM5_NEXT": {"per_token": 160, "per_tensor": 64},
        "LLM_ARCH_QWEN35": {"per_token": 40, "per_tensor": 32},
        "LLM_ARCH_HY_V4": {"per_token": 40, "per_tensor": 32},
    }  # the DFLASH branch depends on more than the architecture: left out


def test_graph_metadata_counts_only_the_budget_beyond_the_default(tmp_path: Path) -> None:
    from cortexctl.engines.llamacpp.estimate import graph_meta_bytes

    # 20480 nodes (ubatch 512 × 40): 368 B of tensor + object per node, the tables, a 65537 hash
    assert graph_meta_bytes(20480) == 368 * 20480 + 16 * 20480 + 12 * 65537 + 2049 * 4 + 128
    qwen35 = inspect_model(write_gguf(Shape(name="q35", arch="qwen35", n_layer=8, n_embd=512, n_head=8,
                                            n_kv_head=2, n_ff=1536, n_vocab=32000, head_dim=64),
                                      tmp_path / "q35.gguf"))  # fmt: skip
    argv = ["-m", "x", "-c", "4096", "-ub", "512"]
    est = estimate_llamacpp(qwen35, LlamaCppArgs(), command=argv)
    assert est.facts["graph_result"] > 7 * 2**20  # ≈ 8 MiB per result at ubatch 512
    assert est.get("graph") == 3 * est.facts["graph_result"]  # the reserve, warm-up, checkpoint split
    emb = estimate_llamacpp(qwen35, LlamaCppArgs(), command=[*argv, "--embeddings"])
    assert emb.get("graph") == 2 * emb.facts["graph_result"]  # no checkpoints in embeddings mode
    tiny = Shape(name="l", arch="llama", n_layer=2, n_embd=64, n_head=2, n_kv_head=2, n_ff=128, n_vocab=512)
    llama = inspect_model(write_gguf(tiny, tmp_path / "l.gguf"))
    assert estimate_llamacpp(llama, LlamaCppArgs(), command=argv).get("graph") == 0


@pytest.mark.parametrize(
    ("arch", "extra", "guess"),
    [
        ("t5", {}, "never runs its encoder"),  # llama-server never calls llama_encode
        # a WKV model without a measured time-mix rule (rwkv6qwen2's taken out of the table)
        ("rwkv6qwen2", {"wkv.head_size": 64}, "WKV/time-mix graph"),
    ],
)
def test_unmeasured_architectures_report_approximate(
    arch: str, extra: dict[str, int], guess: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cortexctl.engines.llamacpp import arch as arch_mod

    monkeypatch.setattr(arch_mod, "WKV_PHASE", {k: v for k, v in arch_mod.WKV_PHASE.items() if k != arch})
    path = write_gguf(Shape(name=arch, arch=arch, n_layer=2, n_embd=64, n_head=2, n_kv_head=2, n_ff=128,
                            n_vocab=512, extra_keys=extra), tmp_path / f"{arch}.gguf")  # fmt: skip
    from cortexctl.validation.inspect_gguf import inspect_gguf

    est = estimate_llamacpp(inspect_gguf(path), LlamaCppArgs(), command=["-m", str(path), "-c", "512"])
    assert est.facts["estimate"] == "approximate"
    assert any(guess in n for n in est.notes if n.startswith("estimate: approximate")), est.notes


def test_generator_parses_repack_conditions() -> None:
    src = """static const T * ggml_repack_get_optimal_repack_type(const struct ggml_tensor * cur) {
    if (cur->type == GGML_TYPE_Q4_0) {
        if (ggml_cpu_has_avx2() || (ggml_cpu_has_sve() && ggml_cpu_get_sve_cnt() == QK8_0)) {
            if (cur->ne[1] % 8 == 0) {
                return &q4_0_8x8_q8_0;
            }
        }
    }
    return nullptr;
}"""
    rules = _gen().parse_repack(src)["Q4_0"]
    assert rules[0] == {"features": ["avx2"], "row_multiple": 8, "layout": "q4_0_8x8_q8_0"}
    assert rules[1]["features"][0] == "sve" and rules[1]["features"][1].startswith("?")


def test_generator_refuses_a_tree_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        _gen().generate(tmp_path)


# ---- weights, flags and the breakdown ---------------------------------------------------


def _shape(weights: str, tied: bool = True) -> Shape:
    return Shape("t", n_layer=2, n_embd=256, n_head=4, n_kv_head=2, n_ff=512, n_vocab=1024,
                 weight_type=weights, tied_output=tied)  # fmt: skip


def test_tied_embedding_gets_a_repacked_copy(tmp_path: Path) -> None:
    m = inspect_model(write_gguf(_shape("Q4_0"), tmp_path / "q4.gguf"))
    emb = next(t.nbytes for t in m.tensors if t.name == "token_embd.weight")
    layer_mats = sum(t.nbytes for t in m.tensors if t.name.startswith("blk.") and len(t.shape) == 2)
    w = place_weights(m, gpu_layers=0, mmap=False, repack=True, features=AVX2)
    assert w.repack == layer_mats + emb  # every layer matrix + the output copy of token_embd
    assert w.host == m.weight_bytes - layer_mats  # repacked tensors are only in CPU_REPACK
    w = place_weights(m, gpu_layers=0, mmap=False, repack=False, features=AVX2)
    assert (w.host, w.repack) == (m.weight_bytes, 0)  # unrepacked, the output shares token_embd
    w = place_weights(m, gpu_layers=0, mmap=True, repack=False, features=AVX2)
    assert (w.host, w.repack) == (m.weight_bytes, 0)
    w = place_weights(m, gpu_layers=0, mmap=True, repack=True, features=AVX2)
    # the mapping spans token_embd … the last norm: the range, not the sum, of mapped tensors
    assert m.weight_bytes - layer_mats < w.host <= m.weight_bytes


def test_flags_read_load_mode_repack_cache_ram_and_embeddings(tmp_path: Path) -> None:
    m = inspect_model(write_tiny_llama(tmp_path / "l.gguf"))
    args = LlamaCppArgs(embeddings=True, batch_size=2048, ubatch_size=256,
                        extra_args=["--no-repack", "--load-mode", "none", "--cache-ram", "64"])  # fmt: skip
    f = LlamaCppFlags.from_args(args, m)
    assert (f.repack, f.mmap, f.cache_ram_mib, f.n_batch) == (False, False, 64, 256)
    g = LlamaCppFlags.from_command(["-c", "512", "--rerank", "-lm", "mmap+mlock"], m)
    assert (g.embeddings, g.pooling, g.mmap, g.cache_ram_mib) == (True, "rank", True, 8192)


def test_unknown_architecture_reports_approximate(tmp_path: Path) -> None:
    m = inspect_model(write_tiny_llama(tmp_path / "x.gguf", arch="cortex-unknown"))
    est = estimate_llamacpp(m, LlamaCppArgs(context_length=512))
    assert est.facts["estimate"] == "approximate"
    assert any("cortex-unknown" in g for g in est.facts["guessed"])
    assert any(n.startswith("estimate: approximate") for n in est.notes)


def test_known_architecture_is_not_approximate(tmp_path: Path) -> None:
    m = inspect_model(write_tiny_llama(tmp_path / "l.gguf"))
    est = estimate_llamacpp(m, LlamaCppArgs(context_length=512, extra_args=["--cache-ram", "0"]))
    assert est.facts["estimate"] == "exact-rules" and est.get("prompt_cache") == 0
    assert est.get("runtime") > 0


def test_embeddings_mode_sizes_compute_for_every_token(tmp_path: Path) -> None:
    shape = Shape("e", n_layer=2, n_embd=256, n_head=4, n_kv_head=2, n_ff=512, n_vocab=32000)
    m = inspect_model(write_gguf(shape, tmp_path / "e.gguf"))
    gen = estimate_llamacpp(m, LlamaCppArgs(context_length=2048))
    emb = estimate_llamacpp(m, LlamaCppArgs(context_length=2048, embeddings=True))
    # logits for all 512 ubatch tokens instead of one row per slot
    assert emb.get("compute") - gen.get("compute") >= 511 * m.vocab_size * 4 * 0.9
    assert emb.get("output_growth") == (512 - 1) * (m.vocab_size + m.n_embd) * 4


def test_default_prompt_cache_is_counted_as_host_memory(tmp_path: Path) -> None:
    m = inspect_model(write_tiny_llama(tmp_path / "l.gguf"))
    est = estimate_llamacpp(m, LlamaCppArgs(context_length=512))
    assert est.get("prompt_cache") == 8192 * 1024 * 1024
    assert any("--cache-ram" in n for n in est.notes)


def _hybrid_header(path: Path, arch: str, **keys: Any) -> Path:
    """A GGUF header of a hybrid (tensors left out: inspect reads metadata and tensor infos)."""
    from gguf import GGUFWriter

    w = GGUFWriter(str(path), arch)
    w.add_block_count(8)
    w.add_context_length(4096)
    w.add_embedding_length(256)
    w.add_head_count(8)
    w.add_head_count_kv(keys.pop("head_count_kv", 2))
    w.add_ssm_conv_kernel(4)
    w.add_ssm_inner_size(512)
    w.add_ssm_state_size(128)
    w.add_ssm_group_count(2)
    for k, v in keys.items():
        if isinstance(v, list):
            w.add_array(f"{arch}.{k}", v)
        else:
            w.add_uint32(f"{arch}.{k}", v)
    w.add_token_list([b"a"] * 16)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_hybrid_recurrent_layers_follow_each_loaders_rule(tmp_path: Path) -> None:
    """qwen35/qwen3next: every 4th layer attends (full_attention_interval, default 4), the rest are
    gated-delta-net layers with no KV (src/models/qwen35.cpp); granitehybrid/jamba: head_count_kv 0
    marks the SSM layers; falcon-h1: both on every layer."""
    q = inspect_model(_hybrid_header(tmp_path / "q.gguf", "qwen35"))
    assert q.recurrent_layers == (True, True, True, False) * 2 and q.n_kv_heads == (0, 0, 0, 2) * 2
    q2 = inspect_model(_hybrid_header(tmp_path / "q2.gguf", "qwen35", full_attention_interval=2))
    assert q2.recurrent_layers == (True, False) * 4
    listed = [True] * 6 + [False] * 2
    q3 = inspect_model(
        _hybrid_header(tmp_path / "q3.gguf", "qwen3next", **{"attention.recurrent_layers": listed})
    )
    assert q3.recurrent_layers == tuple(listed) and q3.n_kv_heads == (0,) * 6 + (2, 2)
    g = inspect_model(_hybrid_header(tmp_path / "g.gguf", "granitehybrid", head_count_kv=[0, 0, 0, 2] * 2))
    assert g.recurrent_layers == (True, True, True, False) * 2
    f = inspect_model(_hybrid_header(tmp_path / "f.gguf", "falcon-h1"))
    assert f.recurrent_layers == (True,) * 8 and f.n_kv_heads == (2,) * 8
    for m in (q, q3, g, f):
        assert not m.approximate, m.approximate
    # the estimate: KV for the attention layers only, recurrent state for the others
    est = estimate_llamacpp(q, LlamaCppArgs(context_length=4096, parallel=1))
    row = 2 * (2 * 32) * 2  # K and V, each 2 KV heads × head dim 32, f16
    assert est.get("kv_full") == 2 * 4096 * row
    r, s = 3 * (512 + 2 * 2 * 128), 128 * 512  # (d_conv - 1)(d_inner + 2·n_group·d_state), d_state·d_inner
    assert est.get("recurrent") == 6 * (r + s) * 4


def test_flash_attention_forced_off_is_estimated_off_and_refuses_a_quantized_v(tmp_path: Path) -> None:
    from cortexctl.engines.llamacpp.checks import check_flags

    path = write_gguf(Shape(name="grok", arch="grok", n_layer=2, n_embd=64, n_head=2, n_kv_head=2, n_ff=128,
                            n_vocab=512, n_expert=4, n_expert_used=2), tmp_path / "grok.gguf")  # fmt: skip
    model = inspect_model(path)
    assert LlamaCppFlags.from_command(["-m", str(path), "-fa", "on"], model).flash_attn is False
    bad = check_flags(LlamaCppArgs(cache_type_v="q8_0", flash_attn="on"), model)
    assert bad is not None and "quantized V cache" in bad.detail
    assert check_flags(LlamaCppArgs(cache_type_v="f16"), model) is None


@pytest.mark.llama
def test_t5encoder_with_several_slots_is_refused_because_llama_server_aborts(
    tmp_path: Path, llama_server_bin: Path
) -> None:
    import subprocess

    from cortexctl.engines.llamacpp.checks import check_flags
    from tests.conftest import free_port
    from tests.validation.fitmatrix import base_shape

    path = write_gguf(base_shape("t5encoder", "F16"), tmp_path / "t5encoder.gguf")
    model = inspect_model(path)
    bad = check_flags(LlamaCppArgs(parallel=2, embeddings=True), model)
    assert bad is not None and "Set parallel: 1" in bad.fix, bad
    assert check_flags(LlamaCppArgs(parallel=1, embeddings=True), model) is None
    # what the check stands for: the real llama-server dies loading it with two slots
    argv = [str(llama_server_bin), "-m", str(path), "--embeddings", "-c", "512", "-np", "2"]
    argv += ["--host", "127.0.0.1", "--port", str(free_port()), "-t", "1"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "equal_seqs" in proc.stdout + proc.stderr, proc.stderr[-1500:]

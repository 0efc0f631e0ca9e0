"""Estimate vs reality: our llama.cpp breakdown against the buffers llama-server logs.

Each case writes (or takes) a GGUF, starts the real llama-server with the recipe's
flags, stops it once it has reserved its compute buffers, and compares model + KV +
compute bytes (±10 %), the KV cache (full and sliding-window separately, ±1 %: the
KV formula is exact) and, when logged, llama.cpp's own common_params_fit projection.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from cortexctl.engines.llamacpp.args import LlamaCppArgs
from cortexctl.engines.llamacpp.estimate import estimate_llamacpp
from cortexctl.validation import inspect_model
from tests.validation.ggufmodels import Shape, write_gguf
from tests.validation.llamalog import MiB, run_until_buffers

pytestmark = [pytest.mark.llama]

SHAPES = {
    "llama-mha-4l": Shape(
        "llama-mha-4l", n_layer=4, n_embd=256, n_head=8, n_kv_head=8, n_ff=768, n_vocab=4096
    ),
    "llama-gqa-12l-q8": Shape(
        "llama-gqa-12l-q8",
        n_layer=12,
        n_embd=512,
        n_head=8,
        n_kv_head=2,
        n_ff=1536,
        n_vocab=32000,
        weight_type="Q8_0",
    ),
    "gemma3-swa-12l": Shape(
        "gemma3-swa-12l",
        arch="gemma3",
        n_layer=12,
        n_embd=384,
        n_head=6,
        n_kv_head=2,
        head_dim=64,
        n_ff=1024,
        n_vocab=16384,
        sliding_window=256,
    ),
    "llama-16l-untied": Shape(
        "llama-16l-untied",
        n_layer=16,
        n_embd=768,
        n_head=12,
        n_kv_head=4,
        n_ff=1024,
        n_vocab=32000,
        weight_type="Q8_0",
        tied_output=False,
        context_length=32768,
    ),
}

CASES = [
    # (model, llama.cpp args)
    ("gemma3-270m", LlamaCppArgs(context_length=4096)),
    (
        "gemma3-270m",
        LlamaCppArgs(
            context_length=16384,
            parallel=4,
            cache_type_k="q8_0",
            cache_type_v="q8_0",
            extra_args=["--kv-unified"],
        ),
    ),
    ("llama-mha-4l", LlamaCppArgs(context_length=2048, flash_attn="off")),
    (
        "llama-gqa-12l-q8",
        LlamaCppArgs(context_length=8192, parallel=4, cache_type_k="q8_0", cache_type_v="q8_0"),
    ),
    ("gemma3-swa-12l", LlamaCppArgs(context_length=8192, parallel=2, flash_attn="on")),
    (
        "llama-16l-untied",
        LlamaCppArgs(context_length=16384, cache_type_k="q8_0", flash_attn="off", ubatch_size=256),
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_args(model: Path, a: LlamaCppArgs, port: int) -> list[str]:
    """The llama-server flags a recipe maps to (what the llamacpp engine adapter passes)."""
    args = [
        "-m",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "-lv",
        "4",
        "-c",
        str(a.context_length),
        "-np",
        str(a.parallel),
        "-ngl",
        str(a.gpu_layers),
        "-ctk",
        a.cache_type_k,
        "-ctv",
        a.cache_type_v,
        "-fa",
        a.flash_attn,
        "--chat-template",
        "chatml",
    ]
    if a.batch_size:
        args += ["-b", str(a.batch_size)]
    if a.ubatch_size:
        args += ["-ub", str(a.ubatch_size)]
    return args + list(a.extra_args)


@pytest.fixture(scope="module")
def model_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("gguf")
    return {name: write_gguf(shape, d / f"{name}.gguf") for name, shape in SHAPES.items()}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "args"), CASES, ids=[f"{n}-c{a.context_length}-np{a.parallel}" for n, a in CASES]
)
def test_estimate_matches_llama_server(
    name: str,
    args: LlamaCppArgs,
    model_paths: dict[str, Path],
    llama_server_bin: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    path = request.getfixturevalue("gemma3_270m") if name == "gemma3-270m" else model_paths[name]
    est = estimate_llamacpp(inspect_model(path), args)
    real = run_until_buffers(
        llama_server_bin, server_args(path, args, free_port()), log_path=tmp_path / "server.log"
    )

    # The KV cache formula is exact: full and sliding-window caches each within 1 %.
    assert est.get("kv_full") / MiB == pytest.approx(real.kv_full, rel=0.01, abs=0.01), real.log[-2000:]
    assert est.get("kv_swa") / MiB == pytest.approx(real.kv_swa, rel=0.01, abs=0.01)
    assert est.get("output") / MiB == pytest.approx(real.output, rel=0.01, abs=0.01)
    # Weights: exactly the tensor bytes llama.cpp maps.
    assert est.get("weights") / MiB == pytest.approx(real.model_mapped, abs=0.01)

    ours = (est.get("weights") + est.get("kv_full") + est.get("kv_swa") + est.get("compute")) / MiB
    theirs = real.model_mapped + real.kv_full + real.kv_swa + real.compute_total
    ratio = ours / theirs
    print(
        f"\n{name} -c {args.context_length} -np {args.parallel}: estimate {ours:.2f} MiB, "
        f"llama-server {theirs:.2f} MiB, ratio {ratio:.3f} (compute {est.get('compute') / MiB:.2f} "
        f"vs {real.compute_total:.2f})"
    )
    assert 0.9 <= ratio <= 1.1

    if real.fit:  # llama.cpp's own projection (common_params_fit): ours must be as close
        fit_total = real.fit_total
        # llama.cpp projects its buffers (model, context, compute), not the process or the prompt cache
        ours_total = (
            sum(est.get(p) for p in ("weights", "repack", "kv_full", "kv_swa", "output", "compute")) / MiB
        )
        print(f"  common_params_fit projected {fit_total} MiB; ours {ours_total:.1f} MiB")
        assert ours_total == pytest.approx(fit_total, rel=0.1, abs=2)


@pytest.mark.slow
def test_estimate_from_exact_command_uses_server_defaults(
    model_paths: dict[str, Path], llama_server_bin: Path, tmp_path: Path
) -> None:
    """No -c and no -np: llama-server takes the trained context and 4 unified slots; so must we."""
    path = model_paths["gemma3-swa-12l"]
    argv = [str(llama_server_bin), "-m", str(path), "--host", "127.0.0.1", "--port", str(free_port()),
            "-lv", "4", "--chat-template", "chatml"]  # fmt: skip
    est = estimate_llamacpp(inspect_model(path), LlamaCppArgs(), command=argv)
    real = run_until_buffers(llama_server_bin, argv[1:], log_path=tmp_path / "server.log")
    assert est.facts["kv_unified"] and est.facts["n_ctx"] == 4096
    assert est.get("kv_full") / MiB == pytest.approx(real.kv_full, rel=0.01)
    assert est.get("kv_swa") / MiB == pytest.approx(real.kv_swa, rel=0.01)
    ours = (est.get("weights") + est.get("kv_full") + est.get("kv_swa") + est.get("compute")) / MiB
    theirs = real.model_mapped + real.kv_full + real.kv_swa + real.compute_total
    ratio = ours / theirs
    print(f"\ncommand defaults: estimate {ours:.2f} MiB, llama-server {theirs:.2f} MiB, ratio {ratio:.3f}")
    assert 0.9 <= ours / theirs <= 1.1


@pytest.mark.slow
@pytest.mark.parametrize(
    "flags",
    [
        ["-c", "512", "-np", "1", "-fa", "on", "-b", "2048", "-ub", "512"],
        ["-c", "16384", "-np", "4", "-ctk", "q8_0", "-ctv", "q8_0", "-fa", "on", "-ub", "128"],
        ["-c", "4096", "-np", "2", "-fa", "off", "-ub", "256", "--embeddings", "--pooling", "mean"],
        ["-c", "4096", "-np", "2", "-fa", "on", "-ub", "256", "--reranking"],
    ],
    ids=["gen-c512", "gen-c16384-np4-q8", "emb-faoff", "rerank"],
)
def test_qwen35_hybrid_buffers_match_llama_server(
    flags: list[str], llama_server_bin: Path, tmp_path: Path
) -> None:
    """A Qwen3.5-like hybrid (gated delta net on 6 of 8 layers, attention on every 4th): KV only
    for the attention layers and recurrent state for the others, exactly; all buffers within 5 %.
    (Its RSS, with the graph metadata of its per-token node budget, is checked in the fit matrix.)"""
    from tests.validation.fitmatrix import base_shape

    path = write_gguf(base_shape("qwen35", "Q8_0"), tmp_path / "qwen35.gguf")
    argv = ["-m", str(path), "--host", "127.0.0.1", "--port", str(free_port()), "-lv", "4", "-t", "2", *flags]
    est = estimate_llamacpp(inspect_model(path), LlamaCppArgs(), command=argv)
    real = run_until_buffers(llama_server_bin, argv, log_path=tmp_path / "server.log")
    rs = sum(float(m) for m in re.findall(r"RS buffer size =\s+([\d.]+) MiB", real.log))
    assert est.get("kv_full") / MiB == pytest.approx(real.kv_full, rel=0.01, abs=0.01), real.log[-2000:]
    assert est.get("recurrent") / MiB == pytest.approx(rs, rel=0.01, abs=0.01)
    ours = sum(est.get(p) for p in ("weights", "repack", "kv_full", "recurrent", "output", "compute")) / MiB
    theirs = sum(real.model.values()) + real.kv_full + rs + real.output + real.compute_total
    assert ours / theirs == pytest.approx(1, abs=0.05), (ours, theirs)


@pytest.mark.slow
@pytest.mark.parametrize(
    "flags",
    [
        ["-c", "4096", "-np", "1", "-fa", "on", "-b", "2048", "-ub", "512"],
        ["-c", "16384", "-np", "2", "-fa", "on", "-ub", "512"],
        ["-c", "4096", "-np", "4", "-ctk", "q8_0", "-ctv", "q8_0", "-fa", "on", "-ub", "128"],
        ["-c", "2048", "-np", "1", "-fa", "off", "-ub", "256", "--no-repack"],
        ["-c", "4096", "-np", "2", "-fa", "off", "-ub", "256", "--embeddings", "--pooling", "mean"],
        ["-c", "4096", "-np", "1", "-fa", "on", "-ub", "512", "--reranking"],
    ],
    ids=["gen-c4096", "gen-c16384-np2", "gen-np4-q8", "faoff-norepack", "emb-faoff", "rerank"],
)
def test_lfm2_hybrid_buffers_match_llama_server(
    flags: list[str], llama_server_bin: Path, tmp_path: Path
) -> None:
    """An LFM2-like hybrid (short-convolution layers; attention on 3 of 8, sliding because the
    GGUF has a window: the loader makes exactly the non-recurrent layers slide): sliding KV for
    the attention layers and conv state for the others, exactly; all buffers within 5 %, in
    embeddings and reranking mode too (its graph has no LM head there: arch data
    `embeddings_logits` false)."""
    from tests.validation.fitmatrix import base_shape

    path = write_gguf(base_shape("lfm2", "Q4_0"), tmp_path / "lfm2.gguf")
    argv = ["-m", str(path), "--host", "127.0.0.1", "--port", str(free_port()), "-lv", "4", "-t", "2", *flags]
    model = inspect_model(path)
    assert model.swa_layers == tuple(i in (2, 5, 7) for i in range(8)) and not model.approximate
    est = estimate_llamacpp(model, LlamaCppArgs(), command=argv)
    real = run_until_buffers(llama_server_bin, argv, log_path=tmp_path / "server.log")
    rs = sum(float(m) for m in re.findall(r"RS buffer size =\s+([\d.]+) MiB", real.log))
    assert est.get("kv_full") == 0 and real.kv_full == 0, real.log[-2000:]
    assert est.get("kv_swa") / MiB == pytest.approx(real.kv_swa, rel=0.01, abs=0.01)
    assert est.get("recurrent") / MiB == pytest.approx(rs, rel=0.01, abs=0.01)
    parts = ("weights", "repack", "kv_swa", "recurrent", "output", "compute")
    ours = sum(est.get(p) for p in parts) / MiB
    theirs = sum(real.model.values()) + real.kv_swa + rs + real.output + real.compute_total
    assert ours / theirs == pytest.approx(1, abs=0.05), (ours, theirs)

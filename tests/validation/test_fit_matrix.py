"""The generated fit matrix: our llama.cpp estimate vs the real llama-server, case by case.

Cases come from tests/validation/fitmatrix.py (an all-pairs cover of the flags over every
architecture our GGUF writer knows that the generated llama.cpp data and the `gguf`
package also know). For each case the real llama-server loads a synthetic model; we
compare (1) the buffers it logs at `-lv 4` (model incl. CPU_REPACK, KV, recurrent state,
output, compute: the worst-case reserve) with ours, and (2) its RSS after a first request
that fills one ubatch with ours for that request (what is resident from the start, the
part of the compute buffer the request touches, the output rows it grows, the process
itself). Both within ±5 %. Together they pin the estimate's worst-case total, which is
the same model at the reserve's sizes.

CI runs the small profile (one case per model, the flag cover's cases spread over them).
`CORTEX_FIT_LONG=1` runs the full matrix (an all-pairs cover per architecture);
`CORTEX_FIT_MODELS=qwen2moe,llama4-nokey` runs only those models' cases;
`CORTEX_FIT_REPORT=FILE` appends one JSON line per case (`python -m
tests.validation.fitmatrix FILE` turns them into the README table).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cortexctl.engines.llamacpp.args import LlamaCppArgs
from cortexctl.engines.llamacpp.compute import F32, graph_bytes
from cortexctl.engines.llamacpp.estimate import checkpoint_bytes, estimate_llamacpp
from cortexctl.engines.llamacpp.estimate_flags import LlamaCppFlags
from cortexctl.validation import inspect_model
from cortexctl.validation.breakdown import Breakdown
from cortexctl.validation.modelinfo import ModelInfo
from tests.validation.fitmatrix import Case, cases, measured_buffers_mib, prompt_tokens, run_case
from tests.validation.ggufmodels import write_gguf
from tests.validation.llamalog import MiB

pytestmark = [pytest.mark.llama, pytest.mark.slow]

LONG = os.environ.get("CORTEX_FIT_LONG") == "1"
REPORT = os.environ.get("CORTEX_FIT_REPORT")
ONLY = {m for m in os.environ.get("CORTEX_FIT_MODELS", "").split(",") if m}
CASES = [c for c in cases(long=LONG) if not ONLY or c.model in ONLY]
TOLERANCE = 0.05

BUFFER_PARTS = ("weights", "repack", "kv_full", "kv_swa", "recurrent", "output", "compute")
RESIDENT_AT_START = ("weights", "repack", "kv_full", "kv_swa", "recurrent", "output", "runtime")  # + request
RSS_PARTS = (*BUFFER_PARTS, "output_growth", "runtime", "graph")


def ours(est: Breakdown, parts: tuple[str, ...]) -> float:
    return sum(est.get(p) for p in parts) / MiB


def rss_after_request(
    est: Breakdown, model: ModelInfo, argv: list[str], n_prompt: int
) -> tuple[float, float]:
    """Our RSS prediction after one request of n_prompt tokens (MiB): a range (low, high).

    What is resident from the start (weights read at load, KV cleared, output, the process)
    plus what this request touches: the compute buffer, the output rows it grows in
    embeddings mode, and for a completion the one context checkpoint the server takes 4
    tokens before the prompt's end (llama-server: checkpoint offsets {4 + n_ubatch, 4}),
    and the graph metadata of the architectures with a per-token node budget (`graph`).

    The compute buffer is a range. ggml-alloc reuses the reserve's allocation plan when the
    request's graph has the same nodes and every tensor fits its reserved slot
    (ggml_gallocr_needs_realloc), so the request writes the head of each slot of the
    worst-case layout: between its own graph's peak (a fresh plan) and the whole buffer.
    Measured (gemma3 Q4_0, 508-token prompt, checkpoints off): +14.7 MiB at -c 512,
    +18.1 at -c 4096, +26.1 at -c 16384 for a 29.75 MiB buffer.
    The worst case (the estimate's total) is the same model at the reserve's sizes.
    """
    f = LlamaCppFlags.from_command(argv, model)
    t = min(n_prompt, f.ubatch)
    n_kv_swa = min(n_prompt, est.facts["cells_swa"] // (1 if f.kv_unified else f.parallel))
    touched = graph_bytes(model, f, t, n_prompt, n_kv_swa, t if f.embeddings else 1)
    growth = (n_prompt - f.parallel) * (model.vocab_size + model.n_embd) * F32 if f.embeddings else 0
    checkpoint = checkpoint_bytes(model, f, max(0, n_prompt - 4)) if n_prompt > 4 else 0
    # graph metadata beyond the default node budget: two results from the start, a third
    # when the checkpoint splits the prompt into an output-less batch and its last tokens
    graph = est.facts["graph_result"] * (3 if checkpoint else 2)
    base = sum(est.get(p) for p in RESIDENT_AT_START) + max(0, growth) + checkpoint + graph
    compute = est.get("compute")
    return (base + min(touched, compute)) / MiB, (base + compute) / MiB


def rss_range_ratio(low: float, high: float, staging: float, real: float) -> float:
    """1 when `real` lies in [low - staging, high], else the ratio to the nearer bound."""
    if real > high:
        return high / real
    return max(1.0, (low - staging) / real)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fit-models")


def model_path(case: Case, model_dir: Path) -> Path:
    shape = case.shape()
    path = model_dir / f"{shape.name}.gguf"
    if not path.exists():
        write_gguf(shape, path)
    return path


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fit_case(case: Case, model_dir: Path, llama_server_bin: Path, tmp_path: Path) -> None:
    path = model_path(case, model_dir)
    model = inspect_model(path)
    argv = ["-m", str(path), *case.server_flags()]
    est = estimate_llamacpp(model, LlamaCppArgs(), command=argv)
    real = run_case(
        llama_server_bin, path, case, est.facts["n_ctx_seq"], model.vocab_size, tmp_path / "server.log"
    )
    b = real.buffers
    buf_ours, buf_real = ours(est, BUFFER_PARTS), measured_buffers_mib(real)
    n_prompt = real.n_prompt or len(prompt_tokens(case, est.facts["n_ctx_seq"], model.vocab_size))
    (rss_low, rss_ours), rss_real = rss_after_request(est, model, argv, n_prompt), real.rss_after / MiB
    row = {
        "case": case.id,
        "model": case.model,
        "buffers": [round(buf_ours, 2), round(buf_real, 2)],
        "rss": [round(rss_ours, 2), round(rss_real, 2)],
        "rss_low": round(rss_low, 2),
        "worst_case_total": round(ours(est, RSS_PARTS), 2),
        "staging": round(est.facts["staging"] / MiB, 2),
        "rss_before": round(real.rss_before / MiB, 2),
        "parts": {p: round(est.get(p) / MiB, 2) for p in RSS_PARTS},
        "logged": {
            "model": b.model,
            "kv_full": b.kv_full,
            "kv_swa": b.kv_swa,
            "rs": real.recurrent,
            "output": b.output,
            "compute": b.compute_total,
        },  # fmt: skip
    }
    print("\n" + json.dumps(row))
    if REPORT:
        with open(REPORT, "a") as fh:
            fh.write(json.dumps(row) + "\n")

    # The per-part rules are exact where llama.cpp's own arithmetic is: KV, output, repack.
    assert est.get("kv_full") / MiB == pytest.approx(b.kv_full, rel=0.01, abs=0.02), b.log[-3000:]
    assert est.get("kv_swa") / MiB == pytest.approx(b.kv_swa, rel=0.01, abs=0.02)
    assert est.get("output") / MiB == pytest.approx(b.output, rel=0.01, abs=0.02)
    assert est.get("repack") / MiB == pytest.approx(b.model.get("CPU_REPACK", 0.0), rel=0.01, abs=0.02)
    assert buf_ours / buf_real == pytest.approx(1, abs=TOLERANCE), row
    # Without mmap the loader reads each repacked tensor through a heap buffer; glibc keeps
    # none, part or all of the largest (seen all three here). The estimate counts all of it,
    # so RSS may be up to that much lower than ours, and at most 5 % off the range.
    rss_r = rss_range_ratio(rss_low, rss_ours, est.facts["staging"] / MiB, rss_real)
    assert rss_r == pytest.approx(1, abs=TOLERANCE), row

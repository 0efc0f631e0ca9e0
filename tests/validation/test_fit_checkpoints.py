"""Context checkpoints: the estimate's size of one checkpoint vs the one llama-server logs.

llama-server (server-context.cpp) copies the state a completion cannot roll back — the
sliding-window cache, recurrent state — to the heap 4 tokens before a prompt's end, and
keeps up to --ctx-checkpoints of them per slot. The estimate counts that many per slot;
here the real server takes one on a first completion and logs its size.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cortexctl.engines.llamacpp.args import LlamaCppArgs
from cortexctl.engines.llamacpp.estimate import checkpoint_bytes, estimate_llamacpp
from cortexctl.engines.llamacpp.estimate_flags import LlamaCppFlags
from cortexctl.validation import inspect_model
from tests.validation.fitmatrix import Case, run_case
from tests.validation.ggufmodels import write_gguf
from tests.validation.llamalog import MiB

pytestmark = [pytest.mark.llama, pytest.mark.slow]

_CREATED = re.compile(r"created context checkpoint \d+ of (\d+) \(.*n_tokens = (\d+), size = ([\d.]+) MiB\)")


@pytest.mark.parametrize(
    ("arch", "weights", "ctx"),
    [
        ("gemma3", "Q4_0", 16384),
        ("mamba2", "F16", 4096),
        ("granitehybrid", "Q8_0", 4096),
        ("lfm2", "Q4_0", 16384),  # hybrid with sliding attention: SWA cells + conv state
        ("falcon-h1", "Q8_0", 4096),  # mamba2 and attention in every layer: the recurrent state
        ("llama", "F16", 4096),
    ],
)
def test_checkpoint_size_matches_llama_server(
    arch: str, weights: str, ctx: int, llama_server_bin: Path, tmp_path: Path
) -> None:
    case = Case(model=arch, ctx=ctx, parallel=1, kv=("f16", "f16"), fa="on", batch=(2048, 512),
                weights=weights, mode="generate", load="mmap")  # fmt: skip
    shape = case.shape()
    path = write_gguf(shape, tmp_path / f"{shape.name}.gguf")
    model = inspect_model(path)
    argv = ["-m", str(path), *case.server_flags()]
    est = estimate_llamacpp(model, LlamaCppArgs(), command=argv)
    real = run_case(llama_server_bin, path, case, est.facts["n_ctx_seq"], model.vocab_size, tmp_path / "log")
    created = _CREATED.findall(real.buffers.log)
    f = LlamaCppFlags.from_command(argv, model)
    if arch == "llama":  # full attention only: everything can be rolled back, no checkpoint
        assert created == [] and est.get("checkpoints") == 0
        return
    assert created, real.buffers.log[-3000:]
    limit, n_tokens, size = created[-1]
    assert int(limit) == f.ctx_checkpoints == 32
    ours = checkpoint_bytes(model, f, int(n_tokens)) / MiB
    assert ours == pytest.approx(float(size), rel=0.01, abs=0.01)
    # the worst case: 32 such checkpoints (each at most n_swa cells) for the one slot
    assert est.get("checkpoints") == checkpoint_bytes(model, f) * 32


def test_ctx_checkpoints_flag_and_embeddings_turn_them_off(tmp_path: Path) -> None:
    shape = Case(model="gemma3", ctx=4096, parallel=2, kv=("f16", "f16"), fa="on", batch=(2048, 512),
                 weights="F16", mode="generate", load="mmap").shape()  # fmt: skip
    path = write_gguf(shape, tmp_path / "g.gguf")
    model = inspect_model(path)
    base = ["-m", str(path), "-c", "4096", "-np", "2"]
    est = estimate_llamacpp(model, LlamaCppArgs(), command=base)
    assert est.get("checkpoints") == est.facts["checkpoint"] * 32 * 2 > 0
    assert (
        estimate_llamacpp(model, LlamaCppArgs(), command=[*base, "--ctx-checkpoints", "3"]).get("checkpoints")
        == est.facts["checkpoint"] * 3 * 2
    )
    assert estimate_llamacpp(model, LlamaCppArgs(), command=[*base, "-ctxcp", "0"]).get("checkpoints") == 0
    assert estimate_llamacpp(model, LlamaCppArgs(), command=[*base, "--swa-full"]).get("checkpoints") == 0
    assert estimate_llamacpp(model, LlamaCppArgs(), command=[*base, "--embeddings"]).get("checkpoints") == 0
    recipe = LlamaCppArgs(context_length=4096, parallel=2, extra_args=["--ctx-checkpoints", "4"])
    assert estimate_llamacpp(model, recipe).get("checkpoints") == est.facts["checkpoint"] * 4 * 2

"""The CLI pieces: exit code 1 on FAIL, JSON for scripts, options parsed."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from cortexctl.core.settings import Settings
from cortexctl.validation import validate
from cortexctl.validation.cli import GpuProfileOpt, GpusOpt, VramOpt, emit_report
from tests.validation.ggufmodels import Shape, write_gguf
from tests.validation.test_report import recipe


def make_app(settings: Settings, model: Path) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def check(
        engine: str,
        gpus: GpusOpt = None,
        gpu_profile: GpuProfileOpt = None,
        vram: VramOpt = None,
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        r = recipe(engine, model, context_length=1024) if engine == "llamacpp" else recipe(engine, model)
        report = validate(r, settings=settings, gpus=[], select_gpus=gpus, gpu_profile=gpu_profile, vram=vram)
        emit_report(report, as_json=as_json)

    return app


def test_cli_exit_codes_and_json(tmp_path: Path) -> None:
    model = write_gguf(
        Shape("c", n_layer=2, n_embd=64, n_head=4, n_kv_head=2, n_ff=128, n_vocab=512), tmp_path / "c.gguf"
    )
    app = make_app(Settings(home=tmp_path / "home", model_roots=[tmp_path]), model)
    runner = CliRunner()
    good = runner.invoke(app, ["llamacpp", "--json"])
    assert good.exit_code == 0, good.output
    assert json.loads(good.output)["ok"] is True
    bad = runner.invoke(app, ["vllm", "--gpus", "3"])  # no GPU on this host
    assert bad.exit_code == 1
    assert "FAIL" in bad.output

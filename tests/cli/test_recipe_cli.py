"""`cortexctl recipe …` through Typer's CliRunner; apply/list/show/export against a real daemon."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from typer.testing import CliRunner

from cortex_server.app import create_app
from cortex_server.services.prepare import prepare_database
from cortexctl.cli.main import app
from cortexctl.core.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "recipes").glob("*.yaml"))
DEMO = REPO / "recipes" / "gemma3-270m-cpu.yaml"

runner = CliRunner()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_daemon(tmp_path: Path) -> Iterator[Settings]:
    """Settings of a daemon listening on 127.0.0.1; pass CORTEX_HOME/CORTEX_PORT to the CLI."""
    settings = load_settings(home=tmp_path / "home", port=_free_port())
    prepare_database(settings)
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "daemon did not start"
        time.sleep(0.02)
    try:
        yield settings
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def env_of(settings: Settings) -> dict[str, str]:
    return {"CORTEX_HOME": str(settings.home), "CORTEX_PORT": str(settings.port)}


def broken(tmp_path: Path) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(DEMO.read_text().replace("context_length: 4096", "context_lenght: 4096"))
    return path


def test_validate_shipped_recipes_ok() -> None:
    result = runner.invoke(app, ["recipe", "validate", *map(str, SHIPPED)])
    assert result.exit_code == 0, result.output
    assert result.output.count("OK ") == len(SHIPPED)


def test_validate_reports_file_line_field_and_exits_1(tmp_path: Path) -> None:
    bad = broken(tmp_path)
    result = runner.invoke(app, ["recipe", "validate", str(DEMO), str(bad)])
    assert result.exit_code == 1
    assert f"OK   {DEMO}" in result.output
    assert f"FAIL {bad}" in result.output
    assert (
        f"{bad}:20: spec.args.context_lenght: unknown field (did you mean 'context_length'?)" in result.output
    )
    assert "1 of 2 recipe(s) invalid." in result.output


def test_validate_json(tmp_path: Path) -> None:
    bad = broken(tmp_path)
    result = runner.invoke(app, ["recipe", "validate", "--json", str(DEMO), str(bad)])
    assert result.exit_code == 1
    reports = json.loads(result.stdout)
    assert reports[0] == {
        "file": str(DEMO),
        "ok": True,
        "errors": [],
        "name": "gemma3-270m-cpu",
        "engine": "llamacpp",
        "served_name": "gemma3-270m",
    }
    assert reports[1]["ok"] is False
    assert (
        reports[1]["errors"][0]["line"] == 20
        and reports[1]["errors"][0]["field"] == "spec.args.context_lenght"
    )


def test_validate_same_name_twice(tmp_path: Path) -> None:
    copy = tmp_path / "copy.yaml"
    shutil.copy(DEMO, copy)
    result = runner.invoke(app, ["recipe", "validate", str(DEMO), str(copy)])
    assert result.exit_code == 1
    assert f"{copy}:1: metadata.name: 'gemma3-270m-cpu' is also used by {DEMO}" in result.output


def test_validate_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["recipe", "validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1 and "no such recipe file" in result.output


def test_flags_lists_the_engine_flags() -> None:
    result = runner.invoke(app, ["recipe", "flags", "llamacpp", "ctx-size", "--json"])
    assert result.exit_code == 0
    assert {"names": ["-c", "--ctx-size"], "nargs": 1, "choices": None, "allowed": None} in json.loads(
        result.stdout
    )  # a typed field (args.context_length), so not on the extra_args allow-list
    templates = runner.invoke(app, ["recipe", "flags", "llamacpp", "--templates", "--json"])
    assert "gemma" in json.loads(templates.stdout)
    unknown = runner.invoke(app, ["recipe", "flags", "tgi"])
    assert unknown.exit_code == 1 and "unknown engine 'tgi'" in unknown.output


def test_apply_list_show_export_round_trip(live_daemon: Settings, tmp_path: Path) -> None:
    env = env_of(live_daemon)
    recipe = tmp_path / "gemma.yaml"
    raw = DEMO.read_bytes().replace(b"\n", b"\r\n") + b"# no final newline"
    recipe.write_bytes(raw)

    applied = runner.invoke(app, ["recipe", "apply", "-f", str(recipe)], env=env)
    assert applied.exit_code == 0, applied.output
    assert "recipe gemma3-270m-cpu created" in applied.output
    again = runner.invoke(app, ["recipe", "apply", "-f", str(recipe), "--json"], env=env)
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == [{"action": "updated", "name": "gemma3-270m-cpu", "file": str(recipe)}]

    listed = runner.invoke(app, ["recipe", "list", "--json"], env=env)
    assert [r["name"] for r in json.loads(listed.stdout)] == ["gemma3-270m-cpu"]
    assert json.loads(listed.stdout)[0]["source"] == str(recipe.resolve())
    table = runner.invoke(app, ["recipe", "list"], env=env)
    assert "gemma3-270m-cpu" in table.output and "llamacpp" in table.output

    shown = runner.invoke(app, ["recipe", "show", "gemma3-270m-cpu"], env=env)
    assert (
        shown.exit_code == 0
        and "served name  gemma3-270m" in shown.output
        and "chat_template: gemma" in shown.output
    )
    shown_json = json.loads(
        runner.invoke(app, ["recipe", "show", "gemma3-270m-cpu", "--json"], env=env).stdout
    )
    assert shown_json["recipe"]["spec"]["served_name"] == "gemma3-270m"

    out = tmp_path / "exported.yaml"
    exported = runner.invoke(app, ["recipe", "export", "gemma3-270m-cpu", "-o", str(out)], env=env)
    assert exported.exit_code == 0, exported.output
    assert out.read_bytes() == raw
    to_stdout = runner.invoke(app, ["recipe", "export", "gemma3-270m-cpu"], env=env)
    assert to_stdout.stdout_bytes == raw


def test_apply_sends_nothing_when_any_file_is_invalid(live_daemon: Settings, tmp_path: Path) -> None:
    env = env_of(live_daemon)
    result = runner.invoke(app, ["recipe", "apply", "-f", str(DEMO), "-f", str(broken(tmp_path))], env=env)
    assert result.exit_code == 1 and "spec.args.context_lenght: unknown field" in result.output
    listed = runner.invoke(app, ["recipe", "list", "--json"], env=env)
    assert json.loads(listed.stdout) == []


def test_show_unknown_recipe_and_no_daemon(live_daemon: Settings, tmp_path: Path) -> None:
    missing = runner.invoke(app, ["recipe", "show", "nope"], env=env_of(live_daemon))
    assert missing.exit_code == 1 and "No recipe named 'nope'" in missing.output
    down = runner.invoke(
        app, ["recipe", "list"], env={"CORTEX_HOME": str(live_daemon.home), "CORTEX_PORT": "9"}
    )
    assert down.exit_code == 1 and "not running" in down.output


def _tiny_recipe(tmp_path: Path) -> Path:
    ggufmodels = pytest.importorskip("tests.validation.ggufmodels")  # with the validation package
    (tmp_path / "home" / "models").mkdir(parents=True, exist_ok=True)
    model = ggufmodels.write_gguf(
        ggufmodels.Shape("c", n_layer=2, n_embd=64, n_head=4, n_kv_head=2, n_ff=128, n_vocab=512),
        tmp_path / "home" / "models" / "tiny.gguf",  # in the model store
    )
    text = DEMO.read_text().replace("gemma-3-270m-q4_k_m.gguf", str(model))
    text = "\n".join(line for line in text.splitlines() if "sha256:" not in line) + "\n"
    path = tmp_path / "tiny.yaml"
    path.write_text(text.replace("context_length: 4096", "context_length: 1024"))
    return path


def test_validate_fit_runs_the_preflight(tmp_path: Path) -> None:
    path = _tiny_recipe(tmp_path)
    env = {"CORTEX_HOME": str(tmp_path / "home"), "CORTEX_RUNTIME": "process"}
    result = runner.invoke(app, ["recipe", "validate", "--fit", "--json", str(path)], env=env)
    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.stdout)
    assert report["ok"] is True and report["preflight"]["ok"] is True
    text = runner.invoke(app, ["recipe", "validate", "--fit", str(path)], env=env)
    assert text.exit_code == 0 and f"OK   {path}" in text.output


def test_validate_fit_fails_for_a_missing_model(tmp_path: Path) -> None:
    env = {"CORTEX_HOME": str(tmp_path / "home"), "CORTEX_RUNTIME": "process"}
    vllm_recipe = str(REPO / "recipes" / "llama3.1-8b-instruct-vllm.yaml")
    result = runner.invoke(
        app, ["recipe", "validate", "--gpu-profile", "a100-80g", "--json", vllm_recipe], env=env
    )
    assert result.exit_code == 1
    (report,) = json.loads(result.stdout)
    assert report["ok"] is True  # the recipe itself is fine ...
    assert report["preflight"]["ok"] is False  # ... but its model is not on this host

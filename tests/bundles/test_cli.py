"""`cortexctl bundle …` through the CLI: JSON output, exit codes, error messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from cortexctl.cli import bundle
from cortexctl.cli.main import CortexGroup, root
from tests.bundles.helpers import write_definition


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The root app with the bundle group (as cortexctl/cli/main.py will register it)."""
    app = typer.Typer(cls=CortexGroup, pretty_exceptions_enable=False)
    app.callback()(root)
    app.add_typer(bundle.app, name="bundle")
    monkeypatch.setenv("CORTEX_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(app, ["bundle", *args], catch_exceptions=False)

    return run


def test_export_inspect_verify_import_list(cli: Any, sources: Path, tmp_path: Path) -> None:
    definition = write_definition(sources)
    out = tmp_path / "demo.tar.zst"
    res = cli("export", str(definition), "-o", str(out), "--json")
    assert res.exit_code == 0, res.output
    exported = json.loads(res.stdout)
    assert exported["items"] == 5 and exported["signed_by"] is None

    res = cli("inspect", str(out), "--json")
    assert res.exit_code == 0
    inspected = json.loads(res.stdout)
    assert inspected["bundle_id"] == exported["bundle_id"] and inspected["signature"] == "unsigned"
    assert {i["kind"] for i in inspected["manifest"]["items"]} == {
        "model",
        "recipe",
        "wheelhouse",
        "engine-binary",
    }
    assert inspected["manifest"]["distributions"] == [
        {"name": "alpha", "version": "1.0"},
        {"name": "beta", "version": "2.0"},
    ]
    text = cli("inspect", str(out)).stdout
    assert "model.gguf" in text and "distributions (signed list): alpha 1.0, beta 2.0" in text

    res = cli("verify", str(out))
    assert res.exit_code == 1 and "unsigned" in res.output and "--allow-unsigned" in res.output
    res = cli("verify", str(out), "--allow-unsigned", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["ok"] is True

    res = cli("import", str(out), "--allow-unsigned", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["status"] == "imported"
    assert (tmp_path / "cache" / "cortex" / "llama-server" / "0.3.36" / "bin" / "llama-server").exists()
    res = cli("import", str(out), "--allow-unsigned")
    assert res.exit_code == 0 and "already imported" in res.stdout

    listed = json.loads(cli("list", "--json").stdout)
    assert [e["bundle_id"] for e in listed] == [exported["bundle_id"]]
    assert "test-bundle" in cli("list").stdout


def test_keygen_trust_sign_then_verify(cli: Any, sources: Path, tmp_path: Path) -> None:
    out = tmp_path / "demo.tar"
    assert (
        cli("export", str(write_definition(sources)), "-o", str(out), "--compression", "none").exit_code == 0
    )
    res = cli("keygen", "ops", "--dir", str(tmp_path / "keys"), "--trust")
    assert res.exit_code == 0 and (tmp_path / "home" / "trusted-keys" / "ops.pub").exists()
    res = cli("sign", str(out), "--key", str(tmp_path / "keys" / "ops.key"))
    assert res.exit_code == 0, res.output
    res = cli("verify", str(out), "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["signature"] == "trusted"


def test_refusal_is_one_clear_error_and_exit_1(cli: Any, tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"\0" * 10)
    res = cli("import", str(junk), "--allow-unsigned")
    assert res.exit_code == 1
    assert "error: bundle refused" in res.output and "Traceback" not in res.output


def test_bad_definition_names_file_and_line(cli: Any, tmp_path: Path) -> None:
    definition = tmp_path / "bad.yaml"
    definition.write_text(
        "apiVersion: cortex/v1\nkind: BundleDefinition\nmetadata:\n  name: x\nspec:\n  modles: []\n"
    )
    res = cli("export", str(definition), "-o", str(tmp_path / "x.tar"))
    assert res.exit_code == 1
    assert f"{definition}:6: spec.modles" in res.output
    assert not (tmp_path / "x.tar").exists()


def test_replace_and_key_warnings_on_the_command_line(cli: Any, sources: Path, tmp_path: Path) -> None:
    out = tmp_path / "demo.tar"
    assert (
        cli("export", str(write_definition(sources)), "-o", str(out), "--compression", "none").exit_code == 0
    )
    models = tmp_path / "home" / "models"
    models.mkdir(parents=True)
    (models / "model.gguf").write_bytes(b"the operator's own model")
    res = cli("import", str(out), "--allow-unsigned")
    assert res.exit_code == 1 and "different file with this name" in res.output and "--replace" in res.output
    assert (models / "model.gguf").read_bytes() == b"the operator's own model"

    cli("keygen", "ops", "--dir", str(tmp_path / "keys"), "--trust")
    (tmp_path / "home" / "trusted-keys" / "junk.pub").write_text("junk")
    assert cli("sign", str(out), "--key", str(tmp_path / "keys" / "ops.key")).exit_code == 0
    res = cli("import", str(out), "--replace", "--json")
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    assert body["status"] == "imported" and body["signature"] == "trusted"
    assert [w for w in body["warnings"] if "junk.pub" in w]
    assert (models / "model.gguf").read_bytes() == (sources / "model.gguf").read_bytes()

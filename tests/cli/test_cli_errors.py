"""The CLI's error boundary, through the real `cortexctl` entry point in a subprocess.

Usage errors are click's (usage line, "Did you mean", exit 2); CortexErrors are one
sentence and a fix (exit 1); with --json every error is also a JSON object on stdout.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cortexctl.cli.main import app
from tests.support.cortexctl_cli import Cortexctl


@pytest.fixture
def cli(cortex_home: Path, port: int) -> Cortexctl:
    """The real entry point in a subprocess (no daemon is started by these tests)."""
    return Cortexctl(home=cortex_home, port=port, extra_env={})


def invoke(*args: str) -> tuple[int, str, str]:
    """In-process, through the same root group and error boundary (fast: no interpreter start)."""
    result = CliRunner().invoke(app, list(args), prog_name="cortexctl")
    return result.exit_code, result.stdout, result.stderr


USAGE_ERRORS = [
    (["nosuch"], "No such command 'nosuch'"),
    (["modle", "list"], "Did you mean 'model'?"),
    (["up", "--bogus"], "No such option: --bogus"),
    (["model", "start"], "Missing argument"),
    (["model", "create", "-f", "/nonexistent.yaml"], "does not exist"),
    (["keys", "update", "k"], "Give at least one option to change"),
    (["model", "logs", "m", "--tail", "0"], "--tail"),
]


@pytest.mark.parametrize(("args", "text"), USAGE_ERRORS, ids=[" ".join(a) for a, _ in USAGE_ERRORS])
def test_usage_errors_read_like_click_and_exit_2(args: list[str], text: str) -> None:
    code, stdout, stderr = invoke(*args)
    assert code == 2, stderr
    assert text in stderr
    assert "Usage: cortexctl" in stderr
    assert "internal error" not in stderr and "Traceback" not in stderr
    assert stdout == ""


def test_usage_errors_from_the_real_entry_point(cli: Cortexctl) -> None:
    proc = cli.run("modle", "list")
    assert proc.returncode == 2
    assert "Usage: cortexctl [OPTIONS] COMMAND [ARGS]..." in proc.stderr
    assert "No such command 'modle'. Did you mean 'model'?" in proc.stderr


def test_usage_errors_with_json_are_also_json_on_stdout() -> None:
    code, stdout, _ = invoke("model", "start", "--json")
    assert code == 2
    error = json.loads(stdout)["error"]
    assert error["code"] == "usage_error" and "Missing argument" in error["message"]
    assert error["fix"] == "See `cortexctl model start --help`."


def test_domain_errors_are_one_sentence_and_a_fix() -> None:
    code, stdout, stderr = invoke("model", "list")  # no daemon was ever started in this home
    assert code == 1
    assert stderr.startswith("error: No local admin token at ")
    assert "fix: Run `cortexctl up` once on this host" in stderr
    assert stdout == "" and "Traceback" not in stderr


def test_domain_errors_with_json_are_json_on_stdout(cli: Cortexctl) -> None:
    proc = cli.run("model", "list", "--json")
    assert proc.returncode == 1
    assert json.loads(proc.stdout) == {
        "error": {
            "message": f"No local admin token at {cli.home / 'admin.token'}.",
            "fix": "Run `cortexctl up` once on this host to create it.",
            "code": "daemon_error",
        }
    }
    assert "error: No local admin token" in proc.stderr  # people reading the terminal still see it


def test_help_and_version_still_exit_0() -> None:
    assert invoke("--help")[0] == 0
    assert invoke("model", "show", "--help")[0] == 0
    code, stdout, _ = invoke("--version")
    assert code == 0 and stdout.startswith("cortexctl ")


@pytest.mark.parametrize("flavour", ["typer", "installed click"])
def test_usage_errors_of_either_click_are_usage_errors(flavour: str) -> None:
    """Typer ≥ 0.17 raises its vendored click's exceptions; code (or an older Typer) may raise the
    installed click's. The boundary treats both as usage errors, never as an internal error."""
    import click

    from cortexctl.cli.main import CortexGroup

    probe = typer.Typer(cls=CortexGroup)
    error = typer.BadParameter if flavour == "typer" else click.BadParameter

    @probe.command()
    def first() -> None:
        raise error("the value is wrong")

    @probe.command()
    def second() -> None:
        pass

    result = CliRunner().invoke(probe, ["first"], prog_name="probe")
    assert result.exit_code == 2, result.output
    assert "the value is wrong" in result.stderr and "internal error" not in result.stderr

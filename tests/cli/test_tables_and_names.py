"""Tables fit 80 columns without cutting identifiers; model commands take the served name.

Against a real daemon (in-process uvicorn, SQLite) through Typer's CliRunner with
COLUMNS=80, the width of a default SSH terminal.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cortexctl.cli.main import app
from cortexctl.core.settings import Settings
from tests.cli.test_recipe_cli import DEMO, live_daemon  # noqa: F401 - fixture

MODEL = "a-rather-long-model-name-for-the-tables"
SERVED = "acme/a-long-served-model-name-v2"
KEY = "nightly-evaluation-pipeline-of-the-research-team"


def cli(settings: Settings, *args: str, columns: int = 80) -> tuple[int, str]:
    env = {"CORTEX_HOME": str(settings.home), "CORTEX_PORT": str(settings.port), "COLUMNS": str(columns)}
    result = CliRunner().invoke(app, list(args), env=env, prog_name="cortexctl")
    return result.exit_code, result.stdout + result.stderr


@pytest.fixture
def deployed(live_daemon: Settings, tmp_path: Path) -> Settings:  # noqa: F811 - the fixture
    text = DEMO.read_text().replace("name: gemma3-270m-cpu", f"name: {MODEL}")
    text = text.replace("served_name: gemma3-270m", f"served_name: {SERVED}")
    recipe = tmp_path / "long.yaml"
    recipe.write_text(text)
    code, out = cli(live_daemon, "model", "create", "-f", str(recipe))
    assert code == 0, out
    code, out = cli(live_daemon, "keys", "create", "--name", KEY, "--scope", "inference", "--models", SERVED)
    assert code == 0, out
    return live_daemon


def lines_with(out: str, text: str) -> list[str]:
    return [line for line in out.splitlines() if text in line]


TABLES = [
    (["model", "list"], [MODEL, SERVED]),
    (["keys", "list"], [KEY, "sk-cortex-"]),
    (["recipe", "list"], [MODEL, SERVED]),
]


def test_tables_fit_80_columns_with_whole_identifiers_and_wide_keeps_all(deployed: Settings) -> None:
    for command, identifiers in TABLES:
        code, out = cli(deployed, *command)
        assert code == 0, out
        assert max(len(line) for line in out.splitlines()) <= 80, out
        assert "…" not in out
        for ident in identifiers:
            assert lines_with(out, ident), f"{ident!r} is not whole on one line:\n{out}"

    _, narrow = cli(deployed, "model", "list")
    _, wide = cli(deployed, "model", "list", "--wide")
    _, roomy = cli(deployed, "model", "list", columns=200)
    header = lines_with(wide, "served name")[0]
    assert all(h in header for h in ("state", "engine", "runtime", "ports", "reason"))
    assert "reason" not in lines_with(narrow, "served name")[0]  # minor columns went first
    assert lines_with(roomy, "served name")[0].split() == header.split()  # room enough: all of them
    assert lines_with(wide, MODEL) and lines_with(wide, SERVED)


def test_model_commands_take_the_served_name(deployed: Settings) -> None:
    code, out = cli(deployed, "model", "show", SERVED, "--json")
    assert code == 0 and json.loads(out)["name"] == MODEL
    code, out = cli(deployed, "model", "stop", SERVED)
    assert code == 0 and MODEL in out
    code, out = cli(deployed, "model", "show", "nosuch-model")
    assert code == 1
    assert "No model is named or served as 'nosuch-model'." in out and "cortexctl model list" in out
    code, out = cli(deployed, "model", "start", SERVED.replace("served", "serverd"))  # a typo
    assert code == 1 and f"Did you mean '{SERVED}'?" in out

"""Shared CLI pieces: consoles, the settings in the Typer context, common options."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from cortexctl.core.settings import Settings

console = Console()
err_console = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def settings_of(ctx: typer.Context) -> Settings:
    """Settings built once per invocation (lazily, so --help works with a broken config)."""
    root = ctx.find_root()
    obj: dict[str, Any] = root.obj if isinstance(root.obj, dict) else {}
    root.obj = obj
    if "settings" not in obj:
        from cortexctl.core.settings import load_settings  # pydantic: only for commands that need it

        obj["settings"] = load_settings(**obj.get("overrides", {}))
    settings: Settings = obj["settings"]
    return settings


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))

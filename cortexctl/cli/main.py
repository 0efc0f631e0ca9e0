"""cortexctl: the root Typer app. Each command group lives in its own module."""

from __future__ import annotations

import sys
import traceback
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from cortexctl import __version__
from cortexctl.cli import bundle, daemon, doctor, keys, model, orgs, recipe, top, usage, users
from cortexctl.cli.common import err_console
from cortexctl.core.errors import CortexError


class CortexGroup(TyperGroup):
    """Turns every CortexError into one clear message on stderr and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CortexError as exc:
            if _debug_requested():
                traceback.print_exc()
            err_console.print(
                f"[bold red]error:[/] {exc.message}", highlight=False, markup=True, soft_wrap=True
            )
            if exc.fix:
                err_console.print(f"[bold]fix:[/] {exc.fix}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except (typer.Exit, click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:  # noqa: BLE001 - last line of defence: no tracebacks for users
            if _debug_requested():
                raise
            err_console.print(f"[bold red]internal error:[/] {type(exc).__name__}: {exc}", highlight=False)
            err_console.print("fix: rerun with --debug for the traceback and report it.", highlight=False)
            raise typer.Exit(1) from None


def _debug_requested() -> bool:
    return "--debug" in sys.argv


app = typer.Typer(
    cls=CortexGroup,
    help="CORTEX: run LLMs on this host and serve them through an OpenAI-compatible gateway.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cortexctl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    ctx.obj = {"overrides": {}, "debug": debug}


daemon.register(app)
doctor.register(app)
usage.register(app)
top.register(app)
app.add_typer(orgs.app, name="orgs")
app.add_typer(users.app, name="users")
app.add_typer(keys.app, name="keys")
app.add_typer(model.app, name="model")
app.add_typer(recipe.app, name="recipe")
app.add_typer(bundle.app, name="bundle")


def run() -> None:
    app()

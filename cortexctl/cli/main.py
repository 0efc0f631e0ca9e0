"""cortexctl: the root Typer app and the CLI's one error boundary.

Each command group lives in its own module. Those modules import only Typer and
rich at the top; everything heavy (settings/pydantic, httpx, SQLAlchemy, the
bundle and validation code) is imported inside the commands that use it, so
`cortexctl --help` and friends start fast (tests/cli/test_startup_imports.py).

The boundary (`CortexGroup`) sorts what a command raises into three kinds:

- usage errors (unknown command or option, missing argument, bad value): click's
  own message with its "Did you mean" suggestions, exit 2;
- `CortexError`: one sentence and a fix, exit 1;
- anything else: "internal error", exit 1 (`--debug` shows the traceback).

With `--json`, the error is also printed on stdout as
`{"error": {"message", "fix", "code"}}` so scripts never parse stderr.

Typer ≥ 0.17 vendors click (`typer._click`) and raises its own exception classes,
which are not the separately installed `click`'s; older Typer raises `click`'s.
Both are recognised: Typer's through the module of `typer.BadParameter`, the
installed `click`'s only if something imported it (only then can it have raised them).
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from cortexctl import __version__
from cortexctl.cli import bundle, daemon, doctor, keys, model, orgs, recipe, service, top, usage, users
from cortexctl.cli.common import err_console
from cortexctl.core.errors import CortexError

_ARGV_KEY = "cortexctl.argv"


def _click_exceptions() -> list[ModuleType]:
    """Typer's click exceptions module first, then the installed click's if something loaded it."""
    modules = [sys.modules[typer.BadParameter.__module__]]
    installed = sys.modules.get("click.exceptions")
    if installed is not None and installed is not modules[0]:
        modules.append(installed)
    return modules


def _click_classes(name: str) -> tuple[type[Exception], ...]:
    """The click exception class `name`: Typer's first, then the installed click's (if loaded)."""
    return tuple(getattr(m, name) for m in _click_exceptions() if hasattr(m, name))


def _passthrough_classes() -> tuple[type[BaseException], ...]:
    """Control-flow exceptions the framework handles itself (exit, abort, --help)."""
    return (typer.Exit, typer.Abort, *_click_classes("Exit"), *_click_classes("Abort"))


class CortexGroup(TyperGroup):
    """The root group: every error a command raises passes through `_fail` (see the module docstring)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta[_ARGV_KEY] = list(args)
        try:
            return super().parse_args(ctx, args)
        except _passthrough_classes():
            raise
        except Exception as exc:  # noqa: BLE001 - sorted by _fail
            _fail(exc, list(args))

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _passthrough_classes():
            raise
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:  # noqa: BLE001 - sorted by _fail
            _fail(exc, ctx.meta.get(_ARGV_KEY, sys.argv[1:]))


def _fail(exc: Exception, argv: Sequence[str]) -> NoReturn:
    """Report `exc` as a usage error (exit 2), a CortexError (exit 1) or an internal error (exit 1)."""
    as_json = "--json" in argv
    debug = "--debug" in argv
    usage_errors = _click_classes("UsageError")
    if isinstance(exc, usage_errors):
        if as_json and type(exc).__name__ != "NoArgsIsHelpError":
            _print_json_error(exc.format_message(), _usage_fix(exc), "usage_error")  # type: ignore[attr-defined]
        if isinstance(exc, usage_errors[0]):
            raise exc  # Typer prints it the way click does (usage, "Did you mean", exit 2)
        exc.show()  # type: ignore[attr-defined]  # raised by the installed click: show it ourselves
        raise typer.Exit(exc.exit_code)  # type: ignore[attr-defined]
    if isinstance(exc, _click_classes("ClickException")):
        if as_json:
            _print_json_error(exc.format_message(), None, "cli_error")  # type: ignore[attr-defined]
        if isinstance(exc, _click_classes("ClickException")[0]):
            raise exc
        exc.show()  # type: ignore[attr-defined]
        raise typer.Exit(exc.exit_code)  # type: ignore[attr-defined]
    if isinstance(exc, CortexError):
        if debug:
            traceback.print_exception(exc)
        if as_json:
            _print_json_error(exc.message, exc.fix, exc.code or type(exc).__name__)
        err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False, markup=True, soft_wrap=True)
        if exc.fix:
            err_console.print(f"[bold]fix:[/] {exc.fix}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    if debug:
        raise exc
    message = f"internal error: {type(exc).__name__}: {exc}"
    fix = "Rerun with --debug for the traceback and report it."
    if as_json:
        _print_json_error(message, fix, "internal_error")
    err_console.print(f"[bold red]internal error:[/] {type(exc).__name__}: {exc}", highlight=False)
    err_console.print(f"fix: {fix}", highlight=False)
    raise typer.Exit(1) from None


def _usage_fix(exc: Exception) -> str:
    ctx = getattr(exc, "ctx", None)
    path = getattr(ctx, "command_path", None) or "cortexctl"
    return f"See `{path} --help`."


def _print_json_error(message: str, fix: str | None, code: str) -> None:
    sys.stdout.write(json.dumps({"error": {"message": message, "fix": fix, "code": code}}, indent=2) + "\n")
    sys.stdout.flush()


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
app.add_typer(service.app, name="service")


def run() -> None:
    app(prog_name="cortexctl")  # also under `python -m cortexctl`: usage lines name the real command

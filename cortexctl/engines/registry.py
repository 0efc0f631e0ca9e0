"""The one list of engines. Recipes, validation, runtimes and the supervisor ask it for
an engine's parts instead of branching on engine names.

An engine is one package under `cortexctl/engines/<name>/` whose `ENGINE` object
implements `cortexctl.engines.base.Engine` (docs/ARCHITECTURE.md, "Adding an
engine"). `register_engine` adds one more at run time: tests use it for a toy
engine; the built-in ones load on first use (each package imports this module's
neighbours, so they cannot be imported at this module's import time).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from cortexctl.core.errors import RecipeError

if TYPE_CHECKING:
    from cortexctl.engines.base import Engine
    from cortexctl.recipes.schema import EngineArgs

BUILTIN_PACKAGES = ("cortexctl.engines.llamacpp", "cortexctl.engines.vllm", "cortexctl.engines.remote")

_engines: dict[str, Engine] = {}


def _load_builtins() -> dict[str, Engine]:
    if not _engines:
        for package in BUILTIN_PACKAGES:
            engine: Engine = importlib.import_module(package).ENGINE
            _engines.setdefault(engine.name, engine)
    return _engines


def engine_names() -> tuple[str, ...]:
    return tuple(_load_builtins())


def get_engine(name: str) -> Engine:
    """The engine called `name`; RecipeError (listing the known ones) otherwise."""
    engines = _load_builtins()
    try:
        return engines[name]
    except KeyError:
        raise RecipeError(
            f"unknown engine {name!r}",
            fix=f"Use one of: {', '.join(engines)}.",
            param="spec.engine",
        ) from None


def args_model(name: object) -> type[EngineArgs] | None:
    """The `spec.args` model of a known engine; None for anything else."""
    engines = _load_builtins()
    return engines[name].args_model if isinstance(name, str) and name in engines else None


def register_engine(engine: Engine) -> None:
    """Add an engine (a package outside cortexctl/engines, e.g. a test's toy engine)."""
    engines = _load_builtins()
    if engine.name in engines and engines[engine.name] is not engine:
        raise ValueError(f"an engine called {engine.name!r} is already registered")
    engines[engine.name] = engine


def unregister_engine(name: str) -> None:
    """Remove an engine `register_engine` added (built-in ones stay)."""
    if name not in {importlib.import_module(p).ENGINE.name for p in BUILTIN_PACKAGES}:
        _load_builtins().pop(name, None)

"""Checks across fields of a schema-valid recipe that need no hardware.

Each returns `(location, problem)` pairs; the loader turns them into
`file:line: field: problem`. Whether a model fits the GPUs is the validation
package's job, not this one.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from pathlib import Path

from cortexctl.core.yamldoc import Loc
from cortexctl.engines.registry import get_engine
from cortexctl.recipes.flags import accepted_flags, engine_version
from cortexctl.recipes.paths import confine, outside_message
from cortexctl.recipes.schema import Recipe, RecipeSpec

Finding = tuple[Loc, str]

ARGS: Loc = ("spec", "args")
MEMORY_PATTERN = re.compile(r"^\s*\d+(\.\d+)?\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)


def check_recipe(recipe: Recipe, *, roots: Sequence[Path] | None) -> list[Finding]:
    """Every cross-field problem of `recipe`.

    `roots` (the model store first, see paths.py) confine every file the recipe names;
    None skips the file checks (re-reading a stored recipe: launch checks them again).
    """
    spec = recipe.spec
    out: list[Finding] = []
    out += _check_gpus(spec)
    out += _check_typed_flags(spec)
    if roots is not None and confine(spec.model.path, roots) is None:
        out.append((("spec", "model", "path"), outside_message(spec.model.path, roots)))
    out += get_engine(spec.engine).check_recipe(spec, spec.engine_args(), roots)
    if spec.resources.memory is not None and not MEMORY_PATTERN.match(spec.resources.memory):
        out.append(
            (
                ("spec", "resources", "memory"),
                f"{spec.resources.memory!r} is not a size; write e.g. 8GiB or 512m",
            )
        )
    return out


def _check_gpus(spec: RecipeSpec) -> list[Finding]:
    out: list[Finding] = []
    engine = get_engine(spec.engine)
    if engine.needs_gpu and spec.gpus == "none":
        out.append(
            (
                ("spec", "gpus"),
                f"{engine.display_name} needs a GPU: set gpus to 'all' or a list of indices "
                "(or use engine llamacpp on CPU)",
            )
        )
    if isinstance(spec.gpus, list):
        if not spec.gpus:
            out.append((("spec", "gpus"), "an empty list selects no GPU; write gpus: none for CPU"))
        dupes = sorted({g for g in spec.gpus if spec.gpus.count(g) > 1})
        if dupes:
            out.append((("spec", "gpus"), f"GPU index listed twice: {', '.join(map(str, dupes))}"))
    return out


def _check_typed_flags(spec: RecipeSpec) -> list[Finding]:
    """Typed fields against the pinned engine: the flag must exist, its value be a choice."""
    args = spec.engine_args()
    set_fields = args.model_fields_set
    accepted = accepted_flags(spec.engine)
    version = f"{spec.engine} {engine_version(spec.engine)}"
    out: list[Finding] = []
    owners: dict[str, list[str]] = {}
    for flag, field in get_engine(spec.engine).typed_flags.items():
        owners.setdefault(field, []).append(flag)
    for field, flags in owners.items():
        if field not in set_fields:
            continue
        value = getattr(args, field)
        known = [f for f in flags if f in accepted]
        if not known:
            out.append((ARGS + (field,), f"{version} has no {' or '.join(flags)} flag; remove args.{field}"))
            continue
        info = accepted[known[0]]
        if (
            len(known) == 1
            and isinstance(value, str)
            and info.choices is not None
            and value not in info.choices
        ):
            close = difflib.get_close_matches(value, info.choices, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            out.append(
                (
                    ARGS + (field,),
                    f"{value!r} is not accepted by {version}{hint}; choose one of: {', '.join(info.choices)}",
                )
            )
    return out


def check_max_tokens(spec: RecipeSpec, limit: int, what: str) -> list[Finding]:
    max_tokens = spec.request_defaults.max_tokens
    if max_tokens is not None and max_tokens >= limit:
        return [
            (
                ("spec", "request_defaults", "max_tokens"),
                f"{max_tokens} leaves no room for the prompt: {what} is {limit}",
            )
        ]
    return []


def check_file(loc: Loc, value: str, roots: Sequence[Path] | None) -> list[Finding]:
    """A file the engine will read: inside the store (no oracle when not), then present."""
    if roots is None:
        return []
    path = confine(value, roots)
    if path is None:
        return [(loc, outside_message(value, roots))]
    if not path.is_file():
        return [(loc, f"file not found in the model store: {value} (relative paths start in {roots[0]})")]
    return []

"""Load recipes: YAML → schema → engine flags → cross-field checks, every problem at once.

Every problem is reported as `file:line: field.path: problem` in one RecipeError,
so an operator fixes a recipe in one pass. The CLI (`cortexctl recipe validate`,
`model create -f`) and the daemon's admin API share this code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from cortexctl.core.errors import RecipeError
from cortexctl.core.yamldoc import (
    DEFAULT_LIMITS,
    Loc,
    Problem,
    YamlDoc,
    YamlSyntaxError,
    parse_yaml,
    validation_problems,
)
from cortexctl.engines.registry import args_model
from cortexctl.recipes.extra_args import check_extra_args
from cortexctl.recipes.schema import NAME_PATTERN, Recipe
from cortexctl.recipes.semantic import check_recipe

API_VERSION = "cortex/v1"
KIND = "Recipe"
FIX = "Fix the fields named above; `cortexctl recipe validate FILE` checks a recipe without the daemon."

# pydantic's pattern messages quote the regex; say what it means instead.
_REWRITE = {
    f"String should match pattern '{NAME_PATTERN}'": (
        "must be 1-64 lowercase letters, digits, '.', '_' or '-', starting and ending with a letter or digit"
    ),
    "String should match pattern '^[0-9a-f]{64}$'": "must be 64 lowercase hex digits (what sha256sum prints)",
    "String should match pattern '^[A-Za-z0-9][A-Za-z0-9._:/-]*$'": (
        "must start with a letter or digit and hold only letters, digits, '.', '_', ':', '/' or '-'"
    ),
}


# Fields typed as unions, where pydantic's message names each member's complaint.
_UNION_MESSAGES = {
    "spec.gpus": "must be 'all', 'none' or a list of GPU indices such as [0, 1]",
    "spec.args.gpu_layers": "must be a number of layers or 'all'",
}


@dataclass
class RecipeReport:
    """What checking one recipe found: the recipe when it is valid, else the problems."""

    source: str
    recipe: Recipe | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.recipe is not None and not self.problems

    def error(self) -> RecipeError:
        return recipe_error(self.problems)


def recipe_error(problems: Sequence[Problem]) -> RecipeError:
    return RecipeError(
        "\n".join(str(p) for p in problems), fix=FIX, details={"problems": [p.as_dict() for p in problems]}
    )


def parse_recipe(text: str, *, source: str, roots: Sequence[Path] | None = None) -> Recipe:
    """The recipe in `text`, or RecipeError listing every problem.

    `roots` (`paths.store_roots(settings)`) confine the files the recipe names; every
    path that accepts a recipe passes them. None skips the file checks: for re-reading
    recipes already stored (the launch checks their files again).
    """
    report = check_recipe_text(text, source=source, roots=roots)
    if not report.ok:
        raise report.error()
    assert report.recipe is not None
    return report.recipe


def load_recipe_file(path: Path | str, *, roots: Sequence[Path] | None = None) -> Recipe:
    return parse_recipe(read_recipe_text(path), source=str(path), roots=roots)


def load_recipe_files(paths: Iterable[Path | str], *, roots: Sequence[Path] | None = None) -> list[Recipe]:
    """All recipes, or one RecipeError with the problems of every file (names must be unique)."""
    reports = [check_recipe_file(p, roots=roots) for p in paths]
    problems = [p for r in reports for p in r.problems] + duplicate_problems(reports)
    if problems:
        raise recipe_error(problems)
    return [r.recipe for r in reports if r.recipe is not None]


def read_recipe_text(path: Path | str) -> str:
    """The file's text exactly (no newline translation), so export can give back the same bytes."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            raw = fh.read(DEFAULT_LIMITS.max_bytes + 1)
        if len(raw) > DEFAULT_LIMITS.max_bytes:
            raise RecipeError(
                f"{p}: larger than the {DEFAULT_LIMITS.max_bytes} bytes a recipe may have.",
                fix="A recipe is a few KiB of YAML: check that this is the right file.",
            )
        return raw.decode("utf-8")
    except FileNotFoundError:
        raise RecipeError(f"{p}: no such recipe file.", fix="Check the path.") from None
    except IsADirectoryError:
        raise RecipeError(f"{p} is a directory.", fix="Name the recipe's .yaml file.") from None
    except UnicodeDecodeError as exc:
        raise RecipeError(
            f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start}).", fix="Save it as UTF-8."
        ) from None


def check_recipe_file(path: Path | str, *, roots: Sequence[Path] | None = None) -> RecipeReport:
    try:
        text = read_recipe_text(path)
    except RecipeError as exc:
        return RecipeReport(source=str(path), problems=[Problem(str(path), 1, "(file)", exc.message)])
    return check_recipe_text(text, source=str(path), roots=roots)


def check_recipe_text(text: str, *, source: str, roots: Sequence[Path] | None = None) -> RecipeReport:
    """Schema, flag and cross-field checks of one recipe; never raises for a bad recipe."""
    report = RecipeReport(source=source)
    try:
        doc = parse_yaml(text, source=source)
    except YamlSyntaxError as exc:
        report.problems.append(Problem(source, exc.line, "(document)", exc.problem))
        return report
    if not isinstance(doc.data, dict):
        got = "an empty file" if doc.data is None else f"a {type(doc.data).__name__}"
        report.problems.append(
            doc.problem((), f"a recipe is a mapping with apiVersion, kind, metadata and spec; this is {got}")
        )
        return report
    problems = doc.duplicate_problems() + _header_problems(doc) + _schema_problems(doc)
    problems += _flag_problems(doc)
    recipe = None
    if not problems:
        recipe = Recipe.model_validate(doc.data)
        problems += [doc.problem(loc, msg) for loc, msg in check_recipe(recipe, roots=roots)]
    report.problems = sorted(problems, key=lambda p: p.line)
    report.recipe = recipe if not problems else None
    return report


def duplicate_problems(reports: Sequence[RecipeReport]) -> list[Problem]:
    """Recipes checked together must have distinct names and served names."""
    out: list[Problem] = []
    seen: dict[tuple[str, str], str] = {}
    for r in reports:
        if r.recipe is None:
            continue
        for what, value in (
            ("metadata.name", r.recipe.name),
            ("spec.served_name", r.recipe.spec.served_name),
        ):
            first = seen.setdefault((what, value), r.source)
            if first != r.source:
                out.append(
                    Problem(
                        r.source, 1, what, f"{value!r} is also used by {first}; each recipe needs its own"
                    )
                )
    return out


def _header_problems(doc: YamlDoc) -> list[Problem]:
    out = []
    for key, expected in (("apiVersion", API_VERSION), ("kind", KIND)):
        if key not in doc.data:
            out.append(doc.problem((key,), f"missing; a recipe starts with `{key}: {expected}`"))
        elif doc.data[key] != expected:
            out.append(doc.problem((key,), f"expected {expected!r}, got {doc.data[key]!r}"))
    return out


def _schema_problems(doc: YamlDoc) -> list[Problem]:
    try:
        Recipe.model_validate(doc.data)
    except ValidationError as exc:
        problems = validation_problems(exc, doc, accepted=_accepted_fields(doc.data), rewrite=_REWRITE)
    else:
        return []
    engine = _engine_of(doc.data)
    keep = []
    for p in problems:
        if p.field in _UNION_MESSAGES and " or Input should" in p.problem:
            p = Problem(p.source, p.line, p.field, _UNION_MESSAGES[p.field])
        if p.field in ("apiVersion", "kind"):
            continue  # _header_problems says it better
        if engine is None and p.field.startswith("spec.args"):
            continue  # args are typed by engine: nothing to say until the engine is right
        keep.append(p)
    return keep


def _flag_problems(doc: YamlDoc) -> list[Problem]:
    engine = _engine_of(doc.data)
    args = doc.data.get("spec", {}).get("args") if isinstance(doc.data.get("spec"), dict) else None
    extra = args.get("extra_args") if isinstance(args, dict) else None
    if engine is None or not isinstance(extra, list) or not all(isinstance(a, str) for a in extra):
        return []  # the schema check reports a wrong engine or wrong extra_args types
    loc: Loc = ("spec", "args", "extra_args")
    return [doc.problem(loc + (p.index,), p.problem) for p in check_extra_args(engine, extra)]


def _engine_of(data: dict[str, Any]) -> str | None:
    spec = data.get("spec")
    engine = spec.get("engine") if isinstance(spec, dict) else None
    return engine if isinstance(engine, str) and args_model(engine) is not None else None


def _accepted_fields(data: dict[str, Any]) -> dict[Loc, list[str]]:
    """Field names each mapping of the document accepts (for unknown-field errors)."""
    out: dict[Loc, list[str]] = {}
    _walk_fields(Recipe, (), out)
    model = args_model(_engine_of(data))
    if model is not None:
        _walk_fields(model, ("spec", "args"), out)
    return out


def _walk_fields(model: type[BaseModel], loc: Loc, out: dict[Loc, list[str]]) -> None:
    out[loc] = [f.alias or name for name, f in model.model_fields.items()]
    for name, f in model.model_fields.items():
        ann = f.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):  # spec.args (a union) is added by engine
            _walk_fields(ann, loc + (f.alias or name,), out)

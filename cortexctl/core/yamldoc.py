"""YAML documents that remember where each value came from, parsed within fixed limits.

Recipes and `cortex.yaml` report errors as `file:line: field: problem`; pydantic
only knows the field path, so we keep a map from path to line while parsing.

Every YAML CORTEX reads (recipes from the admin API and the CLI, bundle
definitions, `cortex.yaml`) goes through `parse_yaml`, which is hostile-input
safe: the text is capped in size before parsing, aliases are refused (a 200-byte
"billion laughs" document otherwise expands into gigabytes once anything walks
it), and nesting depth and node count are capped while composing, so parsing
costs bounded memory and time. The document is composed once and constructed
from that node tree (no second parse).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One `file:line: field.path: problem` finding."""

    source: str
    line: int
    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.field}: {self.problem}"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.source, "line": self.line, "field": self.field, "problem": self.problem}


def dotted(loc: Sequence[str | int]) -> str:
    """`("spec", "args", "extra_args", 2)` → `spec.args.extra_args[2]`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


@dataclass(frozen=True)
class YamlDoc:
    source: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)
    # (path of the repeated key, its line, line of the first occurrence): PyYAML keeps
    # the last value silently, which hides typos like two `args:` blocks.
    duplicates: list[tuple[Loc, int, int]] = field(default_factory=list)

    def problem(self, loc: Sequence[str | int], problem: str) -> Problem:
        return Problem(self.source, self.line_of(loc), dotted(loc), problem)

    def duplicate_problems(self) -> list[Problem]:
        return [
            Problem(self.source, line, dotted(loc), f"duplicate key (first given on line {first}); keep one")
            for loc, line, first in self.duplicates
        ]

    def line_of(self, loc: Sequence[str | int]) -> int:
        """Line of the deepest known ancestor of `loc` (1-based)."""
        path = tuple(loc)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)


class YamlSyntaxError(ValueError):
    def __init__(self, source: str, line: int, problem: str) -> None:
        super().__init__(f"{source}:{line}: {problem}")
        self.source, self.line, self.problem = source, line, problem


@dataclass(frozen=True)
class YamlLimits:
    """What one document may cost. Recipes and configs are a few KiB, 5-6 levels deep."""

    max_bytes: int = 256 * 1024
    max_depth: int = 32
    max_nodes: int = 20_000


DEFAULT_LIMITS = YamlLimits()


class _LimitedLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases and counts depth and nodes while composing."""

    limits: YamlLimits = DEFAULT_LIMITS

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
        if isinstance(event, yaml.AliasEvent):
            raise yaml.MarkedYAMLError(
                problem=f"aliases (*{event.anchor}) are not accepted; write the value out in full",
                problem_mark=event.start_mark,  # type: ignore[arg-type]  # stubs: the C Mark is a Mark too
            )
        self._nodes += 1
        if self._nodes > self.limits.max_nodes:
            raise yaml.MarkedYAMLError(
                problem=f"more than {self.limits.max_nodes} values; this is not a recipe or config",
                problem_mark=event.start_mark,
            )
        self._depth += 1
        try:
            if self._depth > self.limits.max_depth:
                raise yaml.MarkedYAMLError(
                    problem=f"nested deeper than {self.limits.max_depth} levels",
                    problem_mark=event.start_mark,
                )
            # PyYAML passes mapping keys as `index` too; the stub says int
            return super().compose_node(parent, index)  # type: ignore[arg-type]
        finally:
            self._depth -= 1


def parse_yaml(text: str, *, source: str, limits: YamlLimits = DEFAULT_LIMITS) -> YamlDoc:
    size = len(text.encode("utf-8", errors="surrogatepass")) if len(text) * 4 > limits.max_bytes else 0
    if size > limits.max_bytes:
        raise YamlSyntaxError(
            source, 1, f"{size} bytes is more than the {limits.max_bytes} a YAML document may have"
        )
    try:
        loader = _LimitedLoader(text)  # its reader refuses control characters (NUL, …) right here
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(source, 1, f"invalid YAML: {exc}") from None
    loader.limits = limits
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise YamlSyntaxError(source, line, f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(source, 1, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise YamlSyntaxError(source, 1, "invalid YAML: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise YamlSyntaxError(source, 1, f"invalid YAML value: {exc}") from None
    finally:
        loader.dispose()
    lines: dict[Loc, int] = {}
    duplicates: list[tuple[Loc, int, int]] = []
    if node is not None:
        _index(node, (), lines, duplicates)
    return YamlDoc(source=source, data=data, lines=lines, duplicates=duplicates)


def read_text_limited(path: Path, *, max_bytes: int = DEFAULT_LIMITS.max_bytes) -> str:
    """A file's UTF-8 text, refusing (before reading it all) one larger than `max_bytes`."""
    with path.open("rb") as fh:
        raw = fh.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise YamlSyntaxError(str(path), 1, f"larger than the {max_bytes} bytes a YAML document may have")
    return raw.decode("utf-8")


def load_yaml_file(path: Path, *, limits: YamlLimits = DEFAULT_LIMITS) -> YamlDoc:
    return parse_yaml(read_text_limited(path, max_bytes=limits.max_bytes), source=str(path), limits=limits)


def _index(node: yaml.Node, path: Loc, lines: dict[Loc, int], duplicates: list[tuple[Loc, int, int]]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                duplicates.append((path + (key,), line, seen[key]))
            seen.setdefault(key, line)
            lines[path + (key,)] = line
            _index(value_node, path + (key,), lines, duplicates)  # setdefault keeps the key's line
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, path + (i,), lines, duplicates)


def validation_problems(
    exc: ValidationError,
    doc: YamlDoc,
    *,
    prefix: Loc = (),
    accepted: Mapping[Loc, Iterable[str]] | None = None,
    data: Any = None,
    rewrite: dict[str, str] | None = None,
) -> list[Problem]:
    """One Problem per distinct field pydantic complained about.

    `prefix` is prepended to each error location (when the model was validated from a
    sub-tree of the document; `data` is that sub-tree, default the whole document).
    Union members add tags such as `literal['all','none']` to locations; those are
    dropped and the members' messages merged into one line per field. For
    `extra_forbidden` errors the accepted field names of the parent are listed when
    `accepted` knows them. `rewrite` maps a pydantic message to a clearer one.
    """
    merged: dict[Loc, list[str]] = {}
    root = doc.data if data is None else data
    for err in exc.errors():
        loc = prefix + _real_loc(tuple(err["loc"]), root, missing=err["type"] == "missing")
        msg = (rewrite or {}).get(err["msg"], err["msg"])
        if err["type"] == "extra_forbidden":
            names = sorted((accepted or {}).get(loc[:-1], ()))
            if names:
                close = difflib.get_close_matches(str(loc[-1]), names, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                msg = f"unknown field{hint}; accepted: {', '.join(names)}"
            else:
                msg = "unknown field"
        msgs = merged.setdefault(loc, [])
        if msg not in msgs:
            msgs.append(msg)
    out = []
    for loc, msgs in merged.items():
        if len(msgs) > 1:  # a union: "should be None" only adds noise next to the real reason
            msgs = [m for m in msgs if m != "Input should be None"] or msgs
        out.append(doc.problem(loc, " or ".join(msgs)))
    return out


def _real_loc(loc: Loc, data: Any, *, missing: bool) -> Loc:
    """`loc` without the parts that do not index into `data` (pydantic's union tags)."""
    out: list[str | int] = []
    cur = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(cur, dict) and part in cur:
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            out.append(part)
            cur = cur[part]
        elif last and missing:
            out.append(part)  # a required field that is absent
        # else: a union tag or validator name, not a place in the document
    return tuple(out)


def describe_validation_error(
    exc: ValidationError,
    doc: YamlDoc,
    *,
    prefix: Loc = (),
    accepted: Mapping[Loc, Iterable[str]] | None = None,
) -> list[str]:
    """One `file:line: field: problem` line per field pydantic complained about."""
    return [str(p) for p in validation_problems(exc, doc, prefix=prefix, accepted=accepted)]

"""YAML documents that remember where each value came from.

Recipes and `cortex.yaml` report errors as `file:line: field: problem`; pydantic
only knows the field path, so we keep a map from path to line while parsing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class YamlDoc:
    source: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

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


def parse_yaml(text: str, *, source: str) -> YamlDoc:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise YamlSyntaxError(source, line, f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(source, 1, f"invalid YAML: {exc}") from None
    lines: dict[Loc, int] = {}
    if node is not None:
        _index(node, (), lines)
    return YamlDoc(source=source, data=data, lines=lines)


def load_yaml_file(path: Path) -> YamlDoc:
    return parse_yaml(path.read_text(encoding="utf-8"), source=str(path))


def _index(node: yaml.Node, path: Loc, lines: dict[Loc, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[path + (key,)] = key_node.start_mark.line + 1
            _index(value_node, path + (key,), lines)  # setdefault keeps the key's line
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, path + (i,), lines)


def describe_validation_error(
    exc: ValidationError, doc: YamlDoc, *, prefix: Loc = (), accepted: dict[Loc, Iterable[str]] | None = None
) -> list[str]:
    """One `file:line: field: problem` line per pydantic error.

    `prefix` is prepended to each error location to find its line (when the model
    was validated from a sub-tree of the document). For `extra_forbidden` errors
    the accepted field names of the parent are listed when `accepted` knows them.
    """
    out = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        full = prefix + loc
        dotted = ".".join(str(p) for p in full) or "(document)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden" and accepted is not None:
            names = accepted.get(full[:-1])
            if names:
                msg = f"unknown field; accepted: {', '.join(sorted(names))}"
        out.append(f"{doc.source}:{doc.line_of(full)}: {dotted}: {msg}")
    return out

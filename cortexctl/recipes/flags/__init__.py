"""The flags each pinned engine version accepts, as data generated from the engine itself.

Each engine's package holds its file (`cortexctl/engines/<name>/data/<name>-<version>.json`,
the version from its pin.py): llama.cpp's comes from parsing the real `llama-server --help`
(scripts/gen_llamacpp_flags.py), vLLM's from its own argument parser for `vllm serve`
(scripts/gen_vllm_flags.py). Each file's `generated` header records how. Regenerate them
when a pinned version changes. This module only reads them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from cortexctl.engines.registry import get_engine

Nargs = Literal[0, 1, 2, "?", "+", "*"]


@dataclass(frozen=True)
class FlagInfo:
    """One option; `names` holds every spelling (short, long, negated) of it."""

    names: tuple[str, ...]
    nargs: Nargs  # 0: a switch; 1 or 2: that many values; "?", "+", "*": argparse's meaning
    value_hint: str | None = None
    choices: tuple[str, ...] | None = None
    help: str = ""
    dict_keys: bool = False  # vLLM: a JSON-object option that also takes `--opt.key value`
    env: str | None = None  # the environment variable the engine also reads it from
    allowed: str | None = None  # its category when a recipe's extra_args may set it (allowlist.py)

    @property
    def takes_value(self) -> bool:
        return self.nargs != 0

    @property
    def canonical(self) -> str:
        """The first long spelling (what error messages and docs show)."""
        return next((n for n in self.names if n.startswith("--")), self.names[0])


def flags_file(engine: str) -> Path:
    spec = get_engine(engine)
    return spec.flags_dir / f"{engine}-{spec.version}.json"


def engine_version(engine: str) -> str:
    """The pinned version of a registered engine; RecipeError for an unknown one."""
    return get_engine(engine).version


@cache
def flag_data(engine: str) -> dict[str, Any]:
    """The whole data file: `generated` header, `options`, engine-specific extras."""
    path = flags_file(engine)
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@cache
def accepted_flags(engine: str) -> dict[str, FlagInfo]:
    """Every accepted spelling → its FlagInfo, for the pinned version of `engine`."""
    out: dict[str, FlagInfo] = {}
    for opt in flag_data(engine)["options"]:
        choices = opt.get("choices")
        info = FlagInfo(
            names=tuple(opt["names"]),
            nargs=opt["nargs"],
            value_hint=opt.get("value_hint"),
            choices=tuple(str(c) for c in choices) if choices is not None else None,
            help=opt.get("help", ""),
            dict_keys=bool(opt.get("dict_keys", False)),
            env=opt.get("env"),
            allowed=opt.get("allowed"),
        )
        for name in info.names:
            out[name] = info
    return out


def normalize_flag(engine: str, flag: str) -> str:
    """Both engines read `--foo_bar` as `--foo-bar` (long options only)."""
    return "--" + flag[2:].replace("_", "-") if flag.startswith("--") else flag


def equals_syntax(engine: str) -> bool:
    """argparse (vLLM) takes `--flag=value`; llama.cpp's parser does not."""
    return bool(flag_data(engine).get("equals_syntax", False))

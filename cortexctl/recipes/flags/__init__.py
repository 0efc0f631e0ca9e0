"""The flags each pinned engine version accepts, as data generated from the engine itself.

`llamacpp-<version>.json` comes from parsing the real `llama-server --help`
(scripts/gen_llamacpp_flags.py); `vllm-<version>.json` from vLLM's own argument
parser for `vllm serve` (scripts/gen_vllm_flags.py). Each file's `generated`
header records how. Regenerate them when a pinned version changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from cortexctl.core.errors import RecipeError

LLAMACPP_VERSION = "0.3.36"  # llama-cpp-python release whose vendored llama.cpp we build
VLLM_VERSION = "0.33.0"  # vLLM release: `vllm serve` flags and the default vllm/vllm-openai image tag

# The one vLLM pin: the flags data above is generated from this release, VllmEngine runs this
# image, bundles/gpu-vllm.yaml ships it (tests/engines/test_image_pins.py holds them together).
VLLM_IMAGE = f"vllm/vllm-openai:v{VLLM_VERSION}"

ENGINE_VERSIONS: dict[str, str] = {"llamacpp": LLAMACPP_VERSION, "vllm": VLLM_VERSION}
ENGINE_PROGRAMS: dict[str, str] = {"llamacpp": "llama-server", "vllm": "vllm serve"}

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
    version = engine_version(engine)
    return Path(__file__).with_name(f"{engine}-{version}.json")


def engine_version(engine: str) -> str:
    try:
        return ENGINE_VERSIONS[engine]
    except KeyError:
        raise RecipeError(
            f"Unknown engine {engine!r}.", fix=f"Use one of: {', '.join(sorted(ENGINE_VERSIONS))}."
        ) from None


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

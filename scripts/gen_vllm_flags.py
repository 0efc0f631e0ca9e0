#!/usr/bin/env python3
"""Generate cortexctl/engines/vllm/data/vllm-<version>.json from vLLM's own `vllm serve` parser.

Run it with a Python that has vLLM importable, NEVER the project venv. On a host
without a GPU (how the committed file was made):

    python3 -m venv /tmp/vllmenv
    /tmp/vllmenv/bin/pip install /path/to/torch-<cpu>.whl        # torch CPU build
    /tmp/vllmenv/bin/pip install --no-deps vllm==0.33.0
    /tmp/vllmenv/bin/pip install transformers fastapi ...        # what importing vllm's CLI needs
    VLLM_TARGET_DEVICE=cpu /tmp/vllmenv/bin/python scripts/gen_vllm_flags.py \
        -o cortexctl/engines/vllm/data/vllm-0.33.0.json

VLLM_TARGET_DEVICE=cpu only lets vLLM pick a platform during import; the option
set of `vllm serve` does not depend on it (some defaults do; we record none).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

ENGINE = "vllm"
ALLOW_LIST_NOTE = (
    'options a recipe\'s extra_args may set carry "allowed": <category>, from '
    "cortexctl/engines/vllm/flags.py; every other option is refused in recipes"
)


def build_serve_parser() -> argparse.ArgumentParser:
    from vllm.entrypoints.cli.serve import ServeSubcommand
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    # Exactly what `vllm serve` builds: the top parser, a subparsers action, and
    # ServeSubcommand.subparser_init → make_arg_parser (frontend + AsyncEngineArgs).
    top = FlexibleArgumentParser(prog="vllm")
    sub = top.add_subparsers(dest="subparser")
    parser: argparse.ArgumentParser = ServeSubcommand().subparser_init(sub)
    return parser


def nargs_of(action: argparse.Action) -> int | str:
    if action.nargs is None:
        return 1
    if action.nargs == 0 or isinstance(action.nargs, int):
        return int(action.nargs)
    return str(action.nargs)  # "?", "*", "+"


def choices_of(action: argparse.Action) -> list[str] | None:
    if action.choices is not None:
        return [str(c) for c in action.choices]
    # vLLM lists the values of Literal-typed fields in the metavar and checks them
    # when it builds its config: for us they are the accepted values all the same.
    if isinstance(action.metavar, list | tuple):
        return [str(c) for c in action.metavar]
    return None


def dict_valued(action: argparse.Action) -> bool:
    """Options whose value is a JSON object: vLLM also takes `--opt.key value` for them."""
    name = getattr(action.type, "__qualname__", "") or ""
    return any(k in name for k in ("parse_dataclass", "union_dict_and_str", "loads", "parse_type"))


def generate() -> dict[str, Any]:
    import vllm

    parser = build_serve_parser()
    # Every spelling the parser accepts, hidden ones included (vLLM registers
    # `--no-enable-x` for `--enable-x/--disable-x` pairs but keeps it out of help).
    spellings: dict[int, list[str]] = {}
    for spelling, registered in parser._option_string_actions.items():
        spellings.setdefault(id(registered), []).append(spelling)
    options = []
    for action in parser._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        hidden = [s for s in spellings.get(id(action), []) if s not in action.option_strings]
        names = list(action.option_strings) + sorted(hidden)
        entry: dict[str, Any] = {"names": names, "nargs": nargs_of(action)}
        choices = choices_of(action)
        if action.option_strings[0] == "--quantization":
            from vllm.model_executor.layers.quantization import QUANTIZATION_METHODS

            choices = list(QUANTIZATION_METHODS)
        if choices is not None:
            entry["choices"] = choices
        if dict_valued(action):
            entry["dict_keys"] = True
        options.append(entry)
    options.sort(key=lambda o: o["names"][0].lstrip("-"))
    import torch

    return {
        "engine": "vllm",
        "program": "vllm serve",
        "version": vllm.__version__,
        "generated": {
            "script": "scripts/gen_vllm_flags.py",
            "method": (
                "vLLM's own parser: vllm.entrypoints.cli.serve.ServeSubcommand().subparser_init() on a "
                "vllm.utils.argparse_utils.FlexibleArgumentParser; every option string the parser registers "
                "(hidden ones included) and each action's nargs; "
                "choices from argparse (or the Literal values vLLM puts in the metavar; --quantization from "
                "QUANTIZATION_METHODS)"
            ),
            "environment": (
                f"vllm {vllm.__version__} wheel installed with --no-deps into a throwaway venv, "
                f"torch {torch.__version__} (CPU build), "
                f"VLLM_TARGET_DEVICE={os.environ.get('VLLM_TARGET_DEVICE', '')}"
            ),
        },
        "equals_syntax": True,
        "underscores": True,
        "positional": ["model_tag"],
        "options": options,
    }


def _load(relative: str, name: str) -> Any:
    """A module of the cortexctl package, loaded by path (this script may run outside the venv)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / relative
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _allow_list() -> Any:
    """The engine's allow-list table (its package's flags.py)."""
    return _load(f"cortexctl/engines/{ENGINE}/flags.py", "cortex_engine_flags").ALLOWED


def with_allow_list(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with each option's recipe allow-list category (see allowlist.py) written in."""
    data = dict(data)
    data["options"] = _load("cortexctl/recipes/flags/allowlist.py", "cortex_flag_allowlist").apply_allow_list(
        ENGINE, data["options"], _allow_list()
    )
    data.setdefault("generated", {})["allow_list"] = ALLOW_LIST_NOTE
    return data


def dump(data: dict[str, Any]) -> str:
    """Indented JSON with one option per line, so a version bump diffs readably."""
    options = data.pop("options")
    head = json.dumps(data, indent=1)[:-2]
    lines = ",\n".join("  " + json.dumps(o) for o in options)
    return f'{head},\n "options": [\n{lines}\n ]\n}}\n'


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--allow-list-only",
        type=Path,
        metavar="JSON",
        help="re-apply the allow-list to this existing data file instead of asking vLLM",
    )
    ap.add_argument("-o", "--output", type=Path, help="write here (default: stdout)")
    args = ap.parse_args()
    data = (
        json.loads(args.allow_list_only.read_text(encoding="utf-8")) if args.allow_list_only else generate()
    )
    text = dump(with_allow_list(data))
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Generate cortexctl/engines/llamacpp/data/llamacpp-<version>.json from the real `llama-server --help`.

    python3 scripts/gen_llamacpp_flags.py \
        --binary ~/.cache/cortex/llama-server/0.3.36/bin/llama-server \
        -o cortexctl/engines/llamacpp/data/llamacpp-0.3.36.json

llama.cpp prints each option as `-s,    --long, --other VALUE_HINT   help…` (see
common_arg::to_string in common/arg.cpp): every spelling, then an optional value
hint (one value; two hints such as `START END` mean two values), then help text
indented to column 40. Its parser takes `--long_name` as `--long-name`, never
`--flag=value`. The list of built-in chat templates comes from the help of
--chat-template.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ENGINE = "llamacpp"
ALLOW_LIST_NOTE = (
    'options a recipe\'s extra_args may set carry "allowed": <category>, from '
    "cortexctl/engines/llamacpp/flags.py; every other option is refused in recipes"
)

HELP_COLUMN = 40
_SPELLING = re.compile(r"--?[A-Za-z0-9][\w.-]*")
# `{none,mean}`, `[on|off|auto]`, `<0|1>`; not `<dev1,dev2,..>` (a list, not a choice)
_ENUM_HINT = re.compile(r"^[\[{<]\s*([\w-]+(?:\s*[,|]\s*[\w-]+)+)\s*[\]}>]$")


def parse_help(text: str) -> list[dict[str, Any]]:
    options: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.startswith("-----") or not raw.strip() and not raw.startswith(" " * HELP_COLUMN):
            current = None  # a section header or the blank line between sections
            continue
        if line.startswith("-"):
            head, help_text = _split_head(line)
            current = _parse_head(head)
            current["help"] = [help_text] if help_text else []
            options.append(current)
        elif current is not None and raw.startswith(" " * HELP_COLUMN) and line.strip():
            current["help"].append(line.strip())
    for opt in options:
        help_lines: list[str] = opt.pop("help")
        opt["help"] = " ".join(h for h in help_lines if not h.startswith("(env:"))
        env = [h[len("(env: ") : -1] for h in help_lines if h.startswith("(env: ")]
        if env:
            opt["env"] = env[0]
        allowed = re.search(r"allowed values: ([\w.-]+(?:, [\w.-]+)+)", opt["help"])
        if allowed and "choices" not in opt:
            opt["choices"] = allowed.group(1).split(", ")
    return options


def _split_head(line: str) -> tuple[str, str]:
    """The spellings + hint part, and the help text on the same line (if any)."""
    # The first spelling is padded: `-h,    --help`; squeeze that before looking for the gap.
    line = re.sub(r"^(-[^\s,]+),\s+", r"\1, ", line)
    parts = re.split(r"\s{2,}", line, maxsplit=1)
    return parts[0], (parts[1].strip() if len(parts) > 1 else "")


def _parse_head(head: str) -> dict[str, Any]:
    names: list[str] = []
    pos = 0
    while True:
        m = _SPELLING.match(head, pos)
        if m is None:
            raise ValueError(f"cannot parse option line: {head!r}")
        names.append(m.group())
        pos = m.end()
        if head.startswith(", -", pos):
            pos += 2
            continue
        break
    hint = head[pos:].strip()
    opt: dict[str, Any] = {"names": names}
    if not hint:
        opt["nargs"] = 0
    else:
        two = re.fullmatch(r"([A-Z_]+) ([A-Z_]+)", hint)  # value_hint + value_hint_2
        opt["nargs"] = 2 if two else 1
        opt["value_hint"] = hint
        enum = _ENUM_HINT.match(hint)
        if enum:
            opt["choices"] = [c.strip() for c in re.split(r"[,|]", enum.group(1))]
    return opt


def builtin_chat_templates(options: list[dict[str, Any]]) -> list[str]:
    for opt in options:
        if "--chat-template" in opt["names"]:
            m = re.search(r"list of built-in templates: (.*)$", opt["help"])
            if m:
                return [t.strip() for t in m.group(1).split(",") if t.strip()]
    raise ValueError("--chat-template help lists no built-in templates")


def generate(binary: Path) -> dict[str, Any]:
    help_text = subprocess.run(
        [str(binary), "--help"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    version = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, timeout=60
    ).stderr.splitlines()[0]
    options = parse_help(help_text)
    options.sort(key=lambda o: o["names"][-1].lstrip("-"))
    return {
        "engine": "llamacpp",
        "program": "llama-server",
        "version": PIN.VERSION,
        "generated": {
            "script": "scripts/gen_llamacpp_flags.py",
            "method": (
                "parsed the real `llama-server --help` (every spelling, short and long, of each option; "
                "a value hint after them means it takes a value, two hints two values; choices from "
                "{a,b} / [a|b] hints and 'allowed values:' help lines)"
            ),
            "binary": (
                f"llama-server built from the llama.cpp vendored in the llama-cpp-python {PIN.VERSION} sdist "
                f"(scripts/build-llama-server.sh); `--version`: {version}"
            ),
        },
        "equals_syntax": False,
        "underscores": True,
        "chat_templates": builtin_chat_templates(options),
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


PIN = _load("cortexctl/engines/llamacpp/pin.py", "cortex_llamacpp_pin")  # the one version pin


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
    ap.add_argument("--binary", type=Path, help="the llama-server to ask")
    ap.add_argument(
        "--allow-list-only",
        type=Path,
        metavar="JSON",
        help="re-apply the allow-list to this existing data file instead of asking the engine",
    )
    ap.add_argument("-o", "--output", type=Path, help="write here (default: stdout)")
    args = ap.parse_args()
    if args.allow_list_only is not None:
        data = json.loads(args.allow_list_only.read_text(encoding="utf-8"))
    elif args.binary is not None:
        data = generate(args.binary)
    else:
        ap.error("give --binary (regenerate from the engine) or --allow-list-only JSON")
    text = dump(with_allow_list(data))
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

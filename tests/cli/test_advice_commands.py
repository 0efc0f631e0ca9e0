"""No advice may name a command that does not exist.

Every `cortexctl …` a user can read — the Markdown docs, every `--help` text, every
string in the code (error fixes, docstrings, messages) and the shell scripts — is
collected and resolved against the real command tree: each command word must be a
command of its group and each option an option of its command. Option values that
are checked only when a command runs (`--gpu-profile`, `--vram`) are checked here
with the same code. The collector itself is tested on known-bad advice, so a
collector that finds nothing cannot pass.
"""

from __future__ import annotations

import functools
import io
import re
import shlex
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer

from cortexctl.cli.main import app
from cortexctl.validation.gpus import pretend_gpus

ROOT = Path(__file__).resolve().parents[2]
DOC_FILES = sorted(
    p
    for p in ROOT.glob("**/*.md")
    if not any(part in {".venv", "node_modules", ".pytest_cache", ".git"} for part in p.parts)
)
CODE_DIRS = ("cortexctl", "server/cortex_server", "scripts", "bench")
SCRIPT_FILES = sorted((ROOT / "scripts").glob("*.sh")) + [ROOT / "install.sh"]

# `cortexctl` followed by one of these words is prose ("cortexctl reads …"), not a command.
PROSE_WORDS = {
    "and", "as", "at", "but", "calls", "cli", "does", "for", "from", "import", "imports", "in", "is",
    "it", "itself", "on", "or", "reads", "runs", "that", "the", "to", "uses", "was", "which", "with",
    "writes", "will", "would", "can", "could", "may", "must", "should", "package", "command", "commands",
    "process",
}  # fmt: skip

VALUE_CHECKS = {
    "--gpu-profile": lambda v: pretend_gpus(profile=v),
    "--vram": lambda v: pretend_gpus(vram=v),
}

_BACKTICKED = re.compile(r"`((?:\.venv/bin/)?cortexctl(?: [^`]*)?)`")
_PROSE = re.compile(r"(?<![\w./-])cortexctl ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?")
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")


@dataclass(frozen=True)
class Advice:
    where: str
    text: str  # starts with "cortexctl"
    prose: bool = False  # an unquoted mention: only its command words are checked


@functools.cache
def _command_tree() -> Any:
    return typer.main.get_command(app)


# ---- collecting ------------------------------------------------------------------------------


def advice_in_text(text: str, where: str, *, prose: bool) -> list[Advice]:
    found = [Advice(where, m.group(1).removeprefix(".venv/bin/")) for m in _BACKTICKED.finditer(text)]
    if prose:
        unquoted = _BACKTICKED.sub("", text)
        found += [Advice(where, m.group(0), prose=True) for m in _PROSE.finditer(unquoted)]
    return found


def advice_in_shell(text: str, where: str) -> list[Advice]:
    found = []
    for line in text.splitlines():
        code = line.split("#", 1)[0] if not line.lstrip().startswith(("echo", "printf")) else line
        for m in re.finditer(r"(?:^|[\s;&|(])(?:\S*/)?cortexctl((?: [^;&|)#\"'`]*)?)", code):
            found.append(Advice(where, "cortexctl" + m.group(1).rstrip()))
    return found


def advice_in_markdown(path: Path) -> list[Advice]:
    text = path.read_text()
    found = advice_in_text(text, str(path.relative_to(ROOT)), prose=False)
    for block in re.findall(r"```(?:bash|sh|shell|console)?\n(.*?)```", text, re.S):
        found += advice_in_shell(block, f"{path.relative_to(ROOT)} (code block)")
    return found


def advice_in_python(path: Path) -> list[Advice]:
    """Backticked and prose mentions in string literals (comments are not user-facing)."""
    found = []
    where = str(path.relative_to(ROOT))
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if tok.type == tokenize.STRING or tok.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
            text = _PLACEHOLDER.sub("NAME", tok.string)
            found += advice_in_text(text, f"{where}:{tok.start[0]}", prose=True)
    return found


def advice_in_help() -> list[Advice]:
    found = []

    def walk(cmd: Any, path: str) -> None:
        texts = [cmd.help or "", cmd.short_help or ""]
        texts += [getattr(p, "help", None) or "" for p in cmd.params]
        for text in texts:
            found.extend(advice_in_text(text, f"`{path} --help`", prose=True))
        for p in cmd.params:
            for opt in p.opts:
                if opt in VALUE_CHECKS and "e.g." in (p.help or ""):
                    examples = (p.help or "").split("e.g.", 1)[1].rstrip(".").split(",")
                    for ex in examples:
                        found.append(Advice(f"`{path} --help`", f"{path} {opt} {ex.strip().rstrip('.')}"))
        for name, sub in (getattr(cmd, "commands", None) or {}).items():
            walk(sub, f"{path} {name}")

    walk(_command_tree(), "cortexctl")
    return found


def all_advice() -> list[Advice]:
    found: list[Advice] = []
    for path in DOC_FILES:
        found += advice_in_markdown(path)
    for d in CODE_DIRS:
        for path in sorted((ROOT / d).rglob("*.py")):
            found += advice_in_python(path)
    for path in SCRIPT_FILES:
        if path.exists():
            found += advice_in_shell(path.read_text(), str(path.relative_to(ROOT)))
    return found + advice_in_help()


# ---- checking --------------------------------------------------------------------------------


def _alternatives(text: str) -> list[list[str]]:
    """`cortexctl a b [--x] / c / d` → [a b --x], [a c], [a d]: each alternative replaces the last
    command word of the first, or adds options to it (the README's compact notation)."""
    text = text.replace("\\|", "|")  # a pipe escaped in a Markdown table cell
    text = text.replace("[", " ").replace("]", " ").replace("…", " … ").replace("...", " … ")
    parts = [p.strip() for p in re.split(r"\s/\s", text)]
    try:
        first = shlex.split(parts[0])
    except ValueError:
        first = parts[0].split()
    words = [first]
    for alt in parts[1:]:
        words.append(["cortexctl", "<sibling>", *alt.split()])
    return words


def problems_of(advice: Advice) -> list[str]:
    root = _command_tree()
    out: list[str] = []
    alternatives = _alternatives(advice.text)
    first_path: list[str] = []
    for n, tokens in enumerate(alternatives):
        tokens = tokens[1:]  # "cortexctl"
        if n > 0:  # a sibling command, or more options of the same command
            alt = tokens[1:]
            tokens = [*first_path, *alt] if alt and alt[0].startswith("-") else [*first_path[:-1], *alt]
        cmd, path, i = root, [], 0
        while i < len(tokens):
            tok = tokens[i]
            if tok in ("…", "--", "&&", "|") or tok.startswith(("$", "<", ">")):
                break
            if tok.startswith("-") and "|" in tok:  # `--json|--csv`: each must be an option
                for alt in tok.split("|"):
                    if not any(alt in p.opts or alt in p.secondary_opts for p in cmd.params):
                        out.append(f"`cortexctl {' '.join(path)}` has no option {alt}")
                i += 1
                continue
            if tok.startswith("-"):
                name, _, value = tok.partition("=")
                param = next((p for p in cmd.params if name in p.opts or name in p.secondary_opts), None)
                if param is None and name in ("-h", "--help"):
                    i += 1
                    continue
                if param is None:
                    out.append(f"`cortexctl {' '.join(path)}` has no option {name}")
                    break
                takes_value = not getattr(param, "is_flag", False) and not param.secondary_opts
                if takes_value and not value and i + 1 < len(tokens):
                    value = tokens[i + 1]
                    i += 1
                check = VALUE_CHECKS.get(name)
                if check and value and not re.fullmatch(r"[A-Z][A-Z0-9_]*…?|…", value):
                    try:
                        check(value)
                    except Exception as exc:  # noqa: BLE001 - the check's refusal is the finding
                        out.append(f"{name} {value}: {getattr(exc, 'message', exc)}")
                i += 1
                continue
            subcommands = getattr(cmd, "commands", None)
            if subcommands is None:  # a leaf's argument
                i += 1
                continue
            if "|" in tok:  # `cortexctl orgs|users|keys`: each must exist
                missing = [t for t in tok.split("|") if t not in subcommands]
                if missing:
                    out.append(f"`cortexctl {' '.join(path)}` has no command {missing[0]!r}")
                break
            if tok not in subcommands:
                if advice.prose and not path and tok in PROSE_WORDS:
                    break
                where = " ".join(["cortexctl", *path])
                out.append(f"`{where}` has no command {tok!r} (it has: {', '.join(sorted(subcommands))})")
                break
            cmd, path = subcommands[tok], [*path, tok]
            i += 1
            if advice.prose and len(path) == 2:
                break
        if n == 0:
            first_path = path
    return out


def test_every_command_named_anywhere_exists() -> None:
    advice = all_advice()
    assert len(advice) > 80, "the collector found almost nothing: it is broken"
    wrong = {f"{a.where}: {a.text!r}: {p}" for a in advice for p in problems_of(a)}
    assert not wrong, "advice names commands that do not exist:\n" + "\n".join(sorted(wrong))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('fix="see `cortexctl model status` for why"', "no command 'status'"),
        ('fix="Run cortexctl modle list."', "no command 'modle'"),
        ('help="e.g. `cortexctl recipe validate f.yaml --gpu-profile 2xl4`"', "--gpu-profile 2xl4"),
        ('"`cortexctl up --bogus`"', "no option --bogus"),
        ('"`cortexctl model list --json|--nosuch`"', "no option --nosuch"),
        ('"`cortexctl model create -f FILE / list / nosuch`"', "no command 'nosuch'"),
    ],
)
def test_the_checker_catches_bad_advice(tmp_path: Path, text: str, expected: str) -> None:
    module = ROOT / "cortexctl" / "_advice_probe.py"  # inside ROOT so relative paths work
    module.write_text(f"X = dict({text})\n")
    try:
        found = advice_in_python(module)
    finally:
        module.unlink()
    problems = [p for a in found for p in problems_of(a)]
    assert any(expected in p for p in problems), (found, problems)


@pytest.mark.parametrize(
    "text",
    [
        "`cortexctl model show gemma3-270m`",
        "`cortexctl up [--demo] / down / status / serve`",
        "`cortexctl orgs … / users …`",
        "`cortexctl recipe validate FILE… [--gpu-profile P / --vram 24GiB / --gpus 0,1]`",
        "`cortexctl users update NAME --disabled`",
        "Run cortexctl as the user that ran it",
    ],
)
def test_the_checker_accepts_good_advice(text: str) -> None:
    found = advice_in_text(text, "probe", prose=True)
    assert found
    assert [p for a in found for p in problems_of(a)] == []

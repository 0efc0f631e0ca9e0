"""Check `spec.args.extra_args` against the flags the pinned engine version accepts.

A flag must exist for that version (else: close matches and where the full list
lives), must not repeat a typed field of `spec.args` (its value would fight the
typed one), must not be one that CORTEX sets itself (host, port, model, …), and
must be on the engine's allow-list (its package's flags.py, written into the flag
data by the generators): a recipe decides what runs on the host, so flags that
run code, name host files or addresses are refused, each with why and what to
use instead.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cortexctl.engines.registry import get_engine
from cortexctl.recipes.flags import (
    FlagInfo,
    accepted_flags,
    engine_version,
    equals_syntax,
    flags_file,
    normalize_flag,
)
from cortexctl.recipes.flags.allowlist import refused_reasons, takes_path


@dataclass(frozen=True)
class ArgProblem:
    index: int  # position in extra_args
    problem: str


def flags_reference(engine: str) -> str:
    return f"`cortexctl recipe flags {engine}` (data: {data_path(engine)})"


def data_path(engine: str) -> str:
    """The flag data file, relative to the source tree when it is in it (as messages name it)."""
    path = flags_file(engine)
    root = Path(__file__).resolve().parents[2]
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _owned(engine: str, table: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Every spelling of each listed option → (canonical flag, value)."""
    accepted = accepted_flags(engine)
    out: dict[str, tuple[str, str]] = {}
    for flag, value in table.items():
        info = accepted.get(flag)
        for name in info.names if info else (flag,):
            out[name] = (flag, value)
    return out


def check_engine_argv(engine: str, argv: list[str]) -> list[ArgProblem]:
    """Problems with a whole engine command line (flags after the program and model).

    Unlike extra_args, flags of typed fields and those CORTEX sets are fine here:
    this checks that an adapter only renders flags the pinned version accepts.
    """
    return check_extra_args(engine, argv, refuse_owned=False)


def check_extra_args(engine: str, extra_args: list[str], *, refuse_owned: bool = True) -> list[ArgProblem]:
    """Problems with `extra_args` for `engine`; an empty list means they are fine."""
    spec = get_engine(engine)
    accepted = accepted_flags(engine)
    typed = _owned(engine, spec.typed_flags)
    cortex = _owned(engine, spec.cortex_flags)
    program = f"{spec.program} ({engine} {engine_version(engine)})"
    problems: list[ArgProblem] = []
    i = 0
    while i < len(extra_args):
        token = str(extra_args[i])
        if width := spec.shorthand_width(extra_args, i):
            i += width  # a shorthand the engine's parser knows but its flag data cannot list
            continue
        if not token.startswith("-") or token in ("-", "--"):
            problems.append(
                ArgProblem(i, f"{token!r} is not a flag; a value must follow the flag it belongs to")
            )
            i += 1
            continue
        flag, eq, inline = token.partition("=")
        flag = normalize_flag(engine, flag)
        info = accepted.get(flag)
        base = flag.split(".", 1)[0]
        if info is None and "." in flag and base in accepted and accepted[base].dict_keys:
            parent = accepted[base]  # `--compilation-config.mode 3`: allowed when its option is
            info = FlagInfo(names=parent.names, nargs=1, help=parent.help, allowed=parent.allowed)
            flag = base
        if info is None:
            problems.append(ArgProblem(i, _unknown(engine, flag, accepted, program)))
            i += 1
            while i < len(extra_args) and not _looks_like_flag(str(extra_args[i])):
                i += 1  # its values, most likely: one problem is enough
            continue
        refused = None
        if not refuse_owned:
            pass
        elif flag in typed:
            refused = f"{flag} duplicates a typed field: use args.{typed[flag][1]} instead"
        elif flag in cortex:
            refused = f"{flag}: {cortex[flag][1]}"
        elif info.allowed is None:
            refused = refusal(engine, info)
        if refused is not None:
            problems.append(ArgProblem(i, refused))
            ignored: list[ArgProblem] = []  # one problem per refused flag: skip its values unchecked
            i = _check_values(engine, info, flag, eq, inline, extra_args, i, ignored)
            continue
        i = _check_values(engine, info, flag, eq, inline, extra_args, i, problems)
    return problems


def refusal(engine: str, info: FlagInfo) -> str:
    """Why a recipe may not set this (existing, not allow-listed) flag, and what to do instead."""
    flag = info.canonical
    reasons = refused_reasons(engine)
    why = next((reasons[n] for n in info.names if n in reasons), None)
    if why is None and takes_path(info.value_hint, info.help, info.nargs):
        why = "it names a file or folder on the host; recipes name files only in spec.model and spec.args"
    if why is None:
        why = (
            "it is not a performance, memory, context, parallelism, sampling, template, embeddings "
            "or log-verbosity flag"
        )
    return (
        f"{flag} is not allowed in a recipe: {why}. Flags a recipe may set: "
        f"`cortexctl recipe flags {engine} --allowed` "
        f"(data: {data_path(engine)})"
    )


def _unknown(engine: str, flag: str, accepted: dict[str, FlagInfo], program: str) -> str:
    close = difflib.get_close_matches(flag, list(accepted), n=4, cutoff=0.6)
    hint = f"; close matches: {', '.join(close)}" if close else ""
    return f"unknown flag {flag} for {program}{hint}; full list: {flags_reference(engine)}"


def _check_values(
    engine: str,
    info: FlagInfo,
    flag: str,
    eq: str,
    inline: str,
    args: list[str],
    i: int,
    out: list[ArgProblem],
) -> int:
    """Consume the flag's values; return the index of the next token."""
    if eq:
        if not equals_syntax(engine):
            out.append(
                ArgProblem(
                    i,
                    f"{get_engine(engine).program} does not read 'flag=value': "
                    f"give {flag!r} and {inline!r} as two list items",
                )
            )
            return i + 1
        if not info.takes_value:
            out.append(ArgProblem(i, f"{flag} takes no value"))
        else:
            _check_choice(info, flag, inline, i, out)
        return i + 1
    j = i + 1
    if info.nargs in (1, 2):
        for _ in range(int(info.nargs)):
            if j >= len(args):
                hint = f" {info.value_hint}" if info.value_hint else ""
                out.append(ArgProblem(i, f"{flag} needs a value{hint}: add it as the next list item"))
                return j
            _check_choice(info, flag, str(args[j]), j, out)
            j += 1
        return j
    if info.nargs in ("?", "*", "+"):
        start = j
        while j < len(args) and not _looks_like_flag(str(args[j])):
            _check_choice(info, flag, str(args[j]), j, out)
            j += 1
            if info.nargs == "?":
                break
        if info.nargs == "+" and j == start:
            out.append(ArgProblem(i, f"{flag} needs at least one value: add it as the next list item"))
    return j


def _looks_like_flag(token: str) -> bool:
    return token.startswith("-") and not _is_number(token)


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _check_choice(info: FlagInfo, flag: str, value: str, index: int, out: list[ArgProblem]) -> None:
    if info.choices is not None and value not in info.choices:
        out.append(
            ArgProblem(
                index, f"{value!r} is not a valid value for {flag}; choose one of: {', '.join(info.choices)}"
            )
        )

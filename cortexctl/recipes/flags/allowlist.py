"""Which engine flags a recipe's `extra_args` may set: an allow-list per engine, by purpose.

A recipe decides what runs on the host, and many engine flags reach far beyond
serving a model: llama-server's `--tools exec_shell_command` runs commands,
`--log-file`, `--slot-save-path`, `--log-prompts-dir` write files, `--path` and
`--media-path` serve or read them, `--mcp-servers-json` starts programs; vLLM
loads Python plugins (`--tool-parser-plugin`, `--worker-cls`) and writes
profiles. A deny-list would miss the next one a version adds, so this is the
other way round: only flags listed here (performance, memory, context,
parallelism, sampling, template, embeddings and log-verbosity flags, none of
which takes a file path or an address) may be set, everything else is refused
with a reason and what to use instead.

Each engine's list lives in its package (`cortexctl/engines/<name>/flags.py`:
`ALLOWED`, category → flags, and `REFUSED`, flag → why); this module is the
machinery. The generators (`scripts/gen_llamacpp_flags.py`, `scripts/gen_vllm_flags.py`)
load both by path and write each option's category into the flag data file next to
the option itself (`"allowed": "<category>"`), so the allow-list is regenerated with
the flag data and a test checks the committed files against the tables
(`--allow-list-only` re-applies it without the engine). Names may be any
spelling of an option; a name the engine does not have fails the generator.

No cortexctl imports at module level: the generators may run outside the venv.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PATH_HINTS = ("FNAME", "FILE", "PATH", "DIR")
PATH_WORDS = ("path", "file", "directory", "folder", "dir ")


def allowed_table(engine: str) -> Mapping[str, tuple[str, ...]]:
    """The allow-list of a registered engine (category → flags)."""
    from cortexctl.engines.registry import get_engine

    return get_engine(engine).allowed


def refused_reasons(engine: str) -> Mapping[str, str]:
    from cortexctl.engines.registry import get_engine

    return get_engine(engine).refused


def categories_by_name(engine: str, allowed: Mapping[str, tuple[str, ...]] | None = None) -> dict[str, str]:
    """Every flag name listed for `engine` → its category (a name listed twice is a mistake).

    `allowed` is the engine's table when the caller loaded it itself (the generators).
    """
    out: dict[str, str] = {}
    table = allowed_table(engine) if allowed is None else allowed
    for category, flags in table.items():
        for flag in flags:
            if flag in out:
                raise ValueError(f"{engine}: {flag} is listed under both {out[flag]} and {category}")
            out[flag] = category
    return out


def apply_allow_list(
    engine: str, options: list[dict[str, Any]], allowed: Mapping[str, tuple[str, ...]] | None = None
) -> list[dict[str, Any]]:
    """`options` (generator output) with `"allowed": category` on each listed option.

    Raises ValueError for a listed name no option has, so the list cannot rot silently
    when a version bump removes or renames a flag.
    """
    wanted = categories_by_name(engine, allowed)
    seen: set[str] = set()
    out = []
    for opt in options:
        opt = {k: v for k, v in opt.items() if k != "allowed"}
        hits = {wanted[n] for n in opt["names"] if n in wanted}
        seen.update(n for n in opt["names"] if n in wanted)
        if len(hits) > 1:
            raise ValueError(f"{engine}: spellings of {opt['names'][0]} are listed under {sorted(hits)}")
        if hits:
            opt["allowed"] = hits.pop()
        out.append(opt)
    missing = sorted(set(wanted) - seen)
    if missing:
        raise ValueError(f"{engine}: the allow-list names flags the engine does not have: {missing}")
    return out


def takes_path(value_hint: str | None, help_text: str, nargs: object) -> bool:
    """Whether an option's value looks like a host path (for the reason given when refusing it)."""
    if nargs == 0:
        return False
    if value_hint and any(h in value_hint.upper() for h in PATH_HINTS):
        return True
    head = help_text.lower()[:80]
    return any(w in head for w in PATH_WORDS)

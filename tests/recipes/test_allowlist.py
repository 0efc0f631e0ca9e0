"""The recipe allow-list: generated into the flag data, complete, and the only way a flag gets in.

The matrix below walks every option of the pinned llama-server and vLLM that is
not allow-listed and shows that a recipe setting it is refused with a reason;
the allowed ones pass. The expectation comes from the flag data (what the engine
has), never from the checker itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cortexctl.engines.registry import engine_names, get_engine
from cortexctl.recipes.extra_args import check_extra_args
from cortexctl.recipes.flags import FlagInfo, accepted_flags, flag_data, flags_file
from cortexctl.recipes.flags.allowlist import categories_by_name, takes_path

# Each engine's tables, from its package through the registry.
TYPED_FLAGS = {name: get_engine(name).typed_flags for name in engine_names()}
CORTEX_FLAGS = {name: get_engine(name).cortex_flags for name in engine_names()}
ALLOWED = {name: get_engine(name).allowed for name in engine_names()}

REPO = Path(__file__).resolve().parents[2]
ENGINES = ("llamacpp", "vllm")


def options(engine: str) -> list[FlagInfo]:
    seen: dict[tuple[str, ...], FlagInfo] = {}
    for info in accepted_flags(engine).values():
        seen.setdefault(info.names, info)
    return sorted(seen.values(), key=lambda i: i.canonical)


def sample_args(info: FlagInfo) -> list[str]:
    """The flag with a value it accepts."""
    if info.nargs == 0:
        return [info.canonical]
    value = info.choices[0] if info.choices else "1"
    n = 2 if info.nargs == 2 else 1
    return [info.canonical, *([value] * n)]


@pytest.mark.parametrize("engine", ENGINES)
def test_committed_data_is_the_generators_allow_list(engine: str, tmp_path: Path) -> None:
    """Re-applying allowlist.py with the generator reproduces the committed file byte for byte."""
    out = tmp_path / "flags.json"
    subprocess.run(
        [
            sys.executable,
            f"scripts/gen_{engine}_flags.py",
            "--allow-list-only",
            str(flags_file(engine)),
            "-o",
            str(out),
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert out.read_text(encoding="utf-8") == flags_file(engine).read_text(encoding="utf-8")
    assert "allow_list" in flag_data(engine)["generated"]


@pytest.mark.parametrize("engine", ENGINES)
def test_every_allowed_flag_exists_in_the_engines_flag_data(engine: str) -> None:
    data_names = {n for o in flag_data(engine)["options"] for n in o["names"]}
    listed = categories_by_name(engine)
    assert listed and set(listed) <= data_names
    allowed = {o["names"][0]: o["allowed"] for o in flag_data(engine)["options"] if "allowed" in o}
    assert sorted(set(allowed.values())) == sorted(ALLOWED[engine])  # every category reached the data
    for name, category in listed.items():
        assert accepted_flags(engine)[name].allowed == category


@pytest.mark.parametrize("engine", ENGINES)
def test_no_allowed_flag_names_a_file_or_belongs_to_cortex(engine: str) -> None:
    owned = set(TYPED_FLAGS[engine]) | set(CORTEX_FLAGS[engine])
    for info in options(engine):
        if info.allowed is None:
            continue
        assert not takes_path(info.value_hint, info.help, info.nargs), info.names
        assert not owned & set(info.names), info.names


def _refused(engine: str) -> list[FlagInfo]:
    return [i for i in options(engine) if i.allowed is None]


@pytest.mark.parametrize("info", _refused("llamacpp"), ids=lambda i: i.canonical)
def test_every_other_llama_server_flag_is_refused(info: FlagInfo) -> None:
    problems = check_extra_args("llamacpp", sample_args(info))
    assert problems and problems[0].index == 0, info.names
    message = problems[0].problem
    cortex_sets = {f"{flag}: {why}" for flag, why in CORTEX_FLAGS["llamacpp"].items()}
    assert (
        message.startswith(f"{info.canonical} is not allowed in a recipe: ")
        or "duplicates a typed field: use args." in message
        or message in cortex_sets
    ), message


@pytest.mark.parametrize("info", _refused("vllm"), ids=lambda i: i.canonical)
def test_every_other_vllm_flag_is_refused(info: FlagInfo) -> None:
    problems = check_extra_args("vllm", sample_args(info))
    assert problems and problems[0].index == 0, info.names


@pytest.mark.parametrize("engine", ENGINES)
def test_every_allowed_flag_passes(engine: str) -> None:
    for info in options(engine):
        if info.allowed is not None:
            for name in info.names:  # every spelling
                args = [name, *sample_args(info)[1:]]
                assert check_extra_args(engine, args) == [], args


def test_refusals_say_what_to_use_instead() -> None:
    (p,) = check_extra_args("llamacpp", ["--log-file", "/tmp/engine.log"])
    assert "the daemon manages engine logs" in p.problem and "cortexctl model logs NAME" in p.problem
    (p,) = check_extra_args("llamacpp", ["--rpc", "10.0.0.1:50052"])
    assert "remote RPC servers" in p.problem
    (p,) = check_extra_args("llamacpp", ["--tags", "x"])  # refused for lack of a purpose: says which exist
    assert "it is not a performance, memory, context, parallelism, sampling, template" in p.problem


def test_the_cli_lists_the_allow_list() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cortexctl", "recipe", "flags", "llamacpp", "--allowed", "--json"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    listed = json.loads(out)
    assert listed and all(item["allowed"] for item in listed)
    names = {n for item in listed for n in item["names"]}
    assert "--temp" in names and "--tools" not in names and "--log-file" not in names

"""Recipe → llama-server flags for chat templates (Jinja on/off) and the multimodal projector.

The real engine's answers to these command lines are in tests/gateway/test_client_errors_llama.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from cortexctl.core.settings import Settings
from cortexctl.engines.base import Mount
from cortexctl.engines.llamacpp.adapter import LlamaCppEngine
from cortexctl.recipes.semantic import check_recipe
from tests.support.engine_fixtures import make_recipe


def argv_of(settings: Settings, **args: Any) -> tuple[list[str], list[str], tuple[Mount, ...]]:
    recipe = make_recipe("llamacpp", "m.gguf", args=args)
    spec = LlamaCppEngine().launch_spec(recipe, model_id=1, replica_index=0, port=18001, settings=settings)
    return spec.argv, spec.container_argv, spec.mounts


def jinja_part(argv: list[str]) -> list[str]:
    keep = {"--jinja", "--no-jinja", "--chat-template", "--chat-template-file"}
    out = []
    for i, a in enumerate(argv):
        if a in keep:
            out.append(a)
            if a.startswith("--chat-template"):
                out.append(argv[i + 1])
    return out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({}, []),  # the engine's default (Jinja on, the GGUF's own template)
        ({"jinja": True}, ["--jinja"]),
        ({"jinja": False}, ["--no-jinja"]),
        ({"chat_template": "gemma"}, ["--no-jinja", "--chat-template", "gemma"]),
        ({"chat_template": "chatml", "jinja": True}, ["--jinja", "--chat-template", "chatml"]),
        ({"chat_template_file": "t.jinja"}, ["--jinja", "--chat-template-file", "TPL"]),
        ({"chat_template_file": "t.jinja", "jinja": False}, ["--no-jinja", "--chat-template-file", "TPL"]),
    ],
)
def test_jinja_is_said_before_the_template(
    engine_settings: Settings, args: dict[str, Any], expected: list[str]
) -> None:
    argv, container_argv, _ = argv_of(engine_settings, **args)
    host_template = str(engine_settings.models_dir / "t.jinja")
    assert jinja_part(argv) == [host_template if a == "TPL" else a for a in expected]
    assert jinja_part(container_argv) == ["/templates/t.jinja" if a == "TPL" else a for a in expected]


def test_a_named_template_other_than_chatml_with_jinja_is_refused() -> None:
    recipe = make_recipe("llamacpp", "m.gguf", args={"chat_template": "gemma", "jinja": True})
    findings = check_recipe(recipe, roots=None)
    assert any(loc[-1] == "jinja" and "chatml" in msg for loc, msg in findings), findings
    ok = make_recipe("llamacpp", "m.gguf", args={"chat_template": "chatml", "jinja": True})
    assert not [f for f in check_recipe(ok, roots=None) if f[0][-1] == "jinja"]


@pytest.mark.parametrize("absolute", [False, True])
def test_mmproj_is_found_and_mounted_like_the_model(engine_settings: Settings, absolute: bool) -> None:
    host = engine_settings.models_dir / "vision" / "mmproj-f16.gguf"
    path = str(host) if absolute else "vision/mmproj-f16.gguf"
    argv, container_argv, mounts = argv_of(engine_settings, mmproj=path)
    assert argv[argv.index("--mmproj") + 1] == str(host)
    assert container_argv[container_argv.index("--mmproj") + 1] == "/models/mmproj-f16.gguf"
    assert Mount(host, "/models/mmproj-f16.gguf", True) in mounts


def test_no_mmproj_no_flag(engine_settings: Settings) -> None:
    argv, _, mounts = argv_of(engine_settings)
    assert "--mmproj" not in argv and len(mounts) == 1

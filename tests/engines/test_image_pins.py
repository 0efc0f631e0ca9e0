"""Engine images named in shipped bundle definitions and recipes carry the engines' own pins.

The pins live in one place (`cortexctl.recipes.flags`: the versions whose flags CORTEX
checks, and the engines' default images); a bundle that ships another tag would run an
engine whose flags were never checked.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cortexctl.engines.binaries import LLAMA_CPP_VERSION
from cortexctl.engines.vllm import VllmEngine
from cortexctl.recipes.flags import VLLM_VERSION

ROOT = Path(__file__).resolve().parents[2]
PINS = {"vllm/vllm-openai": f"v{VLLM_VERSION}", "cortex/llamacpp-": LLAMA_CPP_VERSION}


def shipped_images() -> list[tuple[str, str]]:
    found = []
    for path in sorted((ROOT / "bundles").glob("*.yaml")):
        for image in yaml.safe_load(path.read_text())["spec"].get("images") or []:
            found.append((path.name, image))
    for path in sorted((ROOT / "recipes").glob("*.yaml")):
        image = yaml.safe_load(path.read_text())["spec"].get("image")
        if image:
            found.append((path.name, image))
    return found


def test_the_pins_are_the_engines_defaults() -> None:
    assert VllmEngine.default_image == f"vllm/vllm-openai:v{VLLM_VERSION}"


@pytest.mark.parametrize(("where", "image"), shipped_images())
def test_shipped_engine_images_use_the_pinned_versions(where: str, image: str) -> None:
    repo, _, tag = image.rpartition(":")
    for prefix, pinned in PINS.items():
        if repo.startswith(prefix):
            assert tag == pinned, f"{where}: {image} is not the pinned {prefix}…:{pinned}"

"""Engine images named in shipped bundle definitions and recipes carry the engines' own pins.

The pins live in one place per engine (`cortexctl/engines/<name>/pin.py`: the version whose
flags CORTEX checks, and the engine's default image); a bundle that ships another tag would run an
engine whose flags were never checked.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cortexctl.engines.llamacpp.pin import VERSION as LLAMA_CPP_VERSION
from cortexctl.engines.vllm.adapter import VllmEngine
from cortexctl.engines.vllm.pin import VERSION as VLLM_VERSION

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

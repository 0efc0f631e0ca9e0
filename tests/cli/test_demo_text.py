"""What `cortexctl up --demo` prints: names that work and a first example that shows the model working.

The example itself is run against the real model in tests/server/test_demo.py; here, the text.
"""

from __future__ import annotations

import json
import re

import pytest
from rich.console import Console

from cortexctl.cli import daemon as daemon_cli
from cortexctl.core.demo import DEMO_NOTE, DEMO_RECIPE, demo_example
from cortexctl.core.settings import Settings


def test_the_demo_text_names_the_model_both_ways_and_prints_the_greedy_example(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    out = Console(width=200, record=True)
    monkeypatch.setattr(daemon_cli, "console", out)
    demo = {
        "model": DEMO_RECIPE,
        "served_name": "gemma3-270m",
        "engine_url": "http://127.0.0.1:18000",
        "api_key": "sk-cortex-abc",
        "note": DEMO_NOTE,
        "example": demo_example("gemma3-270m"),
    }
    daemon_cli._print_demo(Settings(home=tmp_path), demo)
    text = out.export_text()
    assert f"cortexctl model show {DEMO_RECIPE}" in text and '"gemma3-270m"' in text
    bodies = [json.loads(b) for b in re.findall(r"-d '(\{.*?\})'", text)]
    assert bodies[0] == demo["example"]  # the first example is the greedy, seeded one
    assert bodies[0]["temperature"] == 0 and isinstance(bodies[0]["seed"], int)
    assert "ramble" in DEMO_NOTE

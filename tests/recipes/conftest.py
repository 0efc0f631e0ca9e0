"""Fixtures for recipe tests: a valid recipe per engine, and a writer for recipe files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def write_recipe(tmp_path: Path) -> Callable[..., Path]:
    def write(text: str, name: str = "recipe.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write

"""One size convention (core/sizes.py): binary units however they are spelled."""

from __future__ import annotations

import pytest

from cortexctl.core.errors import RecipeError
from cortexctl.core.sizes import parse_size
from cortexctl.engines.base import parse_memory

GiB = 1024**3


def test_every_spelling_of_a_unit_is_binary() -> None:
    assert parse_size("8G") == parse_size("8GB") == parse_size("8GiB") == parse_size(" 8 gib ") == 8 * GiB
    assert parse_size("512m") == parse_size("512MiB") == 512 * 1024**2
    assert parse_size("1.5k") == 1536
    assert parse_size("1000000") == parse_size("1000000b") == 1_000_000
    assert parse_size("2T") == 2 * 1024**4


@pytest.mark.parametrize("text", ["lots", "", "-1G", "0", "8 GiBs", "8XB", "1e9"])
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="cannot read .* as a size"):
        parse_size(text)


def test_recipe_memory_and_vram_read_sizes_the_same_way() -> None:
    from cortexctl.validation.gpus import pretend_gpus

    assert parse_memory("24G") == pretend_gpus(vram="24GB")[0].total_bytes == 24 * GiB
    assert parse_memory(None) is None
    with pytest.raises(RecipeError, match="invalid memory size 'lots'") as exc:
        parse_memory("lots")
    assert exc.value.param == "spec.resources.memory"

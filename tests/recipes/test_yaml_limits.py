"""Every YAML CORTEX reads is parsed in bounded memory and time."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from cortexctl.core.yamldoc import YamlLimits, YamlSyntaxError, load_yaml_file, parse_yaml
from cortexctl.recipes.loader import check_recipe_text

BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *[f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(8)],
    ]
)


def test_alias_bomb_is_refused_fast_and_small() -> None:
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(YamlSyntaxError) as err:
        parse_yaml(BOMB, source="bomb.yaml")
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert "aliases (*a) are not accepted" in err.value.problem and err.value.line == 2
    assert peak < 5 * 2**20 and elapsed < 1.0


def test_a_recipe_with_an_alias_is_a_recipe_error() -> None:
    report = check_recipe_text("apiVersion: &v cortex/v1\nkind: *v\n", source="r.yaml")
    assert [str(p) for p in report.problems] == [
        "r.yaml:2: (document): invalid YAML: aliases (*v) are not accepted; write the value out in full"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: " + "[" * 40 + "]" * 40, "nested deeper than 32 levels"),
        ("a: [" + ",".join(["1"] * 25_000) + "]", "more than 20000 values"),
        ("x: " + "9" * 5000, "invalid YAML value"),
        ("k: v\n" * 60_000, "bytes is more than the 262144 a YAML document may have"),
    ],
)
def test_depth_count_size_and_huge_numbers_are_capped(text: str, expected: str) -> None:
    with pytest.raises(YamlSyntaxError, match=expected):
        parse_yaml(text, source="t.yaml")


def test_limits_are_per_call_and_files_are_read_within_them(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("k: v\n" * 1000)
    assert load_yaml_file(path).data == {"k": "v"}  # duplicates keep the last value (reported elsewhere)
    with pytest.raises(YamlSyntaxError, match="larger than the 100 bytes"):
        load_yaml_file(path, limits=YamlLimits(max_bytes=100))


def test_ordinary_documents_still_parse_with_lines() -> None:
    doc = parse_yaml("a: 1\nb:\n  - x\n  - {c: 2}\n", source="ok.yaml")
    assert doc.data == {"a": 1, "b": ["x", {"c": 2}]}
    assert doc.line_of(("b", 1, "c")) == 4

"""The loader reports every problem as file:line: field: problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from cortexctl.core.errors import RecipeError
from cortexctl.engines.llamacpp.args import LlamaCppArgs
from cortexctl.engines.vllm.args import VllmArgs
from cortexctl.recipes.loader import (
    check_recipe_text,
    load_recipe_file,
    load_recipe_files,
    parse_recipe,
    read_recipe_text,
)
from tests.recipes.recipe_samples import LLAMACPP_RECIPE, VLLM_RECIPE


def problems_of(text: str, source: str = "r.yaml") -> list[str]:
    return [str(p) for p in check_recipe_text(text, source=source).problems]


def test_valid_recipes_parse_with_engine_typed_args() -> None:
    llama = parse_recipe(LLAMACPP_RECIPE.format(args=""), source="a.yaml")
    assert isinstance(llama.spec.args, LlamaCppArgs)
    assert llama.spec.args.context_length == 2048
    assert llama.spec.gpus == "none"
    vllm = parse_recipe(VLLM_RECIPE.format(args=""), source="b.yaml")
    assert isinstance(vllm.spec.args, VllmArgs)
    assert vllm.spec.args.tensor_parallel_size == 2


def test_yaml_syntax_error_names_the_line() -> None:
    text = LLAMACPP_RECIPE.format(args="").replace("  served_name: tiny", "  served_name: [tiny")
    (problem,) = problems_of(text)
    assert problem.startswith("r.yaml:8: (document): invalid YAML")


def test_a_document_that_is_not_a_mapping() -> None:
    assert problems_of("- a\n- b\n") == [
        "r.yaml:1: (document): a recipe is a mapping with apiVersion, kind, metadata and spec; this is a list"
    ]
    assert "this is an empty file" in problems_of("")[0]


def test_wrong_api_version_and_kind_say_what_is_expected() -> None:
    text = (
        LLAMACPP_RECIPE.format(args="")
        .replace("cortex/v1", "cortex/v2")
        .replace("kind: Recipe", "kind: Model")
    )
    assert problems_of(text) == [
        "r.yaml:1: apiVersion: expected 'cortex/v1', got 'cortex/v2'",
        "r.yaml:2: kind: expected 'Recipe', got 'Model'",
    ]
    missing = LLAMACPP_RECIPE.format(args="").replace("apiVersion: cortex/v1\n", "")
    assert problems_of(missing) == [
        "r.yaml:1: apiVersion: missing; a recipe starts with `apiVersion: cortex/v1`"
    ]


def test_unknown_field_lists_the_accepted_ones_and_a_close_match() -> None:
    text = LLAMACPP_RECIPE.format(args="").replace("  served_name: tiny", "  served_name: tiny\n  replica: 2")
    (problem,) = problems_of(text)
    assert problem.startswith(
        "r.yaml:8: spec.replica: unknown field (did you mean 'replicas'?); accepted: args, "
    )
    assert "served_name" in problem and "request_defaults" in problem


@pytest.mark.parametrize(
    ("template", "engine_field", "other_engine_field"),
    [(LLAMACPP_RECIPE, "context_length", "max_model_len"), (VLLM_RECIPE, "max_model_len", "context_length")],
)
def test_unknown_arg_lists_the_engines_own_fields(
    template: str, engine_field: str, other_engine_field: str
) -> None:
    (problem,) = problems_of(template.format(args="    ctx: 4096"))
    line = template.split("{args}")[0].count("\n") + 1
    assert problem.startswith(f"r.yaml:{line}: spec.args.ctx: unknown field")
    accepted = problem.split("accepted: ", 1)[1].split(", ")
    assert engine_field in accepted and other_engine_field not in accepted


def test_wrong_types_and_bounds_name_the_field_and_line() -> None:
    text = LLAMACPP_RECIPE.format(args="    gpu_layers: lots\n  replicas: 0\n  gpus: some")
    assert problems_of(text) == [
        "r.yaml:13: spec.args.gpu_layers: must be a number of layers or 'all'",
        "r.yaml:14: spec.replicas: Input should be greater than or equal to 1",
        "r.yaml:15: spec.gpus: must be 'all', 'none' or a list of GPU indices such as [0, 1]",
    ]


def test_missing_required_field_points_at_its_parent() -> None:
    text = LLAMACPP_RECIPE.format(args="").replace("  served_name: tiny\n", "")
    assert problems_of(text) == ["r.yaml:5: spec.served_name: Field required"]


def test_patterns_are_explained_not_quoted() -> None:
    text = LLAMACPP_RECIPE.format(args="").replace("name: tiny-llama", "name: Tiny_Llama")
    text = text.replace("    path: tiny.gguf", "    path: tiny.gguf\n    sha256: ABC")
    assert problems_of(text) == [
        "r.yaml:4: metadata.name: must be 1-64 lowercase letters, digits, '.', '_' or '-', "
        "starting and ending with a letter or digit",
        "r.yaml:10: spec.model.sha256: must be 64 lowercase hex digits (what sha256sum prints)",
    ]


def test_unknown_engine_is_one_error_without_args_noise() -> None:
    text = LLAMACPP_RECIPE.format(args="    ctx: 1").replace("engine: llamacpp", "engine: tgi")
    assert problems_of(text) == [
        "r.yaml:6: spec.engine: unknown engine 'tgi': use one of llamacpp, vllm, remote"
    ]


def test_duplicate_keys_are_reported() -> None:
    text = LLAMACPP_RECIPE.format(args="    parallel: 4")
    assert problems_of(text) == [
        "r.yaml:13: spec.args.parallel: duplicate key (first given on line 12); keep one"
    ]


def test_every_problem_is_listed_in_one_error(write_recipe) -> None:
    text = LLAMACPP_RECIPE.format(args="    bogus: 1\n    extra_args: ['--ctx-sise', '1']").replace(
        "v1", "v9"
    )
    path = write_recipe(text)
    with pytest.raises(RecipeError) as info:
        load_recipe_file(path)
    lines = info.value.message.splitlines()
    assert lines[0] == f"{path}:1: apiVersion: expected 'cortex/v1', got 'cortex/v9'"
    assert lines[1].startswith(f"{path}:13: spec.args.bogus: unknown field")
    assert lines[2].startswith(f"{path}:14: spec.args.extra_args[0]: unknown flag --ctx-sise")
    assert len(lines) == 3
    assert [p["line"] for p in info.value.details["problems"]] == [1, 13, 14]
    assert info.value.status_code == 400


def test_semantic_problems_come_with_lines() -> None:
    text = VLLM_RECIPE.format(args="").replace("  gpus: [0, 1]\n", "")
    (problem,) = problems_of(text)
    assert problem.startswith("r.yaml:5: spec.gpus: vLLM needs a GPU")  # absent: its parent's line


def test_load_recipe_files_refuses_duplicate_names(write_recipe) -> None:
    a = write_recipe(LLAMACPP_RECIPE.format(args=""), "a.yaml")
    b = write_recipe(
        LLAMACPP_RECIPE.format(args="").replace("served_name: tiny", "served_name: other"), "b.yaml"
    )
    with pytest.raises(RecipeError) as info:
        load_recipe_files([a, b])
    assert (
        info.value.message
        == f"{b}:1: metadata.name: 'tiny-llama' is also used by {a}; each recipe needs its own"
    )
    c = write_recipe(VLLM_RECIPE.format(args=""), "c.yaml")
    assert [r.name for r in load_recipe_files([a, c])] == ["tiny-llama", "big-vllm"]


def test_unreadable_files_are_recipe_errors(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="no such recipe file"):
        load_recipe_file(tmp_path / "nope.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(RecipeError, match="not UTF-8"):
        load_recipe_file(bad)


def test_read_recipe_text_keeps_the_exact_bytes(tmp_path: Path) -> None:
    raw = LLAMACPP_RECIPE.format(args="    # a comment\r\n").replace("\n", "\r\n").encode()
    path = tmp_path / "crlf.yaml"
    path.write_bytes(raw)
    assert read_recipe_text(path).encode() == raw
    assert load_recipe_file(path).name == "tiny-llama"

"""Every recipe in recipes/ validates; the demo recipe is what the demo needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from cortexctl.engines.llamacpp.args import LlamaCppArgs
from cortexctl.engines.vllm.args import VllmArgs
from cortexctl.recipes.loader import check_recipe_file, load_recipe_file, load_recipe_files

RECIPES = sorted((Path(__file__).resolve().parents[2] / "recipes").glob("*.yaml"))


def test_the_expected_recipes_ship() -> None:
    names = {p.name for p in RECIPES}
    assert {
        "gemma3-270m-cpu.yaml",
        "llama3.1-8b-instruct-vllm.yaml",
        "qwen2.5-7b-instruct-awq-vllm.yaml",
        "qwen2.5-7b-instruct-q4km-llamacpp-gpu.yaml",
        "bge-m3-embed-vllm.yaml",
    } <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_shipped_recipe_validates(path: Path) -> None:
    report = check_recipe_file(path)
    assert report.problems == []
    assert report.recipe is not None and path.name == f"{report.recipe.name}.yaml"


def test_shipped_recipes_have_distinct_names() -> None:
    assert len(load_recipe_files(RECIPES)) == len(RECIPES)


def test_demo_recipe() -> None:
    recipe = load_recipe_file(RECIPES[0].parent / "gemma3-270m-cpu.yaml")
    spec = recipe.spec
    assert spec.engine == "llamacpp" and spec.gpus == "none" and spec.served_name == "gemma3-270m"
    assert spec.model.path == "gemma-3-270m-q4_k_m.gguf"
    assert spec.model.sha256 == "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
    assert isinstance(spec.args, LlamaCppArgs) and spec.args.gpu_layers == 0
    assert spec.args.chat_template == "gemma"
    assert spec.request_defaults.max_tokens is not None


def test_there_is_an_embedding_recipe_and_gpu_recipes() -> None:
    recipes = load_recipe_files(RECIPES)
    embed = [r for r in recipes if isinstance(r.spec.args, VllmArgs) and r.spec.args.task == "embed"]
    assert embed
    assert sum(r.spec.gpus != "none" for r in recipes) >= 4

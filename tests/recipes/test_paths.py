"""Files a recipe names stay in the model store, and refusals are no existence oracle."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cortexctl.core.errors import RecipeError
from cortexctl.core.settings import Settings
from cortexctl.engines.llamacpp.adapter import LlamaCppEngine
from cortexctl.recipes.loader import check_recipe_text, parse_recipe
from cortexctl.recipes.paths import confine, store_roots
from tests.recipes.recipe_samples import LLAMACPP_RECIPE


def recipe_with(model: str = "tiny.gguf", template: str | None = None) -> str:
    text = LLAMACPP_RECIPE.format(args=f"    chat_template_file: {template}" if template else "")
    return text.replace("path: tiny.gguf", f"path: {model}")


def problems(text: str, roots: tuple[Path, ...]) -> list[str]:
    return [f"{p.field}: {p.problem}" for p in check_recipe_text(text, source="r.yaml", roots=roots).problems]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    store = tmp_path / "home" / "models"
    store.mkdir(parents=True)
    (store / "tiny.gguf").write_bytes(b"GGUF")
    (store / "chat.jinja").write_text("{{ messages }}")
    secret_dir = tmp_path / "outside"
    secret_dir.mkdir()
    (secret_dir / "secret.txt").write_text("root:x:0:0")
    os.symlink(secret_dir / "secret.txt", store / "link-out.jinja")  # a link in the store pointing out
    os.symlink(secret_dir / "missing.txt", store / "link-missing.jinja")  # … and a dangling one
    return store


# (present, absent) pairs: the refusal must read the same for both, apart from the quoted value.
PAIRS = [
    ("../../outside/secret.txt", "../../outside/missing.txt"),
    ("../outside-of-home", "../nothing-here"),
    ("/etc/hostname", "/etc/no-such-file-cortex-test"),
    ("link-out.jinja", "link-missing.jinja"),
]


@pytest.mark.parametrize(("present", "absent"), PAIRS)
@pytest.mark.parametrize("field", ["model", "template"])
def test_out_of_store_paths_are_refused_with_the_same_words(
    store: Path, present: str, absent: str, field: str
) -> None:
    roots = (store,)
    said = []
    for value in (present, absent):
        text = recipe_with(model=value) if field == "model" else recipe_with(template=value)
        (problem,) = problems(text, roots)
        assert "is outside the model store" in problem
        said.append(problem.replace(repr(value), "<VALUE>"))
    assert said[0] == said[1]


def test_paths_inside_the_store_or_an_operator_root_pass(store: Path, tmp_path: Path) -> None:
    assert problems(recipe_with(template="chat.jinja"), (store,)) == []
    assert problems(recipe_with(model=str(store / "tiny.gguf")), (store,)) == []
    assert problems(recipe_with(model="sub/../tiny.gguf"), (store,)) == []
    extra = tmp_path / "nfs-models"
    extra.mkdir()
    (extra / "big.gguf").write_bytes(b"GGUF")
    assert problems(recipe_with(model=str(extra / "big.gguf")), (store,))  # not a root: refused
    assert problems(recipe_with(model=str(extra / "big.gguf")), (store, extra)) == []
    # inside the store, a missing file is reported as such (the store is the operator's own)
    (missing,) = problems(recipe_with(template="nope.jinja"), (store,))
    assert "file not found in the model store: nope.jinja" in missing


def test_prefix_siblings_and_nul_bytes_are_not_inside(store: Path) -> None:
    sibling = store.parent / "models-evil"
    sibling.mkdir()
    assert confine(str(sibling / "x.gguf"), (store,)) is None
    assert confine("tiny.gguf\x00../../etc/passwd", (store,)) is None


def test_settings_roots_and_launch_check_again(tmp_path: Path) -> None:
    """A stored recipe is re-read without roots; the launch refuses it all the same."""
    settings = Settings(home=tmp_path / "home", model_roots=[tmp_path / "extra"])
    assert store_roots(settings) == (tmp_path / "home" / "models", tmp_path / "extra")
    recipe = parse_recipe(recipe_with(model="../../../etc/hostname"), source="stored")  # no roots: parses
    with pytest.raises(RecipeError) as err:
        LlamaCppEngine().launch_spec(recipe, model_id=1, replica_index=0, port=18001, settings=settings)
    assert "is outside the model store" in err.value.message
    with pytest.raises(ValueError, match="not an absolute path"):
        Settings(home=tmp_path / "home", model_roots=["relative/dir"])

"""Export: sources from definitions, model folders, python-assembled models, checks, no partial files."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

from cortexctl.bundles.container import read_head
from cortexctl.bundles.definition import load_definition
from cortexctl.bundles.errors import BundleError
from cortexctl.bundles.install import import_bundle
from cortexctl.bundles.manifest import check_name, check_relative_path
from cortexctl.core.settings import Settings
from cortexctl.engines.vllm.pin import VERSION as VLLM_VERSION
from tests.bundles.helpers import RECIPE

REPO = Path(__file__).resolve().parents[2]


def test_python_model_source_and_model_folder(
    make_bundle: Any, sources: Path, settings: Settings, engine_cache: Path
) -> None:
    folder = sources / "qwen-tiny"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "sub" / "model.safetensors").write_bytes(b"\1" * 1000)
    (folder / ".gitattributes").write_text("hidden files are not shipped")
    result = make_bundle(
        models=[
            {"name": "model.gguf", "python": "tests.bundles.helpers:assemble_test_model"},
            {"name": "qwen-tiny", "path": "qwen-tiny"},
        ]
    )
    names = {i.name for i in read_head(result.path).manifest.items if i.kind == "model"}
    assert names == {"model.gguf", "qwen-tiny/config.json", "qwen-tiny/sub/model.safetensors"}
    import_bundle(result.path, settings=settings, engine_cache_dir=engine_cache, allow_unsigned=True)
    assert (settings.models_dir / "qwen-tiny" / "sub" / "model.safetensors").read_bytes() == b"\1" * 1000
    assert (settings.models_dir / "model.gguf").read_bytes().startswith(b"GGUF")


def test_recipe_pinned_to_other_bytes_is_refused(make_bundle: Any, sources: Path, tmp_path: Path) -> None:
    pinned = RECIPE.format(name="demo", model="model.gguf").replace(
        "    path: model.gguf\n", f"    path: model.gguf\n    sha256: '{'0' * 64}'\n"
    )
    (sources / "demo.yaml").write_text(pinned)
    with pytest.raises(BundleError, match="spec.model.sha256 0+ does not match the bundled model model.gguf"):
        make_bundle()
    assert not list((tmp_path / "out").iterdir())  # neither the bundle nor the work dir is left


def test_recipe_pinned_to_the_bundled_bytes_is_accepted(make_bundle: Any, sources: Path) -> None:
    digest = hashlib.sha256((sources / "model.gguf").read_bytes()).hexdigest()
    text = RECIPE.format(name="demo", model="model.gguf").replace(
        "    path: model.gguf\n", f"    path: model.gguf\n    sha256: {digest}\n"
    )
    (sources / "demo.yaml").write_text(text)
    assert make_bundle().manifest.items


def test_invalid_recipe_and_missing_sources_are_named(make_bundle: Any, sources: Path) -> None:
    (sources / "demo.yaml").write_text(RECIPE.format(name="demo", model="model.gguf") + "  bogus: 1\n")
    with pytest.raises(Exception, match="demo.yaml:.*bogus"):
        make_bundle()
    (sources / "demo.yaml").write_text(RECIPE.format(name="demo", model="model.gguf"))
    with pytest.raises(BundleError, match="model nope.gguf: .*nope.gguf does not exist"):
        make_bundle(models=[{"name": "nope.gguf", "path": "nope.gguf"}])
    with pytest.raises(BundleError, match="engine binary llama-server: .*does not exist"):
        make_bundle(engine_binaries=[{"name": "llama-server", "version": "9.9"}])  # not in the engine cache


def test_images_need_a_reachable_docker(make_bundle: Any) -> None:
    def unreachable() -> Any:
        import docker

        return docker.DockerClient(base_url="unix:///nonexistent/docker.sock")

    with pytest.raises(
        BundleError, match="the definition lists images, but the Docker Engine is not reachable"
    ):
        make_bundle(images=["cortex/llamacpp:1"], docker_factory=unreachable)


@pytest.mark.parametrize("name", ["cpu-demo.yaml", "gpu-vllm.yaml"])
def test_shipped_definitions_are_valid(name: str) -> None:
    definition = load_definition(REPO / "bundles" / name)
    assert definition.metadata.name == name.removesuffix(".yaml")
    assert definition.spec.recipes


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("../x", "'..'"),
        ("a/../../x", "'..'"),
        ("/etc/passwd", "absolute path"),
        ("a//b", "empty"),
        ("a\\b", "backslash"),
        ("./a", "'.'"),
        ("a/.hidden", "characters outside"),
        ("a/b c", "characters outside"),
    ],
)
def test_unsafe_paths_are_refused(path: str, problem: str) -> None:
    with pytest.raises(BundleError, match=problem):
        check_relative_path(path, what="item")


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("image", "Repo/UPPER:1"),
        ("image", "a/../b:1"),
        ("engine-binary", "llama-server"),
        ("engine-binary", "../bin/sh"),
        ("recipe", "a/b.yaml"),
        ("recipe", "x.txt"),
        ("wheelhouse", "evil.sh"),
        ("model", "../../etc/shadow"),
    ],
)
def test_bad_item_names_are_refused(kind: str, name: str) -> None:
    with pytest.raises(BundleError, match="bundle refused"):
        check_name(kind, name)


def test_model_file_and_folder_of_the_same_name_conflict() -> None:
    from cortexctl.bundles.manifest import Item, check_items

    items = [
        Item(kind="model", name=n, path=f"models/{n}", size=1, sha256="0" * 64)
        for n in ("qwen", "qwen/config.json")
    ]
    with pytest.raises(BundleError, match="conflicts with model 'qwen'"):
        check_items(items)


VLLM_RECIPE = """\
apiVersion: cortex/v1
kind: Recipe
metadata: {{name: chat}}
spec:
  engine: vllm
  served_name: chat
  model: {{path: some-model}}
  gpus: [0]
{extra}"""


@pytest.mark.parametrize(
    ("extra", "images", "missing"),
    [
        ("", [], f"vllm/vllm-openai:v{VLLM_VERSION}"),  # the pinned image, not carried
        ("", ["vllm/vllm-openai:v0.18.0"], f"vllm/vllm-openai:v{VLLM_VERSION}"),  # another tag is not it
        (
            "  image: registry.local/vllm:custom\n",
            [f"vllm/vllm-openai:v{VLLM_VERSION}"],
            "registry.local/vllm:custom",
        ),
    ],
)
def test_vllm_recipe_needing_an_image_the_bundle_lacks_is_refused(
    make_bundle: Any, sources: Path, tmp_path: Path, extra: str, images: list[str], missing: str
) -> None:
    (sources / "chat.yaml").write_text(VLLM_RECIPE.format(extra=extra))

    def no_docker() -> Any:
        raise AssertionError("refused before any image is saved")

    with pytest.raises(
        BundleError, match=f"recipe chat.yaml runs {re.escape(missing)}, which the bundle does not carry"
    ):
        make_bundle(recipes=["demo.yaml", "chat.yaml"], images=images, docker_factory=no_docker)
    assert not list((tmp_path / "out").iterdir())


def test_process_runtime_vllm_recipe_needs_no_image(make_bundle: Any, sources: Path) -> None:
    (sources / "chat.yaml").write_text(VLLM_RECIPE.format(extra="  runtime: process\n"))
    assert make_bundle(recipes=["demo.yaml", "chat.yaml"]).manifest.items


def test_shipped_gpu_bundle_carries_its_vllm_recipes_images() -> None:
    from cortexctl.bundles.export import check_recipe_image
    from cortexctl.bundles.recipes_adapter import load_recipe

    definition = load_definition(REPO / "bundles" / "gpu-vllm.yaml")
    assert f"vllm/vllm-openai:v{VLLM_VERSION}" in definition.spec.images
    for rel in definition.spec.recipes:
        path = (REPO / "bundles" / rel).resolve()
        check_recipe_image(load_recipe(path), path.name, definition.spec.images)

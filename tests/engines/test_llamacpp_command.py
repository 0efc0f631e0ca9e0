from __future__ import annotations

from pathlib import Path

import pytest

from cortexctl.core.errors import EngineError, RecipeError
from cortexctl.core.settings import Settings
from cortexctl.engines.base import Mount, new_engine_key
from cortexctl.engines.llamacpp.adapter import LlamaCppEngine
from cortexctl.engines.registry import get_engine
from cortexctl.recipes.flags import accepted_flags, flag_data
from tests.support.engine_fixtures import make_recipe


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_cpu_demo_recipe_command_line(engine_settings: Settings, tmp_path: Path) -> None:
    fake_bin = tmp_path / "llama-server"
    fake_bin.write_text("#!/bin/sh\n")
    fake_bin.chmod(0o755)
    settings = engine_settings.model_copy(update={"llama_server_bin": fake_bin})
    recipe = make_recipe(
        "llamacpp", "gemma3/gemma-3-270m-it-Q4_K_M.gguf", served_name="gemma3-270m",
        args={"context_length": 8192, "parallel": 4, "chat_template": "gemma", "threads": 2},
    )  # fmt: skip
    spec = LlamaCppEngine().launch_spec(recipe, model_id=7, replica_index=0, port=18007, settings=settings)

    model = str(settings.models_dir / "gemma3/gemma-3-270m-it-Q4_K_M.gguf")
    assert spec.argv[:3] == [str(fake_bin), "-m", model]
    assert spec.name == "llamacpp-model-7"
    assert (flag(spec.argv, "--host"), flag(spec.argv, "--port")) == ("127.0.0.1", "18007")
    assert flag(spec.argv, "--alias") == "gemma3-270m"
    assert (flag(spec.argv, "-c"), flag(spec.argv, "-np"), flag(spec.argv, "-ngl")) == ("8192", "4", "0")
    i = spec.argv.index("--chat-template")
    assert spec.argv[i - 1 : i + 2] == ["--no-jinja", "--chat-template", "gemma"]  # names need Jinja off
    assert flag(spec.argv, "-t") == "2"
    assert "--metrics" in spec.argv and "--embeddings" not in spec.argv
    # the container sees the model where it is mounted, read-only
    assert spec.container_argv[:2] == ["-m", "/models/gemma-3-270m-it-Q4_K_M.gguf"]
    assert spec.container_argv == [spec.argv[1], spec.container_argv[1], *spec.argv[3:]]
    assert spec.mounts == (Mount(Path(model), "/models/gemma-3-270m-it-Q4_K_M.gguf", True),)
    assert spec.image == "cortex/llamacpp-cpu:0.3.36"
    assert spec.gpus == "none" and spec.env == {}
    assert spec.labels == {
        "cortex.managed": "true", "cortex.model-id": "7", "cortex.replica": "0", "cortex.engine": "llamacpp",
        "cortex.served-name": "gemma3-270m", "cortex.port": "18007",
    }  # fmt: skip
    assert spec.log_file == settings.home / "logs" / "engines" / "llamacpp-model-7.log"


def test_gpu_embedding_recipe(engine_settings: Settings) -> None:
    recipe = make_recipe(
        "llamacpp", "/srv/models/nomic.gguf", served_name="nomic-embed", gpus=[1, 3],
        image="registry.local/ll:1",
        resources={"memory": "8GiB"},
        args={"gpu_layers": "all", "embeddings": True, "pooling": "mean", "cache_type_k": "q8_0",
              "flash_attn": "on", "extra_args": ["--rope-scaling", "yarn"]},
    )  # fmt: skip
    settings = engine_settings.model_copy(update={"model_roots": [Path("/srv/models")]})  # an operator root
    spec = LlamaCppEngine().launch_spec(recipe, model_id=3, replica_index=2, port=18100, settings=settings)
    assert spec.name == "llamacpp-model-3-2"
    assert spec.argv[1:3] == ["-m", "/srv/models/nomic.gguf"]
    assert flag(spec.argv, "-ngl") == "all"
    assert "--embeddings" in spec.argv and flag(spec.argv, "--pooling") == "mean"
    assert flag(spec.argv, "-ctk") == "q8_0" and flag(spec.argv, "-fa") == "on"
    assert spec.argv[-2:] == ["--rope-scaling", "yarn"]
    assert spec.gpus == (1, 3) and spec.env["CUDA_VISIBLE_DEVICES"] == "1,3"
    assert spec.image == "registry.local/ll:1"
    assert spec.memory_limit_bytes == 8 * 1024**3
    assert spec.labels["cortex.replica"] == "2"


def test_chat_template_file_is_mounted(engine_settings: Settings) -> None:
    recipe = make_recipe("llamacpp", "m.gguf", args={"chat_template_file": "templates/chatml.jinja"})
    spec = LlamaCppEngine().launch_spec(
        recipe, model_id=1, replica_index=0, port=18001, settings=engine_settings
    )
    host_tpl = engine_settings.models_dir / "templates/chatml.jinja"
    assert flag(spec.argv, "--chat-template-file") == str(host_tpl)
    assert flag(spec.container_argv, "--chat-template-file") == "/templates/chatml.jinja"
    assert Mount(host_tpl, "/templates/chatml.jinja") in spec.mounts


def test_engine_key_is_in_the_environment_never_in_argv(engine_settings: Settings) -> None:
    recipe = make_recipe("llamacpp", "m.gguf")
    key = new_engine_key()
    spec = LlamaCppEngine().launch_spec(
        recipe, model_id=1, replica_index=0, port=18001, settings=engine_settings, api_key=key
    )
    assert spec.env["LLAMA_API_KEY"] == key  # what the pinned llama-server reads for --api-key
    assert flag_data("llamacpp")["options"] and accepted_flags("llamacpp")["--api-key"].env == "LLAMA_API_KEY"
    assert not any(key in a for a in spec.argv + spec.container_argv)
    assert key not in repr(spec)
    again = LlamaCppEngine().launch_spec(
        recipe, model_id=1, replica_index=0, port=18001, settings=engine_settings
    )
    assert "LLAMA_API_KEY" not in again.env and again.api_key is None  # dry runs carry no key
    assert new_engine_key() != key


def test_missing_binary_does_not_block_the_spec(
    engine_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "/nonexistent")
    monkeypatch.setenv("PATH", "/nonexistent")
    spec = LlamaCppEngine().launch_spec(
        make_recipe("llamacpp", "m.gguf"), model_id=1, replica_index=0, port=18001, settings=engine_settings
    )
    assert spec.argv[0] == "llama-server"  # the process runtime reports it; docker does not need it


def test_wrong_engine_and_bad_memory(engine_settings: Settings) -> None:
    with pytest.raises(EngineError):
        LlamaCppEngine().launch_spec(
            make_recipe("vllm", "m"), model_id=1, replica_index=0, port=1, settings=engine_settings
        )
    with pytest.raises(RecipeError, match="invalid memory size") as exc:
        LlamaCppEngine().launch_spec(
            make_recipe("llamacpp", "m.gguf", resources={"memory": "lots"}),
            model_id=1, replica_index=0, port=1, settings=engine_settings,
        )  # fmt: skip
    assert exc.value.fix and "8GiB" in exc.value.fix


def test_get_engine() -> None:
    assert get_engine("llamacpp").name == "llamacpp"
    assert get_engine("vllm").name == "vllm"
    with pytest.raises(RecipeError, match="unknown engine 'tgi'") as exc:
        get_engine("tgi")
    assert exc.value.fix and "llamacpp" in exc.value.fix

"""Adding an engine is one package: a toy third engine (tests/toy_engine/, registered here and
named nowhere else) is checked by recipes, validated, launched by the supervisor as a process
(the OpenAI-server test double) and routed by the gateway, without an edit to cortexctl or the
server."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gateway_support import free_port, start_daemon
from sqlalchemy import select

from cortex_server.db.models import Model
from cortex_server.services.lifecycle import DesiredState, State
from cortexctl.core.errors import RecipeError
from cortexctl.core.settings import Settings
from cortexctl.engines.registry import engine_names, get_engine, register_engine, unregister_engine
from cortexctl.recipes.loader import check_recipe_text, parse_recipe
from cortexctl.runtimes.process import ProcessRuntime
from cortexctl.validation import validate
from tests.toy_engine import ENGINE
from tests.toy_engine.args import ToyArgs
from tests.validation.hfmodels import dense_tensors, write_hf_folder

TOY_RECIPE = """\
apiVersion: cortex/v1
kind: Recipe
metadata:
  name: toy-chat
spec:
  engine: toy
  served_name: toy-chat
  model:
    path: toy-model
  runtime: process
  args:
    max_model_len: {max_model_len}
    extra_args: {extra_args}
  timeouts:
    load_s: 60
"""
CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
    "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "vocab_size": 256, "max_position_embeddings": 2048, "torch_dtype": "float16",
}  # fmt: skip


def problems_of(text: str) -> list[str]:
    return [str(p) for p in check_recipe_text(text, source="toy.yaml").problems]


def recipe_text(max_model_len: int = 512, extra_args: str = '["--seed", "7"]') -> str:
    return TOY_RECIPE.format(max_model_len=max_model_len, extra_args=extra_args)


@pytest.fixture
def toy() -> Iterator[None]:
    register_engine(ENGINE)
    try:
        yield
    finally:
        unregister_engine(ENGINE.name)


def write_model(models_dir: Path) -> None:
    write_hf_folder(models_dir / "toy-model", CONFIG, dense_tensors(CONFIG, "F16"), shards=1)


def test_an_unregistered_engine_is_a_clear_error() -> None:
    assert "toy" not in engine_names()
    (problem,) = problems_of(recipe_text())
    assert problem.endswith("spec.engine: unknown engine 'toy': use one of llamacpp, vllm, remote")
    with pytest.raises(RecipeError, match="unknown engine 'toy'"):
        get_engine("toy")


def test_recipes_check_the_toy_engine_through_its_package(toy: None) -> None:
    recipe = parse_recipe(recipe_text(), source="toy.yaml")
    assert isinstance(recipe.spec.args, ToyArgs) and recipe.spec.args.max_model_len == 512
    (semantic,) = problems_of(recipe_text(max_model_len=500))
    assert semantic.endswith("spec.args.max_model_len: the toy server wants a multiple of 16")  # its check
    problems = "\n".join(problems_of(recipe_text(extra_args='["--log-file", "/tmp/x", "--sede", "1"]')))
    assert "--log-file is not allowed in a recipe: the daemon manages engine logs" in problems  # its REFUSED
    assert "unknown flag --sede for toy-server (toy 1.0); close matches: --seed" in problems  # its flag data


def test_validation_asks_the_toy_engine(toy: None, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    write_model(settings.models_dir)
    report = validate(parse_recipe(recipe_text(), source="toy.yaml"), settings=settings, gpus=[])
    assert report.ok, report.to_json()
    assert report.breakdown is not None and report.breakdown.engine == "toy"
    assert {c.name for c in report.checks} >= {"model_format", "toy", "context_length", "fits_host_ram"}


@pytest.mark.slow
def test_the_supervisor_launches_it_and_the_gateway_routes_to_it(toy: None, tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_model(home / "models")
    low = 30000 + os.getpid() % 500 * 2
    daemon = start_daemon(
        home, supervise=True, runtime="process", health_poll_interval_s=0.2, engine_port_range=(low, low + 50)
    )
    admin = {"Authorization": f"Bearer {daemon.api_key}"}
    base = daemon.settings.url
    try:
        created = httpx.post(
            f"{base}/admin/models", json={"yaml": recipe_text(), "start": True}, headers=admin
        )
        assert created.status_code == 201, created.text
        deadline = time.monotonic() + 60
        while (model := httpx.get(f"{base}/admin/models/toy-chat", headers=admin).json())[
            "state"
        ] != "running":
            assert model["state"] != "failed" and time.monotonic() < deadline, model
            time.sleep(0.2)
        (replica,) = model["replicas"]
        assert replica["pid"] and model["runtime"] == "process"
        with daemon.ctx.session_factory() as session:  # the supervisor took the start request
            row = session.scalar(select(Model).where(Model.name == "toy-chat"))
            assert row is not None and row.start_requested_at is None
            assert row.desired_state == DesiredState.RUNNING and row.state == State.RUNNING

        body = {"model": "toy-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
        answer = httpx.post(f"{base}/v1/chat/completions", json=body, headers=admin, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["usage"]["completion_tokens"] == 3
        listed = httpx.get(f"{base}/v1/models", headers=admin).json()["data"]
        assert "toy-chat" in {m["id"] for m in listed}

        stopped = httpx.post(f"{base}/admin/models/toy-chat/stop", headers=admin)
        assert stopped.status_code == 200, stopped.text
    finally:
        daemon.stop()
        runtime = ProcessRuntime(settings=Settings(home=home))
        for leftover in runtime.adopt():
            runtime.stop(leftover, timeout_s=5)
    assert free_port()  # the test's ports came back

"""Tool calling, images, JSON output and embeddings on the real llama-server, through the
real gateway, with the official `openai` SDK: the examples of recipes/README.md.

Three engines run the demo model (gemma3-270m) from recipes, command lines built by the
llama.cpp adapter: `gemma` (a named template: Jinja off, like the demo), `chatml-jinja`
(`chat_template: chatml` + `jinja: true`) and `file-jinja` (a Jinja `chat_template_file`).
What a model cannot do is a 400 (`BadRequestError`) with the engine's reason; what a
recipe switches on works. Tool calling on a 270M model proves the request and response
shapes, not the model's skill; requests are greedy and seeded, so answers repeat.
"""

from __future__ import annotations

import base64
import json
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from gateway_support import LiveDaemon, start_daemon

from cortex_server.services.registry import ReplicaEndpoint, ServedModel
from cortexctl.core.settings import Settings
from cortexctl.engines.llamacpp.adapter import LlamaCppEngine
from cortexctl.runtimes.process import ProcessRuntime
from tests.support.engine_fixtures import free_tcp_port, gemma_gguf, llama_server_bin, make_recipe  # noqa: F401 - fixtures

pytestmark = [pytest.mark.llama, pytest.mark.slow]

GREEDY: dict[str, Any] = {"temperature": 0, "seed": 42}
HELLO = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "enum": ["Paris", "Berlin"]}},
            "required": ["city"],
        },
    },
}
# A minimal Jinja chat template (what a model's own tokenizer_config.json would carry).
TOOLS_TEMPLATE = (
    "{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else 'user' }}\n"
    "{{ m['content'] }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
RECIPES: dict[str, dict[str, Any]] = {
    "gemma": {"chat_template": "gemma"},
    "chatml-jinja": {"chat_template": "chatml", "jinja": True},
    "file-jinja": {"chat_template_file": "tools.jinja"},
}


def png_1x1() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0\xff\0\0"))


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory,
    gemma_gguf: Path,  # noqa: F811 - the fixture
    llama_server_bin: Path,  # noqa: F811 - the fixture
) -> Iterator[Any]:
    home = tmp_path_factory.mktemp("llama-features")
    # the shared model cache holding gemma is an operator-listed model root
    settings = Settings(
        home=home / "engines", llama_server_bin=llama_server_bin, model_roots=[gemma_gguf.parent]
    )
    settings.models_dir.mkdir(parents=True)
    (settings.models_dir / "tools.jinja").write_text(TOOLS_TEMPLATE)
    runtime = ProcessRuntime(settings=settings)
    daemon = start_daemon(home / "daemon")
    handles = []
    try:
        for i, (name, args) in enumerate(RECIPES.items()):
            recipe = make_recipe(
                "llamacpp", str(gemma_gguf), served_name=name,
                args={"context_length": 1024, "parallel": 1, "threads": 1, **args},
            )  # fmt: skip
            port = free_tcp_port()
            spec = LlamaCppEngine().launch_spec(
                recipe, model_id=i, replica_index=0, port=port, settings=settings
            )
            handles.append(runtime.start(spec))
            wait_healthy(f"http://127.0.0.1:{port}", runtime, handles[-1])
            daemon.ctx.registry.put(served(name, recipe, port))
        yield daemon
    finally:
        daemon.stop()
        for handle in handles:
            runtime.stop(handle, timeout_s=5)


def served(name: str, recipe: Any, port: int) -> ServedModel:
    """What the supervisor publishes for a running recipe (services/supervisor.py: _publish)."""
    args = recipe.spec.engine_args()
    model = ServedModel(
        served_name=name,
        engine="llamacpp",
        state="running",
        recipe=recipe.name,
        serves_embeddings=args.serves_embeddings(),
        embeddings_setting=type(args).EMBEDDINGS_SETTING,
        replicas=[
            ReplicaEndpoint(model_id=1, model_name=name, replica_index=0, base_url=f"http://127.0.0.1:{port}")
        ],
    )
    model.replicas[0].healthy = True
    return model


def wait_healthy(base: str, runtime: ProcessRuntime, handle: Any) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert runtime.status(handle).alive, runtime.logs(handle)
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(runtime.logs(handle))


def client(daemon: LiveDaemon) -> openai.OpenAI:
    return openai.OpenAI(base_url=daemon.base_url, api_key=daemon.api_key, max_retries=0)


@pytest.mark.parametrize("stream", [False, True])
def test_tools_to_a_model_without_jinja_are_a_bad_request(gateway: LiveDaemon, stream: bool) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client(gateway).chat.completions.create(
            model="gemma", messages=HELLO, tools=[WEATHER_TOOL], max_tokens=8, stream=stream, **GREEDY
        )
    assert "tools param requires --jinja flag" in info.value.message
    assert "jinja" in info.value.message and info.value.code == "unsupported_by_model"


def test_images_to_a_model_without_a_projector_are_a_bad_request(gateway: LiveDaemon) -> None:
    image = "data:image/png;base64," + base64.b64encode(png_1x1()).decode()
    content = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": image}}]
    with pytest.raises(openai.BadRequestError) as info:
        client(gateway).chat.completions.create(
            model="gemma", messages=[{"role": "user", "content": content}], max_tokens=8, **GREEDY
        )
    assert "image input is not supported" in info.value.message and "mmproj" in info.value.message


def test_embeddings_to_a_recipe_without_them_are_a_400_naming_the_setting(gateway: LiveDaemon) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client(gateway).embeddings.create(model="gemma", input="hello")
    assert "spec.args.embeddings: true" in info.value.message and "test-llamacpp" in info.value.message


@pytest.mark.parametrize("model", ["chatml-jinja", "file-jinja"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_recipe_with_a_jinja_template_accepts_tool_calling_requests(
    gateway: LiveDaemon, model: str, stream: bool
) -> None:
    """The request goes through and the answer has the SDK's shape. Whether a 270M model calls
    the tool is its skill, not ours (llama.cpp 0.3.36 leaves gemma3-270m free to answer in text
    even with tool_choice=required); a call it makes must be well formed."""
    answer = client(gateway).chat.completions.create(
        model=model,
        messages=HELLO,
        tools=[WEATHER_TOOL],
        tool_choice="auto",
        max_tokens=16,
        stream=stream,
        **GREEDY,
    )
    if stream:
        chunks = list(answer)
        assert chunks and all(c.object == "chat.completion.chunk" for c in chunks)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        assert finish and finish[-1] in ("stop", "length", "tool_calls")
        return
    choice = answer.choices[0]
    assert answer.object == "chat.completion" and choice.message.role == "assistant"
    assert choice.finish_reason in ("stop", "length", "tool_calls")
    for call in choice.message.tool_calls or []:
        assert call.type == "function" and call.function.name == "get_weather" and call.id
        assert json.loads(call.function.arguments)["city"] in ("Paris", "Berlin")


def test_response_format_json_schema_is_passed_through(gateway: LiveDaemon) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    chat = client(gateway).chat.completions.create(
        model="gemma",
        messages=[{"role": "user", "content": "Is Paris in France?"}],
        response_format={"type": "json_schema", "json_schema": {"name": "yes_no", "schema": schema}},
        max_tokens=32,
        **GREEDY,
    )
    assert json.loads(chat.choices[0].message.content or "")["answer"] in ("yes", "no")

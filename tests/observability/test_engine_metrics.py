"""Engines' own /metrics, scraped by the health poller and re-exposed with model/replica labels."""

from __future__ import annotations

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from cortex_server.services.observability.engines import EngineMetricsStore
from tests.observability.promtext import value

# The shape llama-server --metrics answers (names, types, HELP lines as in llama.cpp's server).
LLAMA_TEXT = """\
# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.
# TYPE llamacpp:prompt_tokens_total counter
llamacpp:prompt_tokens_total {prompt}
# HELP llamacpp:requests_processing Number of requests processing.
# TYPE llamacpp:requests_processing gauge
llamacpp:requests_processing 1
"""
VLLM_TEXT = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="m",model="shadowed"} 2.0
"""


class _Store(Collector):
    def __init__(self, store: EngineMetricsStore) -> None:
        self.store = store

    def collect(self):  # type: ignore[no-untyped-def]
        return self.store.collect()


def exposed(store: EngineMetricsStore) -> str:
    registry = CollectorRegistry()
    registry.register(_Store(store))
    return generate_latest(registry).decode()


async def test_replicas_merge_into_one_family_with_their_labels() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.host)
        if request.url.host == "v":
            return httpx.Response(200, text=VLLM_TEXT)
        return httpx.Response(200, text=LLAMA_TEXT.format(prompt=10 if request.url.host == "a" else 32))

    store = EngineMetricsStore(interval_s=60)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        await store.maybe_scrape(client, "http://a/metrics", model="tiny", replica="tiny/0")
        await store.maybe_scrape(client, "http://b/metrics", model="tiny", replica="tiny/1")
        await store.maybe_scrape(client, "http://a/metrics", model="tiny", replica="tiny/0")  # too soon
        await store.maybe_scrape(client, "http://v/metrics", model="big", replica="big/0")
    assert calls == ["a", "b", "v"]
    text = exposed(store)
    assert text.count("# TYPE llamacpp:prompt_tokens_total counter") == 1  # one family, two replicas
    assert value(text, "llamacpp:prompt_tokens_total", model="tiny", replica="tiny/0") == 10
    assert value(text, "llamacpp:prompt_tokens_total", model="tiny", replica="tiny/1") == 32
    # the engine's own labels stay; one that clashes with ours is renamed, never overwrites ours
    assert (
        value(
            text,
            "vllm:num_requests_running",
            model_name="m",
            engine_model="shadowed",
            model="big",
            replica="big/0",
        )
        == 2.0
    )


async def test_refusals_garbage_and_floods_leave_no_series() -> None:
    bodies = {
        "denied": httpx.Response(401, text="unauthorized"),
        "garbage": httpx.Response(200, text="this is { not prometheus"),
        "flood": httpx.Response(
            200,
            text="".join(f'# TYPE f{i} gauge\nf{i}{{x="{j}"}} 1\n' for i in range(50) for j in range(1)) * 1,
        ),
    }
    store = EngineMetricsStore(interval_s=60, max_samples=20)
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: bodies[r.url.host])) as client:
        for host in bodies:
            await store.maybe_scrape(client, f"http://{host}/metrics", model=host, replica=f"{host}/0")
    assert store.failures == 1  # the 401
    text = exposed(store)
    assert 'replica="denied/0"' not in text and 'replica="garbage/0"' not in text
    assert text.count('replica="flood/0"') == 20  # capped per replica


async def test_a_replica_no_longer_scraped_disappears() -> None:
    store = EngineMetricsStore(interval_s=0.01)
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, text=LLAMA_TEXT.format(prompt=1)))
    ) as client:
        await store.maybe_scrape(client, "http://a/metrics", model="tiny", replica="tiny/0")
    assert 'replica="tiny/0"' in exposed(store)
    store._scrapes["tiny/0"].at -= 60  # as if scraped a minute ago: three intervals have passed
    assert 'replica="tiny/0"' not in exposed(store)

"""The engines' own metrics (llama-server `--metrics`, vLLM `/metrics`), re-exposed per replica.

The supervisor's health poller calls `maybe_scrape` after a ready probe, at most once
per `interval_s` per replica; it keeps the raw text. Parsing happens at our own
scrape time (in the /metrics worker thread), where every family gets `model` and
`replica` labels and same-named families from several replicas merge into one.
Series of a replica not scraped for three intervals disappear. Each replica
contributes at most `max_samples` samples, so an engine cannot blow up our output.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

log = logging.getLogger(__name__)

OUR_LABELS = ("model", "replica")


@dataclass
class _Scrape:
    model: str
    text: str
    at: float


class EngineMetricsStore:
    def __init__(self, *, interval_s: float, max_samples: int = 5000, max_bytes: int = 2 << 20) -> None:
        self.interval_s = interval_s
        self.max_samples = max_samples
        self.max_bytes = max_bytes
        self._scrapes: dict[str, _Scrape] = {}
        self._last_try: dict[str, float] = {}
        self.failures = 0

    async def maybe_scrape(
        self,
        client: httpx.AsyncClient,
        url: str,
        *,
        model: str,
        replica: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Fetch `url` if this replica's last try is older than the interval. Never raises."""
        if self.interval_s <= 0:
            return
        now = time.monotonic()
        last = self._last_try.get(replica)
        if last is not None and now - last < self.interval_s:
            return
        self._last_try[replica] = now
        try:
            resp = await client.get(url, headers=headers)
        except httpx.HTTPError as exc:
            self.failures += 1
            log.debug("engine metrics of %s: %s", replica, type(exc).__name__)
            return
        if resp.status_code != 200 or len(resp.content) > self.max_bytes:
            self.failures += 1
            log.debug("engine metrics of %s: HTTP %s, %s bytes", replica, resp.status_code, len(resp.content))
            return
        self._scrapes[replica] = _Scrape(model=model, text=resp.text, at=time.monotonic())

    def forget(self, replica: str) -> None:
        self._scrapes.pop(replica, None)
        self._last_try.pop(replica, None)

    def collect(self) -> Iterator[Metric]:
        now = time.monotonic()
        stale_after = 3 * self.interval_s + 5.0
        merged: dict[tuple[str, str], Metric] = {}
        for replica, scrape in sorted(self._scrapes.items()):
            if now - scrape.at > stale_after:
                continue
            try:
                families = list(text_string_to_metric_families(scrape.text))
            except ValueError as exc:  # an engine answering garbage is its problem, not our scrape's
                log.debug("engine metrics of %s unparsable: %s", replica, exc)
                continue
            budget = self.max_samples
            for family in families:
                out = merged.get((family.name, family.type))
                if out is None:
                    out = merged[(family.name, family.type)] = Metric(
                        family.name, family.documentation, family.type
                    )
                for s in family.samples[:budget]:
                    labels = {(f"engine_{k}" if k in OUR_LABELS else k): v for k, v in s.labels.items()}
                    labels.update(model=scrape.model, replica=replica)
                    out.samples.append(Sample(s.name, labels, s.value, None, None))
                budget -= len(family.samples)
                if budget <= 0:
                    break
        yield from merged.values()

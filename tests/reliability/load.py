"""Client load for the fault tests: threads sending plain and streamed completions, counting every
outcome by status, keeping the OpenAI error of each refusal, and the request id of each response
that reached the client in full."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Literal

import httpx
from sqlalchemy import create_engine, select

from cortex_server.db.models import UsageRecord


class Load:
    """`clients` threads, spread over `urls`, sending one key's requests until `join()`.

    `api="chat"` sends chat completions, `"completions"` legacy ones; `streamed=True` makes every
    odd-numbered client stream. Non-200 answers must be OpenAI errors: `errors` counts their
    (status, type, code), `malformed` keeps the bodies that are not."""

    def __init__(
        self,
        urls: str | list[str],
        key: str,
        model: str,
        *,
        clients: int,
        api: Literal["chat", "completions"] = "chat",
        streamed: bool = True,
    ) -> None:
        self.urls = [urls] if isinstance(urls, str) else urls
        self.key, self.model, self.clients, self.api, self.streamed = key, model, clients, api, streamed
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.statuses: Counter[str] = Counter()  # "200", "503", "ConnectError", ...
        self.errors: Counter[tuple[int, str, str]] = Counter()  # (status, type, code) of non-200s
        self.malformed: list[str] = []  # non-200 bodies that are not {"error": {message, type, code}}
        self.completed: list[str] = []  # x-request-id of each response received in full
        self.threads: list[threading.Thread] = []

    @property
    def sent(self) -> int:
        with self.lock:
            return sum(self.statuses.values())

    def start(self) -> Load:
        for i in range(self.clients):
            url, stream = self.urls[i % len(self.urls)], self.streamed and i % 2 == 1
            t = threading.Thread(target=self._client, args=(url, stream), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def body(self, *, stream: bool = False) -> dict[str, object]:
        if self.api == "chat":
            return {
                "model": self.model,
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 3,
                "stream": stream,
            }
        return {"model": self.model, "prompt": "hello", "max_tokens": 4, "stream": stream}

    @property
    def path(self) -> str:
        return "/v1/chat/completions" if self.api == "chat" else "/v1/completions"

    def one(self, url: str | None = None, *, stream: bool = False) -> httpx.Response:
        """One request outside the load (counted nowhere): a probe."""
        headers = {"authorization": f"Bearer {self.key}"}
        return httpx.post(
            (url or self.urls[0]) + self.path, json=self.body(stream=stream), headers=headers, timeout=30
        )

    def _client(self, url: str, stream: bool) -> None:
        body = self.body(stream=stream)
        with httpx.Client(
            base_url=url, headers={"authorization": f"Bearer {self.key}"}, timeout=30
        ) as client:
            while not self.stop.is_set():
                try:
                    with client.stream("POST", self.path, json=body) as resp:
                        text = resp.read()
                except httpx.HTTPError as exc:
                    with self.lock:
                        self.statuses[type(exc).__name__] += 1
                    continue
                self._count(resp, text, stream)

    def _count(self, resp: httpx.Response, text: bytes, stream: bool) -> None:
        full = resp.status_code == 200 and (b"data: [DONE]" in text if stream else b'"choices"' in text)
        with self.lock:
            self.statuses[str(resp.status_code)] += 1
            if full:
                self.completed.append(resp.headers["x-request-id"])
            elif resp.status_code != 200:
                try:
                    error = resp.json()["error"]
                    self.errors[(resp.status_code, error["type"], error["code"])] += 1
                    assert isinstance(error["message"], str) and error["message"]
                except (ValueError, KeyError, TypeError, AssertionError):
                    self.malformed.append(text[:200].decode(errors="replace"))


def wait_until(predicate: Callable[[], bool], *, timeout_s: float, step_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(step_s)
    return True


def stored_ids(url: str) -> set[str]:
    """The request ids of the usage rows in the database at `url`."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return set(conn.scalars(select(UsageRecord.request_id)))
    finally:
        engine.dispose()


def metric(url: str, name: str) -> float | None:
    """One unlabelled sample of the daemon's /metrics (open on loopback); counters by either name."""
    text = httpx.get(url + "/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "_total "):
            return float(line.split()[-1])
    return None

"""Client load for the fault tests: threads sending plain and streamed completions, counting every
outcome by status and keeping the request id of each response that reached the client in full."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import httpx
from sqlalchemy import create_engine, select

from cortex_server.db.models import UsageRecord


class Load:
    def __init__(self, url: str, key: str, model: str, *, clients: int) -> None:
        self.url, self.key, self.model, self.clients = url, key, model, clients
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.statuses: Counter[str] = Counter()  # "200", "503", "ConnectError", ...
        self.completed: list[str] = []  # x-request-id of each response received in full
        self.threads: list[threading.Thread] = []

    @property
    def sent(self) -> int:
        with self.lock:
            return sum(self.statuses.values())

    def start(self) -> Load:
        for i in range(self.clients):
            t = threading.Thread(target=self._client, args=(i % 2 == 1,), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def _count(self, outcome: str, request_id: str | None = None) -> None:
        with self.lock:
            self.statuses[outcome] += 1
            if request_id is not None:
                self.completed.append(request_id)

    def _client(self, stream: bool) -> None:
        headers = {"authorization": f"Bearer {self.key}"}
        body = {"model": self.model, "prompt": "hello", "max_tokens": 4, "stream": stream}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as client:
            while not self.stop.is_set():
                try:
                    self._one(client, body, stream)
                except httpx.HTTPError as exc:
                    self._count(type(exc).__name__)

    def _one(self, client: httpx.Client, body: dict[str, object], stream: bool) -> None:
        if not stream:
            resp = client.post("/v1/completions", json=body)
            ok = resp.status_code == 200 and "choices" in resp.json()
            self._count(str(resp.status_code), resp.headers["x-request-id"] if ok else None)
            return
        with client.stream("POST", "/v1/completions", json=body) as resp:
            text = b"".join(resp.iter_bytes())
            full = resp.status_code == 200 and b"data: [DONE]" in text
            self._count(str(resp.status_code), resp.headers.get("x-request-id") if full else None)


def wait_until(predicate: Callable[[], bool], *, timeout_s: float, step_s: float = 0.05) -> bool:
    import time

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

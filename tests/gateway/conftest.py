"""Gateway fixtures: a live daemon (SQLite in a temp home) and real llama-server replicas."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from gateway_support import LLAMA_SERVER, LiveDaemon, LlamaServer, start_daemon  # noqa: E402

from tests.reliability.conftest import private_pg  # noqa: E402, F401 - fixture: a PostgreSQL of the test's own
from tests.support.tiny_gguf import write_tiny_llama  # noqa: E402

needs_llama = pytest.mark.skipif(
    not LLAMA_SERVER.exists(), reason=f"no llama-server binary at {LLAMA_SERVER}"
)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[LiveDaemon]:
    d = start_daemon(tmp_path / "home", usage_flush_interval_s=0.1)
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_llama(tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf", n_embd=32)


@pytest.fixture
def llama_servers(tmp_path: Path, tiny_gguf: Path) -> Iterator[Callable[..., LlamaServer]]:
    started: list[LlamaServer] = []

    def start(alias: str, *, embeddings: bool = False) -> LlamaServer:
        server = LlamaServer(
            model=tiny_gguf,
            alias=alias,
            log_path=tmp_path / f"llama-{len(started)}.log",
            embeddings=embeddings,
        )
        started.append(server.start())
        return server

    try:
        yield start
    finally:
        for s in started:
            s.stop()

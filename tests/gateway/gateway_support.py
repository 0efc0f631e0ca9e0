"""Helpers for the gateway tests: a tiny real GGUF, real llama-server processes, a live daemon."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import uvicorn
from fastapi import FastAPI

from cortex_server.app import create_app
from cortex_server.context import AppContext
from cortex_server.services.prepare import prepare_database
from cortex_server.services.registry import ReplicaEndpoint, ServedModel
from cortexctl.core.settings import Settings

LLAMA_SERVER = Path("/root/.cache/cortex/llama-server/0.3.36/bin/llama-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_tiny_llama_gguf(
    path: Path, *, n_embd: int = 32, n_layer: int = 2, n_ff: int = 64, seed: int = 0
) -> Path:
    """A real llama-architecture GGUF with random weights and a byte-level SPM vocab (~1 MB)."""
    import gguf

    rng = np.random.default_rng(seed)
    n_head, n_head_kv = 4, 2
    head_dim = n_embd // n_head
    tokens: list[bytes] = [b"<unk>", b"<s>", b"</s>"] + [f"<0x{i:02X}>".encode() for i in range(256)]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL] + [
        gguf.TokenType.BYTE
    ] * 256
    for word in [
        "\u2581",
        *[chr(c) for c in range(ord("a"), ord("z") + 1)],
        "\u2581the",
        "\u2581a",
        "\u2581hello",
    ]:
        tokens.append(word.encode())
        types.append(gguf.TokenType.NORMAL)
    n_vocab = len(tokens)
    scores = [0.0] * 259 + [-float(i) for i in range(n_vocab - 259)]

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(4096)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_rope_dimension_count(head_dim)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n_vocab)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)

    def t(name: str, *shape: int, ones: bool = False) -> None:
        data = np.ones(shape, dtype=np.float32) if ones else rng.normal(0, 0.2, shape).astype(np.float32)
        w.add_tensor(name, data)

    t("token_embd.weight", n_vocab, n_embd)
    t("output_norm.weight", n_embd, ones=True)
    t("output.weight", n_vocab, n_embd)
    for i in range(n_layer):
        t(f"blk.{i}.attn_norm.weight", n_embd, ones=True)
        t(f"blk.{i}.attn_q.weight", n_embd, n_embd)
        t(f"blk.{i}.attn_k.weight", n_head_kv * head_dim, n_embd)
        t(f"blk.{i}.attn_v.weight", n_head_kv * head_dim, n_embd)
        t(f"blk.{i}.attn_output.weight", n_embd, n_embd)
        t(f"blk.{i}.ffn_norm.weight", n_embd, ones=True)
        t(f"blk.{i}.ffn_gate.weight", n_ff, n_embd)
        t(f"blk.{i}.ffn_up.weight", n_ff, n_embd)
        t(f"blk.{i}.ffn_down.weight", n_embd, n_ff)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


class LlamaServer:
    """One real llama-server process on a loopback port."""

    def __init__(self, *, model: Path, alias: str, log_path: Path, embeddings: bool = False) -> None:
        self.model, self.alias, self.log_path, self.embeddings = model, alias, log_path, embeddings
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait: bool = True) -> LlamaServer:
        args = [
            str(LLAMA_SERVER), "-m", str(self.model), "--alias", self.alias,
            "--host", "127.0.0.1", "--port", str(self.port),
            "-c", "8192", "-np", "4", "-t", "1", "--chat-template", "chatml", "--no-warmup",
        ]  # fmt: skip
        if self.embeddings:
            args += ["--embeddings", "--pooling", "mean"]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama-server exited: {self.log_path.read_text()[-2000:]}")
            if self.healthy():
                return
            time.sleep(0.1)
        raise TimeoutError(f"llama-server not ready: {self.log_path.read_text()[-2000:]}")

    def healthy(self) -> bool:
        try:
            return httpx.get(self.base_url + "/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def served_model(name: str, *servers: LlamaServer, request_defaults: dict | None = None) -> ServedModel:
    return ServedModel(
        served_name=name,
        engine="llamacpp",
        state="running",
        request_defaults=request_defaults or {},
        request_timeout_s=60.0,
        connect_timeout_s=2.0,
        created=1_700_000_000,
        replicas=[
            ReplicaEndpoint(model_id=1, model_name=name, replica_index=i, base_url=s.base_url, healthy=True)
            for i, s in enumerate(servers)
        ],
    )


@dataclass
class LiveDaemon:
    settings: Settings
    app: FastAPI
    server: uvicorn.Server
    thread: threading.Thread
    api_key: str

    @property
    def base_url(self) -> str:
        return f"{self.settings.url}/v1"

    @property
    def ctx(self) -> AppContext:
        ctx: AppContext = self.app.state.cortex
        return ctx

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        task = self.ctx.usage_writer._task  # the writer runs on the daemon's loop
        assert task is not None
        return task.get_loop()

    def flush_usage(self) -> None:
        """Push queued usage rows to the DB (or spool) now, from the test's thread."""
        asyncio.run_coroutine_threadsafe(self.ctx.usage_writer.flush(), self.loop).result(30)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def start_daemon(home: Path, **overrides: object) -> LiveDaemon:
    """The real daemon app (migrations, bootstrap, lifespan) under uvicorn in a background thread.

    The tests put replicas into the registry themselves, so the supervisor (which would publish
    the DB's view, with no models) is off unless a test asks for it.
    """
    overrides.setdefault("supervise", False)
    settings = Settings(home=home, port=free_port(), **overrides)  # type: ignore[arg-type]
    prepare_database(settings)
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="cortexd-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the daemon did not start")
        time.sleep(0.02)
    key = settings.admin_token_file.read_text().strip()
    return LiveDaemon(settings=settings, app=app, server=server, thread=thread, api_key=key)


def pg_binaries() -> Path | None:
    path = Path("/usr/lib/postgresql/15/bin")
    return path if (path / "initdb").exists() else None


class PrivatePostgres:
    """A throwaway PostgreSQL cluster in a temp dir, on its own port, that a test may stop and start."""

    def __init__(self, root: Path) -> None:
        self.bin = pg_binaries()
        assert self.bin is not None
        self.data = root / "pgdata"
        self.sock = root / "pgsock"
        self.port = free_port()
        self.log = root / "pg.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:  # initdb/postgres refuse to run as root
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)

    def init(self) -> PrivatePostgres:
        self.sock.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.data.parent, "postgres")
            shutil.chown(self.sock, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        return self

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

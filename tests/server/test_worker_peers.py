"""The direct channel between a daemon's workers: every other worker hears a message, another
installation (another home) hears nothing, and another user's datagrams are dropped."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

from cortex_server.services.worker_peers import WorkerPeers, peer_names


async def _heard(peers: WorkerPeers, timeout_s: float = 0.5) -> list[bytes]:
    got: list[bytes] = []
    task = asyncio.create_task(peers.receive(got.append))
    await asyncio.sleep(timeout_s)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return got


async def test_each_other_worker_hears_a_message_and_another_home_hears_nothing(tmp_path: Path) -> None:
    workers = [WorkerPeers(tmp_path / "home", index=i, count=3) for i in range(3)]
    stranger = WorkerPeers(tmp_path / "other-home", index=1, count=3)  # same index, other installation
    try:
        workers[0].send(b'{"key_id": 7}')
        heard = await asyncio.gather(*(_heard(w) for w in (*workers, stranger)))
    finally:
        for w in (*workers, stranger):
            w.close()
    assert heard == [[], [b'{"key_id": 7}'], [b'{"key_id": 7}'], []]


async def test_a_worker_that_is_down_costs_the_sender_nothing(tmp_path: Path) -> None:
    alone = WorkerPeers(tmp_path / "home", index=0, count=2)  # worker 1 is restarting
    try:
        alone.send(b"1")  # no exception: the restarted worker starts with an empty cache anyway
    finally:
        alone.close()


def _send_as(uid: int | None, name: str, data: bytes) -> None:
    """Send one datagram from a forked child that is user `uid` (None: this user)."""
    pid = os.fork()
    if pid == 0:  # the child: only system calls, then out
        code = 1
        try:
            if uid is not None:
                os.setgid(uid)
                os.setuid(uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.sendto(data, name)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


async def test_datagrams_of_another_user_are_dropped(tmp_path: Path) -> None:
    home = tmp_path / "home"
    listener = WorkerPeers(home, index=1, count=2)
    name = peer_names(home, 2)[1]
    try:
        if os.getuid() == 0:  # as root (CI) a child can become someone else: it must not be heard
            _send_as(65534, name, b"foreign")
        _send_as(None, name, b"ours")
        heard = await _heard(listener)
    finally:
        listener.close()
    assert heard == [b"ours"]


def test_the_names_are_abstract_so_no_file_is_left_behind(tmp_path: Path) -> None:
    names = peer_names(tmp_path / "home", 2)
    assert all(n.startswith("\0") for n in names) and len(set(names)) == 2
    peers = WorkerPeers(tmp_path / "home", index=0, count=2)
    peers.close()
    assert not list(tmp_path.rglob("*")), "nothing on disk"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as again:
        again.bind(names[0])  # the name is free once the worker closed it

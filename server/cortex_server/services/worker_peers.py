"""Datagrams between the workers of one `cortexctl serve --workers N`, Redis or not.

Why: key revocations reach other daemons through Redis; a daemon's own workers share a host,
so they also tell each other directly, and a key revoked while Redis is down stops working on
every worker at once instead of after the auth cache's TTL.

Linux abstract-namespace Unix datagram sockets: no file, no path-length limit, gone with the
process. The names derive from the home's path, so two installations never hear each other;
the kernel stamps each datagram with its sender's uid (SO_PASSCRED), and only this user's
datagrams are taken.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import struct
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

MAX_DATAGRAM = 4096
UCRED = struct.Struct("iII")  # struct ucred: pid, uid, gid (what the kernel says of a peer)


def peer_names(home: Path, count: int, channel: str = "worker") -> list[str]:
    """The abstract socket names of a home's workers on one channel (index i: worker i)."""
    tag = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:16]
    return [f"\0cortex-{tag}-{channel}-{i}" for i in range(count)]


class WorkerPeers:
    def __init__(self, home: Path, *, index: int, count: int) -> None:
        self._names = peer_names(home, count)
        self._index = index
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self._sock.bind(self._names[index])
        self._sock.setblocking(False)

    def send(self, data: bytes) -> None:
        """To every other worker; one that is down (restarting) starts with an empty cache anyway."""
        for i, name in enumerate(self._names):
            if i == self._index:
                continue
            try:
                self._sock.sendto(data, name)
            except OSError as exc:
                log.warning("worker %d did not take the message (%s)", i, exc.strerror or exc)

    async def receive(self, handle: Callable[[bytes], None]) -> None:
        """Run for the worker's lifetime, calling `handle` with each datagram of this user."""
        loop = asyncio.get_running_loop()
        fd = self._sock.fileno()
        loop.add_reader(fd, self._drain, handle)
        try:
            await asyncio.Future()  # until cancelled
        finally:
            loop.remove_reader(fd)

    def _drain(self, handle: Callable[[bytes], None]) -> None:
        while True:
            try:
                data, ancillary, _flags, _addr = self._sock.recvmsg(
                    MAX_DATAGRAM, socket.CMSG_SPACE(UCRED.size)
                )
            except (BlockingIOError, InterruptedError):
                return
            if _sender_uid(ancillary) != os.getuid():
                log.warning("ignored a worker message from another user")
                continue
            handle(data)

    def close(self) -> None:
        self._sock.close()


def _sender_uid(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(data) >= UCRED.size:
            return int(UCRED.unpack_from(data)[1])
    return None

"""Check a zstd file's frame structure before decompressing it: complete, bounded, nothing after.

Why: streaming decompressors stop quietly at the end of their input, so a bundle cut
inside its last frame (the checksum included) decompressed "fine" in `cortexctl` while
`zstd -dc` in the bootstrap failed. Walking the frame and block headers (seeking over
block contents, so a multi-GB bundle costs a few thousand small reads) gives both
readers one answer before a byte is decompressed: every frame ends with its last block
and its checksum, every window fits MAX_WINDOW, and the file ends with the last frame.
Checksums themselves are verified while decompressing (python-zstandard and zstd both
do). Standard library only: the bootstrap loads this file by path.
"""

from __future__ import annotations

import os
from typing import BinaryIO

MAGIC = b"\x28\xb5\x2f\xfd"
MAX_WINDOW = 1 << 23  # 8 MiB: zstd levels 1-19 without --long
MAX_BLOCK = 128 * 1024


class ZstdRefused(Exception):
    """The compressed stream is malformed: the message says where and why."""


def _read(fh: BinaryIO, n: int, where: str) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise ZstdRefused(f"truncated compressed stream: the file ends inside {where}")
    return data


def check_frames(fh: BinaryIO) -> int:
    """Walk every frame of a seekable zstd file; return the number of frames or raise ZstdRefused."""
    end = fh.seek(0, os.SEEK_END)
    fh.seek(0)
    frames = 0
    while fh.tell() < end:
        at = fh.tell()
        if _read(fh, 4, "a frame header") != MAGIC:
            raise ZstdRefused(f"data after the last zstd frame (at byte {at}) is not a zstd frame")
        frames += 1
        (fhd,) = _read(fh, 1, "a frame header")
        fcs_flag, single, reserved, checksum, did_flag = (
            fhd >> 6,
            fhd >> 5 & 1,
            fhd >> 3 & 1,
            fhd >> 2 & 1,
            fhd & 3,
        )
        if reserved:
            raise ZstdRefused(f"corrupt zstd frame header at byte {at}")
        window = 0
        if not single:
            (wd,) = _read(fh, 1, "a frame header")
            exponent, mantissa = wd >> 3, wd & 7
            base = 1 << (10 + exponent)
            window = base + (base // 8) * mantissa
        did_size = (0, 1, 2, 4)[did_flag]
        fcs_size = (1 if single else 0, 2, 4, 8)[fcs_flag]
        _read(fh, did_size, "a frame header")
        fcs = int.from_bytes(_read(fh, fcs_size, "a frame header"), "little") + (256 if fcs_size == 2 else 0)
        if single:
            window = fcs
        if window > MAX_WINDOW:
            raise ZstdRefused(
                f"zstd frame at byte {at} needs a {window}-byte window, more than the {MAX_WINDOW} allowed "
                "(export with zstd levels 1-19, without --long)"
            )
        while True:
            header = int.from_bytes(_read(fh, 3, "a block header"), "little")
            last, kind, size = header & 1, header >> 1 & 3, header >> 3
            if kind == 3 or size > MAX_BLOCK:
                raise ZstdRefused(f"corrupt zstd block header in the frame at byte {at}")
            skip = 1 if kind == 1 else size
            if fh.tell() + skip > end:
                raise ZstdRefused("truncated compressed stream: the file ends inside a block")
            fh.seek(skip, os.SEEK_CUR)
            if last:
                break
        if checksum:
            _read(fh, 4, "a frame checksum")
    if frames == 0:
        raise ZstdRefused("empty compressed stream")
    fh.seek(0)
    return frames

"""The bundle container: a tar stream, optionally zstd-compressed, read and written in one pass.

Layout (bundles/FORMAT.md): `manifest.json`, optionally `manifest.sig`, then every item
in manifest order, each a regular file, then the end-of-archive. With zstd the head
(manifest + signature) is its own frame, so `sign` can replace it without recompressing.

Reading verifies while streaming: entry types, names, order, sizes and sha256 are
checked as the bytes pass; the first problem raises BundleError naming the entry. The
tar layer is `tarstream` (bounded headers, shared with the bootstrap); this module adds
the zstd layer (frames checked by `zstdframes` first, window capped), the typed manifest
and the signature record, and writes bundles.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import zstandard

from cortexctl.bundles import tarstream, zstdframes
from cortexctl.bundles.errors import BundleError, refused
from cortexctl.bundles.manifest import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    Item,
    Manifest,
    bundle_id,
    parse_manifest,
)
from cortexctl.bundles.progress import NullProgress, Progress
from cortexctl.bundles.signing import Signature, parse_signature

CHUNK = 1 << 20
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BLOCK = 512
COMPRESSIONS = ("zstd", "none")


# ---- writing ------------------------------------------------------------------------


def tar_header(name: str, size: int, mtime: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.type = size, mtime, 0o644, tarfile.REGTYPE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")


def _padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


def head_bytes(manifest_bytes: bytes, signature: Signature | None, mtime: int) -> bytes:
    parts = [
        tar_header(MANIFEST_NAME, len(manifest_bytes), mtime),
        manifest_bytes,
        _padding(len(manifest_bytes)),
    ]
    if signature is not None:
        sig = signature.to_bytes()
        parts += [tar_header(SIGNATURE_NAME, len(sig), mtime), sig, _padding(len(sig))]
    return b"".join(parts)


class BundleWriter:
    """Writes head, items and end-of-archive to `out`; zstd head and body are separate frames."""

    def __init__(self, out: BinaryIO, *, compression: str = "zstd", level: int = 3) -> None:
        if compression not in COMPRESSIONS:
            raise BundleError(
                f"unknown compression {compression!r}", fix=f"Use one of: {', '.join(COMPRESSIONS)}."
            )
        self._out = out
        self._compression = compression
        self._level = level
        self._body: BinaryIO | None = None
        self._mtime = 0

    def write_head(self, manifest_bytes: bytes, signature: Signature | None, *, mtime: int) -> None:
        self._mtime = mtime
        head = head_bytes(manifest_bytes, signature, mtime)
        if self._compression == "zstd":
            self._out.write(zstandard.ZstdCompressor(level=self._level, write_checksum=True).compress(head))
            cctx = zstandard.ZstdCompressor(level=self._level, write_checksum=True, threads=-1)
            self._body = cctx.stream_writer(self._out, closefd=False)
        else:
            self._out.write(head)
            self._body = self._out

    def write_item(self, item: Item, source: Path, progress: Progress) -> None:
        """Copy `source` as `item`, refusing if its bytes no longer match the manifest."""
        assert self._body is not None, "write_head first"
        self._body.write(tar_header(item.path, item.size, self._mtime))
        digest, written = hashlib.sha256(), 0
        with source.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                written += len(chunk)
                if written > item.size:
                    break
                digest.update(chunk)
                self._body.write(chunk)
                progress.advance(len(chunk))
        if written != item.size or digest.hexdigest() != item.sha256:
            raise BundleError(
                f"{source} changed while the bundle was being written ({item.label})",
                fix="Make sure nothing modifies the sources during export, then export again.",
            )
        self._body.write(_padding(item.size))

    def close(self) -> None:
        assert self._body is not None, "write_head first"
        self._body.write(b"\0" * (2 * BLOCK))
        if self._body is not self._out:
            self._body.close()  # ends the zstd frame; closefd=False keeps `out` open


# ---- reading ------------------------------------------------------------------------


@dataclass(frozen=True)
class Head:
    manifest: Manifest
    manifest_bytes: bytes
    signature: Signature | None
    compression: str

    @property
    def id(self) -> str:
        return bundle_id(self.manifest_bytes)


ItemSink = Callable[[Item], BinaryIO | None]
"""Where an item's verified bytes go (None: only verify). Called once per item, in order."""


class _Decompressed:
    """The zstd stream's bytes, bounded reads; decoder errors become refusals."""

    def __init__(self, raw: BinaryIO) -> None:
        dctx = zstandard.ZstdDecompressor(max_window_size=zstdframes.MAX_WINDOW)
        self._reader = dctx.stream_reader(raw, read_size=CHUNK, read_across_frames=True)

    def read(self, n: int) -> bytes:
        try:
            return self._reader.read(n)
        except zstandard.ZstdError as exc:
            raise tarstream.Refused("compressed stream", f"corrupt zstd data ({exc})") from None


class BundleReader:
    """One pass over a bundle file: `head()` first, then `read_items(...)`.

    The tar layer is `tarstream` (shared with scripts/bundle_bootstrap.py); this adds the
    zstd layer, the typed manifest and the signature record.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._raw = path.open("rb")
        except OSError as exc:
            raise BundleError(f"cannot open bundle {path}: {exc.strerror}", fix="Check the path.") from None
        magic = self._raw.read(4)
        self._raw.seek(0)
        self.compression = "zstd" if magic == ZSTD_MAGIC else "none"
        stream: tarstream.Reader = self._raw
        if self.compression == "zstd":
            try:
                zstdframes.check_frames(self._raw)
            except zstdframes.ZstdRefused as exc:
                self.close()
                raise refused(str(path), str(exc)) from None
            stream = _Decompressed(self._raw)
        self._tar = tarstream.TarStream(stream)
        self._bundle = tarstream.BundleStream(self._tar)
        self._head: Head | None = None
        self.items_offset: int | None = None

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> BundleReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def head(self) -> Head:
        if self._head is not None:
            return self._head
        try:
            raw = self._bundle.head()
        except tarstream.Refused as exc:
            raise refused(exc.what, exc.problem) from None
        manifest = parse_manifest(raw.manifest_bytes)
        signature = parse_signature(raw.signature) if raw.signature is not None else None
        self.items_offset = raw.items_offset
        self._head = Head(manifest, raw.manifest_bytes, signature, self.compression)
        return self._head

    def read_items(self, sink: ItemSink, progress: Progress | None = None) -> None:
        """Stream every item through sha256 into `sink`; raise on the first disagreement."""
        head = self.head()
        progress = progress or NullProgress()
        by_path = {i.path: i for i in head.manifest.items}
        try:
            self._bundle.read_items(lambda raw: sink(by_path[raw["path"]]), progress.advance)
        except tarstream.Refused as exc:
            raise refused(exc.what, exc.problem) from None


@contextmanager
def open_bundle(path: Path) -> Iterator[BundleReader]:
    reader = BundleReader(path)
    try:
        yield reader
    finally:
        reader.close()


def read_head(path: Path) -> Head:
    """Only the manifest and signature: cheap, whatever the bundle's size."""
    with open_bundle(path) as reader:
        return reader.head()


def head_boundary(path: Path) -> tuple[int, Head]:
    """Raw byte offset where the items begin, for splicing a new head (see `sign`)."""
    with open_bundle(path) as reader:
        head = reader.head()
        offset = reader.items_offset
    if offset is None or not head.manifest.items:
        raise BundleError(f"{path} has no items to sign", fix="Export a bundle with at least one item.")
    if head.compression == "none":
        return offset, head
    # zstd: the head must be exactly the first frame; find the frame's compressed length.
    dobj = zstandard.ZstdDecompressor().decompressobj()
    fed, out = 0, io.BytesIO()
    with path.open("rb") as fh:
        while not dobj.eof:
            chunk = fh.read(64 * 1024)
            if not chunk:
                break
            fed += len(chunk)
            out.write(dobj.decompress(chunk))
    if not dobj.eof or out.tell() != offset:
        raise BundleError(
            f"{path}: the head is not a separate zstd frame, so it cannot be re-signed in place",
            fix="Re-export it with `cortexctl bundle export … --sign-key KEY`.",
        )
    return fed - len(dobj.unused_data), head

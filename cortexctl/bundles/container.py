"""The bundle container: a tar stream, optionally zstd-compressed, read and written in one pass.

Layout (bundles/FORMAT.md): `manifest.json`, optionally `manifest.sig`, then every item
in manifest order, each a regular file, then the end-of-archive. With zstd the head
(manifest + signature) is its own frame, so `sign` can replace it without recompressing.

Reading verifies while streaming: entry types, names, order, sizes and sha256 are
checked as the bytes pass; the first problem raises BundleError naming the entry.
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

from cortexctl.bundles.errors import BundleError, refused
from cortexctl.bundles.manifest import (
    MANIFEST_NAME,
    MAX_MANIFEST_BYTES,
    MAX_SIGNATURE_BYTES,
    SIGNATURE_NAME,
    Item,
    Manifest,
    bundle_id,
    check_relative_path,
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
            self._body = cctx.stream_writer(self._out, closefd=False)  # type: ignore[assignment]
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


class BundleReader:
    """One pass over a bundle file: `head()` first, then `read_items(...)`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._raw = path.open("rb")
        except OSError as exc:
            raise BundleError(f"cannot open bundle {path}: {exc.strerror}", fix="Check the path.") from None
        magic = self._raw.read(4)
        self._raw.seek(0)
        self.compression = "zstd" if magic == ZSTD_MAGIC else "none"
        stream: BinaryIO = self._raw
        if self.compression == "zstd":
            dctx = zstandard.ZstdDecompressor()
            stream = dctx.stream_reader(self._raw, read_size=CHUNK, read_across_frames=True)  # type: ignore[assignment]
        self._stream = stream
        try:
            self._tar = tarfile.open(fileobj=stream, mode="r|", bufsize=CHUNK)  # noqa: SIM115
        except (tarfile.TarError, zstandard.ZstdError, EOFError, OSError) as exc:
            self.close()
            raise refused(str(path), f"not a bundle (not a tar stream: {exc})") from None
        self._head: Head | None = None

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> BundleReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _next(self, expecting: str) -> tarfile.TarInfo | None:
        try:
            return self._tar.next()
        except (tarfile.TarError, zstandard.ZstdError, EOFError, OSError) as exc:
            raise refused(expecting, f"corrupt or truncated bundle before this entry ({exc})") from None

    def head(self) -> Head:
        if self._head is not None:
            return self._head
        member = self._next(MANIFEST_NAME)
        if member is None or member.name != MANIFEST_NAME:
            got = "nothing" if member is None else repr(member.name)
            raise refused(MANIFEST_NAME, f"the bundle must start with {MANIFEST_NAME}, found {got}")
        manifest_bytes = self._small(member, MAX_MANIFEST_BYTES)
        manifest = parse_manifest(manifest_bytes)
        signature = None
        self._pending = self._next(manifest.items[0].label if manifest.items else "end of bundle")
        if self._pending is not None and self._pending.name == SIGNATURE_NAME:
            signature = parse_signature(self._small(self._pending, MAX_SIGNATURE_BYTES))
            self._pending = self._next(manifest.items[0].label if manifest.items else "end of bundle")
        self._head = Head(manifest, manifest_bytes, signature, self.compression)
        return self._head

    def _small(self, member: tarfile.TarInfo, limit: int) -> bytes:
        check_member_type(member, member.name)
        if member.size > limit:
            raise refused(member.name, f"entry is {member.size} bytes, more than the {limit} allowed")
        fh = self._tar.extractfile(member)
        assert fh is not None
        try:
            data = fh.read()
        except (tarfile.TarError, zstandard.ZstdError, EOFError, OSError) as exc:
            raise refused(member.name, f"corrupt or truncated ({exc})") from None
        if len(data) != member.size:
            raise refused(member.name, "truncated")
        return data

    def read_items(self, sink: ItemSink, progress: Progress | None = None) -> None:
        """Stream every item through sha256 into `sink`; raise on the first disagreement."""
        head = self.head()
        progress = progress or NullProgress()
        expected = {i.path: n for n, i in enumerate(head.manifest.items)}
        member = self._pending
        for n, item in enumerate(head.manifest.items):
            if member is None:
                raise refused(item.label, "missing: the bundle ends before this entry (truncated?)")
            check_entry(member, item, n, expected)
            self._copy(member, item, sink(item), progress)
            if n + 1 < len(expected):
                member = self._next(head.manifest.items[n + 1].label)
        if not head.manifest.items:
            if member is not None:  # an item-less bundle with an entry after the head
                _refuse_extra(member.name, expected)
            return
        self._check_end(expected)

    def _check_end(self, expected: dict[str, int]) -> None:
        """After the last item: exactly the end-of-archive marker, then only zero padding."""
        fobj = self._tar.fileobj
        assert fobj is not None
        try:
            fobj.seek(self._tar.offset)
            block = fobj.read(2 * BLOCK)
            if block == b"\0" * (2 * BLOCK):
                while chunk := fobj.read(CHUNK):
                    if chunk.strip(b"\0"):
                        raise refused("end of bundle", "trailing data after the end-of-archive marker")
                return
        except (tarfile.TarError, zstandard.ZstdError, EOFError, OSError) as exc:
            raise refused("end of bundle", f"corrupt or truncated ({exc})") from None
        if not block.strip(b"\0"):
            raise refused("end of bundle", "truncated: the end-of-archive marker is missing")
        try:
            info = tarfile.TarInfo.frombuf(block[:BLOCK], "utf-8", "surrogateescape")
        except tarfile.HeaderError:
            raise refused("end of bundle", "unlisted data after the last item") from None
        _refuse_extra(info.name, expected)

    def _copy(self, member: tarfile.TarInfo, item: Item, out: BinaryIO | None, progress: Progress) -> None:
        fh = self._tar.extractfile(member)
        assert fh is not None
        digest, seen = hashlib.sha256(), 0
        try:
            while chunk := fh.read(CHUNK):
                seen += len(chunk)
                digest.update(chunk)
                if out is not None:
                    out.write(chunk)
                progress.advance(len(chunk))
        except (tarfile.TarError, zstandard.ZstdError, EOFError) as exc:
            raise refused(item.label, f"corrupt or truncated data ({exc})") from None
        if seen != item.size:
            raise refused(item.label, f"truncated: {seen} of {item.size} bytes")
        if digest.hexdigest() != item.sha256:
            raise refused(
                item.label, f"sha256 mismatch: manifest says {item.sha256}, data is {digest.hexdigest()}"
            )


def _refuse_extra(name: str, expected: dict[str, int]) -> None:
    check_relative_path(name, what=f"entry {name!r}")  # tar-slip gets its own message
    if name in expected:
        raise refused(f"entry {name!r}", "duplicate entry (appears twice in the bundle)")
    raise refused(f"entry {name!r}", "unlisted entry: not in the manifest")


def check_member_type(member: tarfile.TarInfo, what: str) -> None:
    if member.issym():
        raise refused(what, f"is a symbolic link (to {member.linkname!r}); bundles hold only regular files")
    if member.islnk():
        raise refused(what, f"is a hard link (to {member.linkname!r}); bundles hold only regular files")
    if member.ischr() or member.isblk():
        raise refused(what, "is a device file; bundles hold only regular files")
    if member.isfifo():
        raise refused(what, "is a FIFO; bundles hold only regular files")
    if member.isdir():
        raise refused(what, "is a directory entry; bundles hold only regular files")
    if member.issparse() or not member.isreg():
        raise refused(what, "is not a plain regular file; bundles hold only regular files")


def check_entry(member: tarfile.TarInfo, item: Item, index: int, expected: dict[str, int]) -> None:
    what = f"entry {member.name!r}"
    check_relative_path(member.name, what=what)  # tar-slip: '../x', '/etc/x'
    if member.name != item.path:
        where = expected.get(member.name)
        if where is None:
            raise refused(what, f"unlisted entry: not in the manifest (expected {item.label} here)")
        if where < index:
            raise refused(what, "duplicate entry (appears twice in the bundle)")
        raise refused(what, f"out of manifest order (expected {item.label} here)")
    check_member_type(member, item.label)
    if member.size != item.size:
        raise refused(
            item.label, f"size mismatch: the manifest says {item.size} bytes, the entry has {member.size}"
        )


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
        first = reader._pending
        offset = first.offset if first is not None else None
    if offset is None:
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

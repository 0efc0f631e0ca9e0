"""The one bundle stream reader, shared by `cortexctl` and `scripts/bundle_bootstrap.py`.

Why our own tar parser: `tarfile` reads an extended (PAX) or GNU long-name header whole
before anyone can look at its size, so a 16 KB bundle declaring a huge header took 4 GB
of memory before the signature was even looked at. Here every header and metadata record
is bounded *before* it is read (limits below, stated in bundles/FORMAT.md), entry data is
streamed in chunks, and the end of the archive follows one rule for both readers.

Standard library only: the bootstrap loads this file by path before CORTEX (or any
wheel) is installed. It knows the tar layout and the manifest's JSON shape; the typed
manifest model, signatures and installing live in the other `cortexctl.bundles` modules.
Every problem raises `Refused(what, problem)`: what was refused, and why.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Final, Protocol

BLOCK = 512
CHUNK = 1 << 20
MAX_PAX_BYTES = 64 * 1024  # one extended header's records, all together
MAX_LONGNAME_BYTES = 4096  # a GNU long-name / long-link record (PATH_MAX)
MAX_NAME_CHARS = 1024  # an entry name (the manifest allows item paths up to 1024)
MAX_META_HEADERS = 4  # metadata headers in a row before one entry
MAX_TRAILING_ZEROS = 1 << 20  # zero padding allowed after the end-of-archive marker
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_MANIFEST_DEPTH = 8  # JSON nesting; a real manifest is 3 deep
MAX_ITEMS = 10_000
MAX_SIGNATURE_BYTES = 4096
FORMAT = "cortex-bundle"
FORMAT_VERSION: Final = 2  # what the exporter writes
READABLE_VERSIONS = (1, 2)  # version 1: read only when it holds no wheelhouse (see check_distributions)
MAX_DISTRIBUTIONS = 2_000
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
KINDS = ("image", "model", "recipe", "wheelhouse", "engine-binary")

_COMPONENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+=-]{0,199}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TYPES = {
    b"1": "is a hard link (to {link!r}); bundles hold only regular files",
    b"2": "is a symbolic link (to {link!r}); bundles hold only regular files",
    b"3": "is a device file; bundles hold only regular files",
    b"4": "is a device file; bundles hold only regular files",
    b"5": "is a directory entry; bundles hold only regular files",
    b"6": "is a FIFO; bundles hold only regular files",
}


class Refused(Exception):
    """A bundle is refused: `what` names the entry or item, `problem` says why."""

    def __init__(self, what: str, problem: str) -> None:
        super().__init__(f"{what}: {problem}")
        self.what, self.problem = what, problem


class Truncated(Refused):
    """The stream ended cleanly at a header boundary where more was expected."""


class Reader(Protocol):
    def read(self, n: int, /) -> bytes: ...


# ---- names ------------------------------------------------------------------------------


def check_relative_path(path: str, *, what: str) -> None:
    """A plain relative name: no '..', no absolute path, no backslash, safe components."""
    if "\\" in path or "\x00" in path:
        raise Refused(what, f"{path!r} contains a backslash or NUL")
    if path.startswith("/"):
        raise Refused(what, f"{path!r} is an absolute path")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise Refused(what, f"{path!r} is not a plain relative path (empty, '.' or '..' component)")
    if len(parts) > 16:
        raise Refused(what, f"{path!r} is nested too deeply")
    for part in parts:
        if not _COMPONENT.fullmatch(part):
            raise Refused(what, f"{path!r}: component {part!r} has characters outside [A-Za-z0-9._+=-]")


def label(item: dict[str, Any]) -> str:
    return f"{item['kind']} {item['name']!r} ({item['path']})"


_WHEEL = re.compile(
    r"(?P<dist>[A-Za-z0-9](?:[A-Za-z0-9._]*[A-Za-z0-9])?)-(?P<version>[A-Za-z0-9_.!+]+)-.+\.whl"
)
_SDIST = re.compile(
    r"(?P<dist>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)-(?P<version>[0-9][A-Za-z0-9_.!+]*)\.(?:tar\.gz|zip)"
)


def distribution_of(filename: str) -> tuple[str, str]:
    """(normalized distribution name, version) of a wheel or sdist file name (PEP 427 / 625)."""
    m = _WHEEL.fullmatch(filename) or _SDIST.fullmatch(filename)
    if m is None:
        raise Refused(f"wheelhouse {filename!r}", "not a wheel or sdist file name (NAME-VERSION…)")
    return re.sub(r"[-_.]+", "-", m["dist"]).lower(), m["version"]


def check_wheelhouse(names: list[str]) -> dict[str, str]:
    """One version per distribution: pip must never get to choose between two."""
    seen: dict[str, str] = {}
    for name in names:
        dist, version = distribution_of(name)
        if seen.setdefault(dist, version) != version:
            raise Refused(
                f"wheelhouse {name!r}",
                f"a second version of {dist} ({seen[dist]} is also in the bundle); a wheelhouse holds one "
                "version of each distribution",
            )
    return seen


# ---- manifest and signature records ------------------------------------------------------


def json_depth_exceeds(data: bytes, limit: int) -> bool:
    """True when JSON nesting goes deeper than `limit` (strings skipped), before json.loads."""
    skeleton = re.sub(rb'"(?:[^"\\]|\\.)*"', b"", data)
    depth = 0
    for ch in skeleton.translate(None, delete=bytes(set(range(256)) - set(b"[]{}"))):
        depth += 1 if ch in b"[{" else -1
        if depth > limit:
            return True
    return False


def load_manifest_json(data: bytes) -> dict[str, Any]:
    """The manifest's JSON shape, bounded: size, depth, format, version, items. Raises Refused."""
    what = MANIFEST_NAME
    if len(data) > MAX_MANIFEST_BYTES:
        raise Refused(what, f"{len(data)} bytes, more than the {MAX_MANIFEST_BYTES} allowed")
    if json_depth_exceeds(data, MAX_MANIFEST_DEPTH):
        raise Refused(what, f"JSON nested more than {MAX_MANIFEST_DEPTH} levels deep")
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Refused(what, f"not valid JSON ({exc})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise Refused(what, f"not a CORTEX bundle manifest (format is not {FORMAT!r})")
    version = raw.get("format_version")
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        raise Refused(
            what,
            f"unsupported bundle format version {version!r}; "
            f"this reader reads versions {', '.join(map(str, READABLE_VERSIONS))}",
        )
    items = raw.get("items")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise Refused(what, "items: must be a list of objects")
    if len(items) > MAX_ITEMS:
        raise Refused(what, f"{len(items)} items, more than the {MAX_ITEMS} allowed")
    paths: set[str] = set()
    for n, item in enumerate(items):
        for key, typ in (("kind", str), ("name", str), ("path", str), ("sha256", str), ("size", int)):
            value = item.get(key)
            if not isinstance(value, typ) or isinstance(value, bool):
                raise Refused(what, f"items.{n}.{key}: missing or not a {typ.__name__}")
        if item["kind"] not in KINDS or item["size"] < 0 or not _SHA256.fullmatch(item["sha256"]):
            raise Refused(what, f"items.{n}: bad kind, size or sha256")
        check_relative_path(item["path"], what=f"{item['kind']} {item['name']!r}: path")
        if item["path"] in paths or item["path"] in (MANIFEST_NAME, SIGNATURE_NAME):
            raise Refused(label(item), "duplicate path, or a path that collides with the manifest")
        paths.add(item["path"])
    check_distributions(raw)
    return raw


def check_distributions(raw: dict[str, Any]) -> dict[str, str]:
    """The wheelhouse holds exactly the distributions on the manifest's (signed) list.

    Version 2 manifests carry `distributions`, the name and version of every distribution
    the definition's wheelhouse resolved to at export, read from each file's own metadata.
    A wheelhouse file not on the list, at another version, or a listed distribution with no
    file is refused. Version 1 manifests have no list: one holding wheelhouse files is
    refused (its wheels cannot be checked), one without is read as before.
    """
    what = MANIFEST_NAME
    wheels = [i for i in raw["items"] if i["kind"] == "wheelhouse"]
    if raw["format_version"] == 1:
        if "distributions" in raw:
            raise Refused(what, "distributions: not a field of format version 1")
        if wheels:
            raise Refused(
                label(wheels[0]),
                f"a format version 1 bundle carries no signed list of distributions, so its {len(wheels)} "
                "wheelhouse file(s) cannot be checked; re-export the bundle with this cortexctl "
                f"(format version {FORMAT_VERSION})",
            )
        return {}
    listed = raw.get("distributions")
    if not isinstance(listed, list) or not all(isinstance(d, dict) for d in listed):
        raise Refused(what, "distributions: missing or not a list of objects (format version 2 needs it)")
    if len(listed) > MAX_DISTRIBUTIONS:
        raise Refused(what, f"{len(listed)} distributions, more than the {MAX_DISTRIBUTIONS} allowed")
    declared: dict[str, str] = {}
    for n, dist in enumerate(listed):
        name, version = dist.get("name"), dist.get("version")
        if set(dist) != {"name", "version"} or not isinstance(name, str) or not isinstance(version, str):
            raise Refused(what, f"distributions.{n}: must be {{name, version}} strings")
        if name != re.sub(r"[-_.]+", "-", name).lower() or not re.fullmatch(
            r"[a-z0-9][a-z0-9-]{0,199}", name
        ):
            raise Refused(what, f"distributions.{n}: {name[:80]!r} is not a normalized distribution name")
        if not re.fullmatch(r"[A-Za-z0-9_.!+]{1,100}", version):
            raise Refused(what, f"distributions.{n}: {version[:80]!r} is not a version")
        if name in declared:
            raise Refused(what, f"distributions.{n}: {name} is listed twice")
        declared[name] = version
    present = check_wheelhouse([i["name"] for i in wheels])
    for item in wheels:
        dist, version = distribution_of(item["name"])
        if dist not in declared:
            raise Refused(
                label(item),
                f"distribution {dist} is not on the bundle's signed list of distributions "
                "(a wheel the bundle definition did not declare)",
            )
        if declared[dist] != version:
            raise Refused(
                label(item),
                f"{dist} {version}, but the bundle's signed list of distributions says {declared[dist]}",
            )
    missing = sorted(set(declared) - set(present))
    if missing:
        raise Refused(
            what,
            f"distributions: {', '.join(missing[:5])} listed, but the bundle holds no wheelhouse file for "
            f"{'it' if len(missing) == 1 else 'them'}",
        )
    return declared


def load_signature_json(data: bytes) -> dict[str, str]:
    """`{"algorithm", "key_id", "signature"}` as strings, or Refused saying what is wrong."""
    what = SIGNATURE_NAME
    if len(data) > MAX_SIGNATURE_BYTES:
        raise Refused(what, f"{len(data)} bytes, more than the {MAX_SIGNATURE_BYTES} allowed")
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Refused(what, "malformed signature (not JSON)") from None
    if not isinstance(body, dict):
        raise Refused(what, f"malformed signature (a JSON {type(body).__name__}, not an object)")
    for key in ("algorithm", "key_id", "signature"):
        if not isinstance(body.get(key), str):
            raise Refused(what, f"malformed signature ({key} is missing or not a string)")
    if body["algorithm"] != "ed25519":
        raise Refused(what, f"unsupported algorithm {body['algorithm']!r} (expected 'ed25519')")
    return {k: body[k] for k in ("algorithm", "key_id", "signature")}


# ---- tar headers ----------------------------------------------------------------------------


@dataclass
class Member:
    name: str
    size: int
    type: bytes
    linkname: str = ""
    offset: int = 0  # stream offset of its first header (metadata headers included)


def _number(field_: bytes, what: str) -> int:
    if field_[:1] in (b"\x80", b"\xff"):  # base-256 (GNU/star)
        if field_[:1] == b"\xff":
            raise Refused(what, "negative number in a tar header")
        return int.from_bytes(field_[1:], "big")
    text = field_.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    if not re.fullmatch(rb"[0-7]+", text):
        raise Refused(what, f"corrupt tar header (number field {text[:12]!r})")
    return int(text, 8)


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.split(b"\0", 1)[0].decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(what, "entry name is not UTF-8") from None


def _pax_records(data: bytes, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        if data[pos:].strip(b"\0") == b"":
            break
        m = re.match(rb"([0-9]{1,6}) ", data[pos : pos + 8])
        if m is None:
            raise Refused(what, "corrupt extended (PAX) header record")
        length = int(m.group(1))
        record = data[pos : pos + length]
        if length <= len(m.group(0)) or len(record) != length or not record.endswith(b"\n"):
            raise Refused(what, "corrupt extended (PAX) header record length")
        key, sep, value = record[len(m.group(0)) : -1].partition(b"=")
        if not sep:
            raise Refused(what, "corrupt extended (PAX) header record")
        try:
            out[key.decode("utf-8")] = value.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused(what, "extended (PAX) header record is not UTF-8") from None
        pos += length
    for name in out:
        if name.startswith("GNU.sparse"):
            raise Refused(what, "is a sparse file; bundles hold only regular files")
    return out


class TarStream:
    """Sequential tar entries from `fileobj`, every header bounded before it is read."""

    def __init__(self, fileobj: Reader) -> None:
        self._f = fileobj
        self.pos = 0  # bytes consumed from the stream
        self._left = 0  # data bytes of the current entry not read yet
        self._pad = 0

    def _read(self, n: int) -> bytes:
        parts, want = [], n
        while want > 0:
            chunk = self._f.read(min(want, CHUNK))
            if not chunk:
                break
            parts.append(chunk)
            want -= len(chunk)
        data = b"".join(parts)
        self.pos += len(data)
        return data

    def _exact(self, n: int, what: str, where: str) -> bytes:
        data = self._read(n)
        if len(data) != n:
            raise Refused(what, f"truncated: the bundle ends inside {where}")
        return data

    def read(self, n: int = CHUNK) -> bytes:
        """Up to n bytes of the current entry's data (b'' at its end)."""
        n = min(n, self._left)
        if n <= 0:
            return b""
        data = self._read(n)
        self._left -= len(data)
        if len(data) < n:
            raise Refused(
                self._what,
                f"truncated: the bundle ends inside this entry's data ({self._left} bytes missing)",
            )
        return data

    def skip_rest(self) -> None:
        while self._left:
            self.read(CHUNK)
        if self._pad:
            if self._exact(self._pad, self._what, "the padding after an entry").strip(b"\0"):
                raise Refused(self._what, "non-zero padding after the entry's data")
            self._pad = 0

    def next(self, expecting: str) -> Member | None:
        """The next entry's header; None at the end-of-archive marker (checked whole)."""
        self._what = expecting
        self.skip_rest()
        start, pax, longname, longlink = self.pos, {}, None, None
        for _ in range(MAX_META_HEADERS + 1):
            header = self._read(BLOCK)
            if not header:
                raise Truncated(expecting, "missing: the bundle ends here, without the end-of-archive marker")
            if len(header) != BLOCK:
                raise Refused(expecting, "truncated: the bundle ends inside a tar header")
            if header == b"\0" * BLOCK:
                second = self._exact(
                    BLOCK, "end of bundle", "the end-of-archive marker (one zero block of two)"
                )
                if second != b"\0" * BLOCK:
                    raise Refused(
                        "end of bundle", "a zero block followed by data (damaged end-of-archive marker)"
                    )
                return None
            kind, size, name, linkname = self._parse_header(header, expecting)
            self._what = expecting
            if kind == b"x":
                if size > MAX_PAX_BYTES:
                    raise Refused(
                        expecting,
                        f"extended (PAX) header of {size} bytes, more than the {MAX_PAX_BYTES} allowed",
                    )
                pax.update(_pax_records(self._meta(size, expecting), expecting))
                continue
            if kind in (b"L", b"K"):
                if size > MAX_LONGNAME_BYTES:
                    raise Refused(
                        expecting,
                        f"GNU long-name record of {size} bytes, more than the {MAX_LONGNAME_BYTES} allowed",
                    )
                value = _text(self._meta(size, expecting), expecting)
                longname, longlink = (value, longlink) if kind == b"L" else (longname, value)
                continue
            if kind == b"g":
                raise Refused(expecting, "global extended (PAX) header: not allowed in bundles")
            name = pax.get("path", longname if longname is not None else name)
            linkname = pax.get("linkpath", longlink if longlink is not None else linkname)
            if "size" in pax:
                if not re.fullmatch(r"[0-9]{1,20}", pax["size"]):
                    raise Refused(expecting, f"corrupt extended (PAX) header: size {pax['size'][:24]!r}")
                size = int(pax["size"])
            if kind == b"5":
                name = name.rstrip("/")  # a directory's name, as tar writes it: refused by type below
            if len(name) > MAX_NAME_CHARS:
                raise Refused(
                    expecting, f"entry name of {len(name)} characters, more than the {MAX_NAME_CHARS} allowed"
                )
            self._left, self._pad = size, -size % BLOCK
            self._what = f"entry {name!r}"
            return Member(name=name, size=size, type=kind, linkname=linkname, offset=start)
        raise Refused(expecting, f"more than {MAX_META_HEADERS} metadata headers in a row")

    def _meta(self, size: int, what: str) -> bytes:
        data = self._exact(size, what, "an extended header")
        self._exact(-size % BLOCK, what, "an extended header")
        return data

    def _parse_header(self, header: bytes, what: str) -> tuple[bytes, int, str, str]:
        stored = _number(header[148:156], what)
        unsigned = sum(header[:148]) + 8 * 32 + sum(header[156:])
        signed = unsigned - 2 * sum(b for b in header[:148] + header[156:] if b > 127)
        if stored not in (unsigned, signed):
            raise Refused(what, "corrupt tar header (checksum mismatch)")
        magic = header[257:265]
        if magic not in (b"ustar\x0000", b"ustar  \x00"):
            raise Refused(what, "not a POSIX (ustar/pax) tar header")
        name = _text(header[0:100], what)
        prefix = _text(header[345:500], what) if magic == b"ustar\x0000" else ""
        if prefix:
            name = f"{prefix}/{name}"
        return header[156:157], _number(header[124:136], what), name, _text(header[157:257], what)

    def finish(self) -> None:
        """After the end-of-archive marker: at most MAX_TRAILING_ZEROS zero bytes, then EOF."""
        seen = 0
        while chunk := self._f.read(min(CHUNK, MAX_TRAILING_ZEROS + 1 - seen) or 1):
            seen += len(chunk)
            self.pos += len(chunk)
            if chunk.strip(b"\0"):
                raise Refused("end of bundle", "trailing data after the end-of-archive marker")
            if seen > MAX_TRAILING_ZEROS:
                raise Refused(
                    "end of bundle",
                    f"more than {MAX_TRAILING_ZEROS} bytes of padding after the end-of-archive marker",
                )


# ---- the bundle walk: head, then items in manifest order, then the end ----------------------


def check_member(member: Member, what: str) -> None:
    if member.type in _TYPES:
        raise Refused(what, _TYPES[member.type].format(link=member.linkname))
    if member.type not in (b"0", b"\0"):
        raise Refused(what, "is not a plain regular file; bundles hold only regular files")


@dataclass
class Head:
    manifest_bytes: bytes
    manifest: dict[str, Any]
    signature: bytes | None
    items_offset: int  # stream offset where the head ends (the first item's header starts)


Sink = Callable[[dict[str, Any]], BinaryIO | None]


@dataclass
class BundleStream:
    """One pass over a bundle's decompressed tar stream: `head()`, then `read_items(...)`."""

    stream: TarStream
    _pending: Member | Refused | None | str = "unread"
    _head: Head | None = None
    _items: list[dict[str, Any]] = field(default_factory=list)

    def _small(self, member: Member, what: str, limit: int) -> bytes:
        check_member(member, what)
        if member.size > limit:
            raise Refused(what, f"entry is {member.size} bytes, more than the {limit} allowed")
        data = self.stream.read(member.size)
        return data

    def head(self) -> Head:
        if self._head is not None:
            return self._head
        member = self.stream.next(MANIFEST_NAME)
        if member is None or member.name != MANIFEST_NAME:
            got = "nothing" if member is None else repr(member.name)
            raise Refused(MANIFEST_NAME, f"the bundle must start with {MANIFEST_NAME}, found {got}")
        data = self._small(member, MANIFEST_NAME, MAX_MANIFEST_BYTES)
        manifest = load_manifest_json(data)
        self._items = manifest["items"]
        first = label(self._items[0]) if self._items else "end of bundle"
        self.stream.skip_rest()
        signature, offset = None, self.stream.pos
        try:
            pending: Member | Refused | None | str = self.stream.next(first)
        except Truncated as exc:  # a copy of only the head: fine until someone reads the items
            pending = exc
        if isinstance(pending, Member) and pending.name == SIGNATURE_NAME:
            signature = self._small(pending, SIGNATURE_NAME, MAX_SIGNATURE_BYTES)
            self.stream.skip_rest()
            pending, offset = "unread", self.stream.pos
        self._pending = pending
        self._head = Head(data, manifest, signature, offset)
        return self._head

    def read_items(self, sink: Sink, advance: Callable[[int], None] | None = None) -> None:
        """Stream every item through sha256 into `sink(item)`; raise on the first disagreement."""
        self.head()
        items = self._items
        expected = {i["path"]: n for n, i in enumerate(items)}
        member = self._pending
        if member == "unread":
            member = self.stream.next(label(items[0]) if items else "end of bundle")
        if isinstance(member, Refused):
            raise member
        assert member is None or isinstance(member, Member)
        for n, item in enumerate(items):
            if member is None:
                raise Refused(label(item), "missing: the bundle ends before this entry (truncated?)")
            _check_entry(member, item, n, expected)
            _copy(self.stream, item, sink(item), advance)
            member = self.stream.next(label(items[n + 1]) if n + 1 < len(items) else "end of bundle")
        if member is not None:
            check_relative_path(member.name, what=f"entry {member.name!r}")
            if member.name in expected or member.name in (MANIFEST_NAME, SIGNATURE_NAME):
                raise Refused(f"entry {member.name!r}", "duplicate entry (appears twice in the bundle)")
            raise Refused(f"entry {member.name!r}", "unlisted entry: not in the manifest")
        self.stream.finish()


def _check_entry(member: Member, item: dict[str, Any], index: int, expected: dict[str, int]) -> None:
    what = f"entry {member.name!r}"
    check_relative_path(member.name, what=what)
    if member.name != item["path"]:
        where = expected.get(member.name)
        if where is None:
            raise Refused(what, f"unlisted entry: not in the manifest (expected {label(item)} here)")
        if where < index:
            raise Refused(what, "duplicate entry (appears twice in the bundle)")
        raise Refused(what, f"out of manifest order (expected {label(item)} here)")
    check_member(member, label(item))
    if member.size != item["size"]:
        raise Refused(
            label(item), f"size mismatch: the manifest says {item['size']} bytes, the entry has {member.size}"
        )


def _copy(
    stream: TarStream, item: dict[str, Any], out: BinaryIO | None, advance: Callable[[int], None] | None
) -> None:
    digest, seen = hashlib.sha256(), 0
    while chunk := stream.read(CHUNK):
        seen += len(chunk)
        if seen > item["size"]:  # cannot happen (sizes checked), but never write past the declared size
            raise Refused(label(item), "more data than the manifest declares")
        digest.update(chunk)
        if out is not None:
            out.write(chunk)
        if advance is not None:
            advance(len(chunk))
    if digest.hexdigest() != item["sha256"]:
        raise Refused(
            label(item), f"sha256 mismatch: manifest says {item['sha256']}, data is {digest.hexdigest()}"
        )

"""A generated corpus of hostile and broken bundles, built from good ones at test time.

Each case is a function of the good bundles (plain, zstd, signed) that writes one bad
bundle, with the reason `cortexctl bundle import` must give and what the stdlib
bootstrap must say about the same file (it judges structure, headers, manifest shape,
signature, wheel names and truncation; recipe and file content is `cortexctl`'s job).
Categories: headers, structure, manifest, signature, content, truncation, zstd.
"""

from __future__ import annotations

import base64
import io
import json
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cortexctl.bundles.tarstream import distribution_of
from tests.bundles.helpers import (
    Entry,
    manifest_of,
    read_entries,
    sdist_bytes,
    wheel_bytes,
    with_manifest,
    write_entries,
)

BLOCK = 512


@dataclass
class Bases:
    plain: Path  # unsigned, no compression
    zstd: Path  # unsigned, zstd
    signed: Path  # signed by the trusted key, no compression
    signed_zstd: Path
    rogue: Path  # signed by a key the host does not trust
    rogue_key: Any  # an Ed25519PrivateKey, to forge signatures


@dataclass
class Case:
    name: str
    category: str
    build: Callable[[Bases, Path], Path]
    reason: str  # regex on cortexctl's refusal
    bootstrap: str | None = None  # regex on the bootstrap's refusal; None: the same as `reason`
    bootstrap_accepts: bool = False  # content only cortexctl judges
    allow_unsigned: bool = True
    replace: bool = False
    setup: str = ""  # "engine-present" | "model-present" | "pinned" | "recipe-present"
    extra: dict[str, Any] = field(default_factory=dict)


# ---- raw tar pieces -----------------------------------------------------------------------


def header(
    name: str,
    size: int,
    kind: bytes = b"0",
    *,
    size_field: bytes | None = None,
    magic: bytes = b"ustar\x0000",
    bad_checksum: bool = False,
) -> bytes:
    h = bytearray(BLOCK)
    raw = name.encode()[:100]
    h[0 : len(raw)] = raw
    h[100:108] = b"0000644\0"
    h[108:116] = h[116:124] = b"0000000\0"
    if size_field is None:
        size_field = f"{size:011o}\0".encode() if size < 8**11 else b"\x80" + size.to_bytes(11, "big")
    h[124:136] = size_field
    h[136:148] = b"00000000000\0"
    h[156:157] = kind
    h[257:265] = magic
    h[148:156] = b" " * 8
    h[148:156] = f"{sum(h):06o}\0 ".encode()
    if bad_checksum:
        h[148:156] = b"000001\0 "
    return bytes(h)


def pax_data(records: dict[str, str]) -> bytes:
    out = b""
    for key, value in records.items():
        body = f" {key}={value}\n".encode()
        n = len(body) + 1
        while len(str(n)) + len(body) != n:
            n = len(str(n)) + len(body)
        out += str(n).encode() + body
    return out


def pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % BLOCK)


def pax_entry(records: dict[str, str], kind: bytes = b"x") -> bytes:
    data = pax_data(records)
    return header("PaxHeader/x", len(data), kind) + pad(data)


def _prefix(base: str, prefix: bytes) -> Callable[[Bases, Path], Path]:
    def build(b: Bases, out: Path) -> Path:
        out.write_bytes(prefix + getattr(b, base).read_bytes())
        return out

    return build


def _members(path: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(path, "r:") as tar:
        return tar.getmembers()


def _end_of_items(path: Path) -> int:
    last = _members(path)[-1]
    return last.offset_data + last.size + (-last.size % BLOCK)


def _cut(base: str, where: Callable[[Path], int]) -> Callable[[Bases, Path], Path]:
    def build(b: Bases, out: Path) -> Path:
        src = getattr(b, base)
        out.write_bytes(src.read_bytes()[: where(src)])
        return out

    return build


def _edit(base: str, fn: Callable[[list[Entry]], list[Entry]]) -> Callable[[Bases, Path], Path]:
    def build(b: Bases, out: Path) -> Path:
        return write_entries(out, fn(read_entries(getattr(b, base))))

    return build


def _bytes(fn: Callable[[bytes], bytes], base: str = "plain") -> Callable[[Bases, Path], Path]:
    def build(b: Bases, out: Path) -> Path:
        out.write_bytes(fn(getattr(b, base).read_bytes()))
        return out

    return build


def _with_sig(sig: bytes) -> Callable[[list[Entry]], list[Entry]]:
    def fn(entries: list[Entry]) -> list[Entry]:
        return [entries[0], (tarfile.TarInfo("manifest.sig"), sig)] + [
            e for e in entries[1:] if e[0].name != "manifest.sig"
        ]

    return fn


def _manifest_bytes(data: bytes) -> Callable[[list[Entry]], list[Entry]]:
    return lambda e: [(tarfile.TarInfo("manifest.json"), data)] + e[1:]


def _item(kind: str, **changes: Any) -> Callable[[list[Entry]], list[Entry]]:
    def fn(entries: list[Entry]) -> list[Entry]:
        m = manifest_of(entries)
        next(i for i in m["items"] if i["kind"] == kind).update(changes)
        return with_manifest(entries, m)

    return fn


def _add_item(
    kind: str, name: str, data: bytes, *, listed: bool = False
) -> Callable[[list[Entry]], list[Entry]]:
    """A new item with a correct size and sha256 (content checks, not structure, must refuse it).

    `listed`: a wheelhouse file whose distribution is also added to the manifest's list."""
    import hashlib

    def fn(entries: list[Entry]) -> list[Entry]:
        m = manifest_of(entries)
        if listed:
            dist, version = distribution_of(name)
            m["distributions"] = [d for d in m["distributions"] if d["name"] != dist]
            m["distributions"].append({"name": dist, "version": version})
        folder = {"recipe": "recipes", "wheelhouse": "wheelhouse", "model": "models"}[kind]
        path = f"{folder}/{name}"
        m["items"].append(
            {
                "kind": kind,
                "name": name,
                "path": path,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
        return with_manifest(entries, m) + [(tarfile.TarInfo(path), data)]

    return fn


def _replace_recipe(text: str) -> Callable[[list[Entry]], list[Entry]]:
    import hashlib

    def fn(entries: list[Entry]) -> list[Entry]:
        m = manifest_of(entries)
        item = next(i for i in m["items"] if i["kind"] == "recipe")
        data = text.encode()
        item.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
        out = with_manifest(entries, m)
        return [(i, data) if i.name == item["path"] else (i, d) for i, d in out]

    return fn


def _rle_zeros_frame(total: int) -> bytes:
    """A zstd frame of RLE blocks: `total` zero bytes in about total/32768 bytes of file."""
    frame = b"\x28\xb5\x2f\xfd" + bytes([0x00, (17 - 10) << 3])  # no checksum, 128 KiB window
    block = 128 * 1024
    n = total // block
    body = bytearray()
    for k in range(n):
        last = 1 if k == n - 1 else 0
        body += (last | (1 << 1) | (block << 3)).to_bytes(3, "little") + b"\0"
    return frame + bytes(body)


def _zstd_pax_bomb(b: Bases, out: Path) -> Path:
    """256 MiB of extended-header records before the manifest, compressed to a few hundred KB."""
    import zstandard

    size = 256 << 20
    with out.open("wb") as fh, zstandard.ZstdCompressor(level=3, write_checksum=True).stream_writer(fh) as w:
        w.write(header("PaxHeader/m", size, b"x"))
        zeros = b"\0" * (1 << 20)
        for _ in range(size >> 20):
            w.write(zeros)
        w.write(b.plain.read_bytes())
    return out


def _forged(b: Bases, out: Path) -> Path:
    """Signed by the rogue key, but claiming the trusted key's id."""
    entries = read_entries(b.signed)
    sig = json.loads(entries[1][1] or b"")
    sig["signature"] = base64.b64encode(b.rogue_key.sign(entries[0][1])).decode()
    return write_entries(out, _with_sig(json.dumps(sig).encode())(entries))


def _altered_after_signing(b: Bases, out: Path) -> Path:
    entries = read_entries(b.signed)
    m = manifest_of(entries)
    m["description"] = "edited after signing"
    return write_entries(out, with_manifest(entries, m))


def _manifest_edit(fn: Callable[[dict[str, Any]], None]) -> Callable[[list[Entry]], list[Entry]]:
    def edit(entries: list[Entry]) -> list[Entry]:
        m = manifest_of(entries)
        fn(m)
        return with_manifest(entries, m)

    return edit


def _replace_wheel(name: str, make: Callable[[], bytes]) -> Callable[[list[Entry]], list[Entry]]:
    """The wheelhouse file `name` replaced by `make()`'s bytes, its manifest item updated to match."""
    import hashlib

    def fn(entries: list[Entry]) -> list[Entry]:
        data = make()
        m = manifest_of(entries)
        item = next(i for i in m["items"] if i["name"] == name)
        item.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
        out = with_manifest(entries, m)
        return [(i, data) if i.name == item["path"] else (i, d) for i, d in out]

    return fn


def _swap_wheel(old: str, new: str) -> Callable[[list[Entry]], list[Entry]]:
    """Wheel `old` swapped for a real wheel `new` of the same distribution; item and list updated."""

    def fn(entries: list[Entry]) -> list[Entry]:
        import hashlib

        data = wheel_bytes(new)
        m = manifest_of(entries)
        item = next(i for i in m["items"] if i["name"] == old)
        old_path = item["path"]
        item.update(
            name=new, path=f"wheelhouse/{new}", size=len(data), sha256=hashlib.sha256(data).hexdigest()
        )
        dist, version = distribution_of(new)
        next(d for d in m["distributions"] if d["name"] == dist)["version"] = version
        out = []
        for info, payload in with_manifest(entries, m):
            if info.name == old_path:
                info, payload = tarfile.TarInfo(item["path"]), data
            out.append((info, payload))
        return out

    return fn


def _metadata_bomb() -> bytes:
    """A valid wheel whose METADATA deflates from ~65 KB to 64 MiB."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("alpha-1.0.dist-info/METADATA", b"Name: alpha\n" + b"X" * ((64 << 20) - 12))
    return buf.getvalue()


def _corrupt_deflate() -> bytes:
    """A wheel whose METADATA's deflate stream is damaged (CRC and sizes as written)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("alpha-1.0.dist-info/METADATA", "Name: alpha\nVersion: 1.0\n" * 64)
    data = bytearray(buf.getvalue())
    start = data.find(b"alpha-1.0.dist-info/METADATA") + len("alpha-1.0.dist-info/METADATA")
    data[start + 4 : start + 16] = b"\xff" * 12
    return bytes(data)


def _corrupt_gzip_sdist() -> bytes:
    """An sdist named beta-2.0.tar.gz whose gzip stream is damaged after its header."""
    data = bytearray(sdist_bytes("beta-2.0.tar.gz"))
    data[20:60] = b"\xff" * 40
    return bytes(data)


def _huge_central_directory() -> bytes:
    """A wheel whose end record claims a 2 GiB central directory (zipfile would read it whole)."""
    data = bytearray(wheel_bytes("alpha-1.0-py3-none-any.whl"))
    at = data.rfind(b"PK\x05\x06")
    data[at + 12 : at + 16] = (0x7FFFFFFF).to_bytes(4, "little")
    return bytes(data)


def _good_sig(b: Bases) -> dict[str, str]:
    return json.loads(read_entries(b.signed)[1][1] or b"")


def _sig_edit(change: Callable[[dict[str, Any]], Any]) -> Callable[[Bases, Path], Path]:
    def build(b: Bases, out: Path) -> Path:
        body = change(_good_sig(b))
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return write_entries(out, _with_sig(data)(read_entries(b.signed)))

    return build


def _deep(n: int) -> bytes:
    return b'{"format": "cortex-bundle", "format_version": 1, "x": ' + b"[" * n + b"]" * n + b"}"


def _many_items(b: Bases, out: Path) -> Path:
    entries = read_entries(b.plain)
    m = manifest_of(entries)
    m["items"] = [dict(m["items"][0], path=f"x/{n}") for n in range(10_001)]
    return write_entries(out, with_manifest(entries, m))


def _typed(m: tarfile.TarInfo, kind: bytes) -> tarfile.TarInfo:
    m = _renamed(m, m.name)
    m.type = kind
    return m


def _renamed(m: tarfile.TarInfo, name: str) -> tarfile.TarInfo:
    out = tarfile.TarInfo(name)
    out.size, out.type = m.size, m.type
    return out


def _end_of_items_bytes(data: bytes) -> int:
    tmp = io.BytesIO(data)
    with tarfile.open(fileobj=tmp, mode="r:") as tar:
        last = tar.getmembers()[-1]
    return last.offset_data + last.size + (-last.size % BLOCK)


def _pax_slip(data: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        m = next(x for x in tar.getmembers() if x.name.startswith("models/"))
    return data[: m.offset] + pax_entry({"path": "../evil.gguf"}) + data[m.offset :]


def _dirty_padding(data: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        m = next(x for x in tar.getmembers() if x.size % BLOCK)
    at = m.offset_data + m.size
    return data[:at] + b"X" + data[at + 1 :]


def _flip_late(data: bytes) -> bytes:
    out = bytearray(data)
    out[len(out) * 2 // 3] ^= 0x40
    return bytes(out)


def _big_window(data: bytes) -> bytes:
    import subprocess

    raw = subprocess.run(["zstd", "-dc"], input=data, capture_output=True, check=True).stdout
    return subprocess.run(
        ["zstd", "-q", "--long=27", "-1", "-c"], input=raw, capture_output=True, check=True
    ).stdout


def _copy(src: Path, out: Path) -> Path:
    out.write_bytes(src.read_bytes())
    return out

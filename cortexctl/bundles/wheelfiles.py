"""Which distribution a wheelhouse file really holds: its own metadata, read with bounds.

Why: a bundle's wheelhouse is installed by pip before anything else runs, so a file named
`alpha-1.0-py3-none-any.whl` that really holds `cortex_appliance` (a renamed wheel)
would replace CORTEX itself. Export, import and the bootstrap read the name and version
a file declares inside (a wheel's `*.dist-info/METADATA`, an sdist's top-level
`PKG-INFO`) and refuse a file whose inside disagrees with its name.

Hostile files are bounded before they are read: a zip's central directory and entry
count are checked from its end record before `zipfile` reads it, the metadata record is
at most MAX_METADATA_BYTES, and an sdist's tar stream is walked with the bundle reader's
bounded headers, decompressing at most MAX_SDIST_SCAN bytes.

Standard library only: the bootstrap loads this file by path before CORTEX is installed.
Problems raise `WheelFileError(problem)`; callers say which item it was.
"""

from __future__ import annotations

import gzip
import re
import struct
import zipfile
import zlib
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

MAX_METADATA_BYTES = 1024 * 1024
MAX_CENTRAL_DIRECTORY = 32 * 1024 * 1024
MAX_ZIP_ENTRIES = 200_000
MAX_SDIST_SCAN = 2 * 1024 * 1024 * 1024  # decompressed bytes walked to find PKG-INFO
_EOCD = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_EOCD = b"PK\x06\x06"


# what a damaged zip raises: zlib.error is not an OSError (a bad deflate stream)
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError, zlib.error)


class WheelFileError(Exception):
    """The file is not what its name says, or cannot be read within the bounds."""


def normalize(name: str) -> str:
    """PEP 503 normalized distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _check_zip_bounds(path: Path) -> None:
    """The central directory's size and entry count, from the end record, before zipfile reads it."""
    with path.open("rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        tail_len = min(size, 22 + 65535)
        fh.seek(size - tail_len)
        tail = fh.read(tail_len)
        at = tail.rfind(_EOCD)
        if at < 0 or len(tail) - at < 22:
            raise WheelFileError("not a zip file (no end-of-central-directory record)")
        _, _, _, entries, cd_size, _ = struct.unpack("<HHHHII", tail[at + 4 : at + 20])
        if entries == 0xFFFF or cd_size == 0xFFFFFFFF:  # zip64: the real numbers are in its own record
            loc = tail[at - 20 : at] if at >= 20 else b""
            if not loc.startswith(_ZIP64_LOCATOR):
                raise WheelFileError("corrupt zip64 end record")
            _, offset, _ = struct.unpack("<IQI", loc[4:])
            if offset > size - 56:
                raise WheelFileError("corrupt zip64 end record")
            fh.seek(offset)
            rec = fh.read(56)
            if not rec.startswith(_ZIP64_EOCD):
                raise WheelFileError("corrupt zip64 end record")
            entries, cd_size = struct.unpack("<QQ", rec[32:48])
    if cd_size > MAX_CENTRAL_DIRECTORY or entries > MAX_ZIP_ENTRIES:
        raise WheelFileError(
            f"zip central directory of {cd_size} bytes / {entries} entries, more than the "
            f"{MAX_CENTRAL_DIRECTORY} bytes / {MAX_ZIP_ENTRIES} entries allowed"
        )


def _parse_metadata(data: bytes, where: str) -> tuple[str, str]:
    try:
        headers = HeaderParser().parsestr(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise WheelFileError(f"{where} is not UTF-8") from None
    name, version = headers.get("Name"), headers.get("Version")
    if not name or not version:
        raise WheelFileError(f"{where} has no Name or no Version")
    return normalize(name.strip()), version.strip()


def _zip_metadata(path: Path, *, wheel: bool) -> tuple[str, str]:
    _check_zip_bounds(path)
    try:
        with zipfile.ZipFile(path) as zf:
            if wheel:
                found = [i for i in zf.infolist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", i.filename)]
                what = "*.dist-info/METADATA"
            else:
                found = [i for i in zf.infolist() if re.fullmatch(r"[^/]+/PKG-INFO", i.filename)]
                what = "a top-level PKG-INFO"
            if len(found) != 1:
                raise WheelFileError(f"holds {len(found)} {what} records; a distribution has exactly one")
            info = found[0]
            if info.file_size > MAX_METADATA_BYTES:
                raise WheelFileError(
                    f"{info.filename} is {info.file_size} bytes, more than the {MAX_METADATA_BYTES} allowed"
                )
            with zf.open(info) as fh:  # reads at most file_size bytes, then checks the CRC
                data = fh.read(MAX_METADATA_BYTES + 1)
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,
        EOFError,
        OSError,
        zlib.error,
    ) as exc:
        raise WheelFileError(f"not a readable zip file ({exc})") from None
    if len(data) > MAX_METADATA_BYTES:
        raise WheelFileError(f"metadata record larger than {MAX_METADATA_BYTES} bytes")
    name, version = _parse_metadata(data, info.filename)
    if wheel:
        folder = normalize(info.filename.split("/", 1)[0].removesuffix(".dist-info").rsplit("-", 1)[0])
        if folder != name:
            raise WheelFileError(f"its {info.filename} folder does not match the metadata name {name!r}")
    return name, version


class _Budget:
    """A gzip stream that stops after MAX_SDIST_SCAN decompressed bytes."""

    def __init__(self, fh: Any) -> None:
        self.fh, self.left = fh, MAX_SDIST_SCAN

    def read(self, n: int) -> bytes:
        if self.left <= 0:
            raise WheelFileError(f"no top-level PKG-INFO in the first {MAX_SDIST_SCAN} decompressed bytes")
        data: bytes = self.fh.read(min(n, self.left))
        self.left -= len(data)
        return data


def _targz_metadata(path: Path, tarstream: Any) -> tuple[str, str]:
    try:
        with gzip.open(path, "rb") as gz:
            stream = tarstream.TarStream(_Budget(gz))
            while True:
                member = stream.next("sdist entry")
                if member is None:
                    raise WheelFileError("holds no top-level PKG-INFO")
                if member.type in (b"0", b"\0") and re.fullmatch(r"[^/]+/PKG-INFO", member.name):
                    if member.size > MAX_METADATA_BYTES:
                        raise WheelFileError(
                            f"{member.name} is {member.size} bytes, more than {MAX_METADATA_BYTES}"
                        )
                    return _parse_metadata(stream.read(member.size), member.name)
    except tarstream.Refused as exc:
        raise WheelFileError(f"not a readable sdist ({exc})") from None
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise WheelFileError(f"not a readable gzip file ({exc})") from None


def declared_by_file(path: Path, tarstream: Any) -> tuple[str, str]:
    """(normalized name, version) the file declares inside. `tarstream`: the bundle reader module
    (passed in because the bootstrap loads it by path)."""
    name = path.name
    if name.endswith(".whl"):
        return _zip_metadata(path, wheel=True)
    if name.endswith(".zip"):
        return _zip_metadata(path, wheel=False)
    if name.endswith(".tar.gz"):
        return _targz_metadata(path, tarstream)
    raise WheelFileError("not a .whl, .tar.gz or .zip file")


def check_file(path: Path, filename: str, tarstream: Any) -> tuple[str, str]:
    """The file's inside must name the distribution and version its file name (`filename`) says."""
    want: tuple[str, str] = tarstream.distribution_of(filename)
    got = declared_by_file(path, tarstream)
    if got != want and not (got[0] == want[0] and _same_version(got[1], want[1])):
        raise WheelFileError(
            f"the file is named for {want[0]} {want[1]} but holds {got[0]} {got[1]} (renamed?)"
        )
    return want


def _same_version(a: str, b: str) -> bool:
    # File names escape '-' as '_' in versions (PEP 427); compare the escaped forms.
    return a.replace("-", "_").lower() == b.replace("-", "_").lower()

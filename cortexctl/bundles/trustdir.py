"""Which `*.pub` files in a trusted-keys folder may be used, shared by cortexctl and the bootstrap.

Why: one garbage `.pub` used to block every signed import, and a world-writable folder
let anyone on the host add a key that the importer then trusted. Now a key file that
cannot be read or parsed is reported and skipped (the caller parses; this module only
decides which files to try), and a folder or key file that others can write is refused
with the chmod that fixes it: trust that anyone could have planted is no trust.
Standard library only: the bootstrap loads this file by path.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class UnsafeTrustDir(Exception):
    """A trusted-keys folder or key file is writable by group or others."""

    def __init__(self, path: Path, what: str) -> None:
        super().__init__(
            f"the trusted key {what} {path} is writable by group or others, so anyone on this host "
            "could make a bundle trusted; refusing to use it"
        )
        self.fix = f"chmod go-w {path}  (and check that every key in it is one you trust)"


def key_files(directory: Path) -> tuple[list[Path], list[str]]:
    """The `*.pub` files worth trying, and one warning per file skipped.

    Raises UnsafeTrustDir when the folder or a key file is group- or world-writable.
    """
    try:
        st = directory.stat()
    except OSError:
        return [], []
    if not stat.S_ISDIR(st.st_mode):
        quiet = str(directory) == os.devnull  # the bootstrap's "no trusted keys"
        return [], [] if quiet else [f"{directory} is not a folder; no key is trusted"]
    if st.st_mode & 0o022:
        raise UnsafeTrustDir(directory, "folder")
    files: list[Path] = []
    warnings: list[str] = []
    for path in sorted(directory.glob("*.pub")):
        try:
            fst = path.stat()
            if not stat.S_ISREG(fst.st_mode):
                warnings.append(f"skipped trusted key {path}: not a regular file")
                continue
            if fst.st_mode & 0o022:
                raise UnsafeTrustDir(path, "file")
            with path.open("rb") as fh:
                fh.read(1)
        except OSError as exc:
            warnings.append(f"skipped trusted key {path}: cannot be read ({exc.strerror})")
            continue
        files.append(path)
    return files, warnings

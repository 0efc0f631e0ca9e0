"""`bundle sign FILE --key KEY`: verify every checksum, then splice in a signed head (the keys and
the ed25519 signature itself are signing.py's).

Only the head (manifest + signature) is rewritten; the item bytes are copied verbatim
(with zstd the head is its own frame, see container.head_boundary).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import zstandard

from cortexctl.bundles.container import BundleReader, head_boundary, head_bytes
from cortexctl.bundles.progress import NullProgress, Progress
from cortexctl.bundles.signing import Signature, load_private_key, sign


def sign_bundle(path: Path, *, key_path: Path, progress: Progress | None = None) -> Signature:
    key = load_private_key(key_path)
    progress = progress or NullProgress()
    with BundleReader(path) as reader:  # sign only what verifies
        head = reader.head()
        progress.start(f"verify {path.name}", head.manifest.total_size)
        reader.read_items(lambda _item: None, progress)
        progress.finish()
    offset, head = head_boundary(path)
    signature = sign(head.manifest_bytes, key)
    new_head = head_bytes(head.manifest_bytes, signature, int(head.manifest.created_at.timestamp()))
    if head.compression == "zstd":
        new_head = zstandard.ZstdCompressor(level=3, write_checksum=True).compress(new_head)
    tmp = path.with_name(f".{path.name}.signing")
    try:
        with path.open("rb") as src, tmp.open("wb") as dst:
            dst.write(new_head)
            src.seek(offset)
            shutil.copyfileobj(src, dst, 1 << 20)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return signature

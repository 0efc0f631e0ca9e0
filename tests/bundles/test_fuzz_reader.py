"""Random damage to real bundles: the reader refuses with BundleError (or reads intact data), nothing else.

Seeded mutations of a plain and a zstd bundle — flipped bytes (in headers and data),
cuts, inserted blocks, overwritten header fields — each read the way `bundle verify`
reads, and through the bootstrap. The property: no exception but the refusal escapes (no
IndexError, ValueError, RecursionError, MemoryError…). A damaged bundle is accepted only
when every check still passes, i.e. the damage hit header fields the format ignores
(mtime, mode, owner).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import random
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from cortexctl.bundles.container import BundleReader
from cortexctl.bundles.errors import BundleError

MUTATIONS = 300
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bundle_bootstrap.py"
BLOCK = 512


def _mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    kind = rng.randrange(5)
    if kind == 0:  # flip bytes anywhere
        for _ in range(rng.randint(1, 4)):
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    elif kind == 1:  # flip bytes in the first blocks (headers)
        for _ in range(rng.randint(1, 3)):
            out[rng.randrange(min(len(out), 4 * BLOCK))] ^= 1 << rng.randrange(8)
    elif kind == 2:  # cut
        del out[rng.randrange(len(out)) :]
    elif kind == 3:  # insert a random or zero block
        at = rng.randrange(len(out))
        out[at:at] = bytes(rng.randrange(256) for _ in range(BLOCK)) if rng.random() < 0.5 else bytes(BLOCK)
    else:  # overwrite a header number field with junk
        at = rng.choice([124, 148, 156, 257]) + BLOCK * rng.randrange(3)
        if at + 8 <= len(out):
            out[at : at + 8] = bytes(rng.randrange(256) for _ in range(8))
    return bytes(out)


@pytest.mark.parametrize("compression", ["none", "zstd"])
def test_random_damage_is_refused_cleanly(compression: str, make_bundle: Any, tmp_path: Path) -> None:
    good = make_bundle(compression=compression).path.read_bytes()
    rng = random.Random(20261201 + len(compression))
    path = tmp_path / "damaged"
    outcomes = {"refused": 0, "accepted": 0}
    for _ in range(MUTATIONS):
        damaged = _mutate(good, rng)
        path.write_bytes(damaged)
        try:
            with BundleReader(path) as reader:
                reader.head()
                reader.read_items(lambda _item: None)
        except BundleError as exc:
            assert exc.message.startswith("bundle refused:"), exc.message
            outcomes["refused"] += 1
        else:
            outcomes["accepted"] += 1  # every sha256 matched: the damage hit ignored metadata
    assert outcomes["refused"] > MUTATIONS // 2, outcomes


@pytest.mark.skipif(
    shutil.which("zstd") is None, reason="the bootstrap reads zstd bundles with the zstd tool"
)
@pytest.mark.parametrize(("compression", "count"), [("none", 200), ("zstd", 60)])
def test_random_damage_through_the_bootstrap_is_refused_cleanly(
    compression: str, count: int, make_bundle: Any, tmp_path: Path
) -> None:
    """The same damage through scripts/bundle_bootstrap.py: Refused only, no file left behind."""
    spec = importlib.util.spec_from_file_location("_bootstrap_under_test", SCRIPT)
    assert spec is not None and spec.loader is not None
    bootstrap = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bootstrap
    spec.loader.exec_module(bootstrap)
    good = make_bundle(compression=compression).path.read_bytes()
    rng = random.Random(20261202 + count)
    path = tmp_path / "damaged"
    refused = 0
    for n in range(count):
        path.write_bytes(_mutate(good, rng))
        dest = tmp_path / f"w{n}"
        dest.mkdir()
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                bootstrap.extract_wheelhouse(path, dest, Path(os.devnull), True)
        except bootstrap.Refused:
            refused += 1
            assert not list(dest.iterdir())
    assert refused > count // 2

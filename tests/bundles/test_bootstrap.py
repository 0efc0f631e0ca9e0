"""scripts/bundle_bootstrap.py: the stdlib-only wheelhouse extraction install.sh runs first."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cortexctl.bundles.signing import generate_keypair
from tests.bundles.helpers import manifest_of, read_entries, with_manifest, write_entries

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bundle_bootstrap.py"


def _run(bundle: Path, dest: Path, keys: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(SCRIPT), str(bundle), "--dest", str(dest), "--trusted-keys", str(keys), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


@pytest.fixture
def trusted(tmp_path: Path) -> tuple[Path, Path]:
    key, pub, _ = generate_keypair(tmp_path / "keys", "ops")
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    shutil.copy(pub, trusted / "ops.pub")
    return key, trusted


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
@pytest.mark.parametrize("compression", ["none", "zstd"])
def test_signed_bundle_gives_its_verified_wheels(
    compression: str, make_bundle: Any, trusted: tuple[Path, Path], tmp_path: Path, sources: Path
) -> None:
    if compression == "zstd" and shutil.which("zstd") is None:
        pytest.skip("the zstd tool is not installed")
    result = make_bundle(compression=compression, sign_key=trusted[0])
    proc = _run(result.path, tmp_path / "wheels", trusted[1])
    assert proc.returncode == 0, proc.stderr
    assert "signature: trusted" in proc.stderr
    for name in ("alpha-1.0-py3-none-any.whl", "beta-2.0.tar.gz"):
        assert (tmp_path / "wheels" / name).read_bytes() == (sources / "wheels" / name).read_bytes()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_refusals(make_bundle: Any, trusted: tuple[Path, Path], tmp_path: Path) -> None:
    unsigned = make_bundle(compression="none")
    proc = _run(unsigned.path, tmp_path / "w1", trusted[1])
    assert proc.returncode == 1 and "unsigned" in proc.stderr
    assert _run(unsigned.path, tmp_path / "w2", trusted[1], "--allow-unsigned").returncode == 0

    signed = make_bundle(compression="none", sign_key=trusted[0])
    entries = read_entries(signed.path)
    manifest = manifest_of(entries)
    manifest["description"] = "edited"
    bad_sig = write_entries(tmp_path / "bad-sig.tar", with_manifest(entries, manifest))
    proc = _run(bad_sig, tmp_path / "w3", trusted[1], "--allow-unsigned")
    assert proc.returncode == 1 and "bad signature" in proc.stderr

    flipped = list(entries)
    wheel = next(n for n, (m, _) in enumerate(flipped) if m.name.endswith(".whl"))
    member, data = flipped[wheel]
    flipped[wheel] = (member, bytes([data[0] ^ 1]) + data[1:])  # type: ignore[index]
    proc = _run(write_entries(tmp_path / "flip.tar", flipped), tmp_path / "w4", trusted[1])
    assert proc.returncode == 1 and "sha256 mismatch" in proc.stderr


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_trusted_keys_garbage_is_skipped_and_writable_folders_refused(
    make_bundle: Any, trusted: tuple[Path, Path], tmp_path: Path
) -> None:
    signed = make_bundle(compression="none", sign_key=trusted[0])
    (trusted[1] / "garbage.pub").write_text("not a key")
    proc = _run(signed.path, tmp_path / "w1", trusted[1])
    assert proc.returncode == 0 and "signature: trusted" in proc.stderr, proc.stderr

    rogue_key, _, _ = generate_keypair(tmp_path / "keys", "rogue")
    proc = _run(make_bundle(compression="none", sign_key=rogue_key).path, tmp_path / "w2", trusted[1])
    assert proc.returncode == 1 and "skipped trusted key" in proc.stderr and "garbage.pub" in proc.stderr

    trusted[1].chmod(0o777)
    proc = _run(signed.path, tmp_path / "w3", trusted[1])
    assert proc.returncode == 1 and "writable by group or others" in proc.stderr
    assert f"chmod go-w {trusted[1]}" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "w3").exists() or not list((tmp_path / "w3").iterdir())

"""ed25519 signatures: trusted, untrusted, bad, spoofed, unsigned; `sign` on existing bundles."""

from __future__ import annotations

import base64
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from cortexctl.bundles.container import read_head
from cortexctl.bundles.errors import BundleError
from cortexctl.bundles.install import import_bundle, list_imports, trusted_dir, verify_bundle
from cortexctl.bundles.sign_bundle import sign_bundle
from cortexctl.bundles.signing import generate_keypair, load_private_key
from cortexctl.core.settings import Settings
from tests.bundles.helpers import manifest_of, read_entries, snapshot, with_manifest, write_entries


@pytest.fixture
def keys(tmp_path: Path, settings: Settings) -> dict[str, Path]:
    """Key 'ops' trusted on the importing host, key 'rogue' not."""
    ops_key, ops_pub, _ = generate_keypair(tmp_path / "keys", "ops")
    rogue_key, _, _ = generate_keypair(tmp_path / "keys", "rogue")
    trusted_dir(settings).mkdir(parents=True)
    (trusted_dir(settings) / "ops.pub").write_bytes(ops_pub.read_bytes())
    return {"ops": ops_key, "rogue": rogue_key}


def test_keygen_writes_a_private_key_only_the_owner_can_read(keys: dict[str, Path]) -> None:
    assert keys["ops"].stat().st_mode & 0o777 == 0o600
    with pytest.raises(BundleError, match="already exists"):
        generate_keypair(keys["ops"].parent, "ops")


def test_signed_by_a_trusted_key_imports_without_flags(
    make_bundle: Any, keys: dict[str, Path], settings: Settings, engine_cache: Path
) -> None:
    result = make_bundle(sign_key=keys["ops"])
    head, status = verify_bundle(result.path, settings=settings, allow_unsigned=False)
    assert status.state == "trusted" and status.key_file and status.key_file.endswith("ops.pub")
    imported = import_bundle(result.path, settings=settings, engine_cache_dir=engine_cache)
    assert imported.signature.state == "trusted"
    assert list_imports(settings)[0].signed_by == head.signature.key_id  # type: ignore[union-attr]


def test_unsigned_is_refused_unless_allowed(make_bundle: Any, settings: Settings, engine_cache: Path) -> None:
    result = make_bundle()
    with pytest.raises(BundleError, match="signature: the bundle is unsigned") as exc:
        import_bundle(result.path, settings=settings, engine_cache_dir=engine_cache)
    assert "--allow-unsigned" in (exc.value.fix or "")
    assert snapshot(settings.home) == {} and list_imports(settings) == []
    assert import_bundle(
        result.path, settings=settings, engine_cache_dir=engine_cache, allow_unsigned=True
    ).status


def test_untrusted_key_is_refused(
    make_bundle: Any, keys: dict[str, Path], settings: Settings, engine_cache: Path
) -> None:
    result = make_bundle(sign_key=keys["rogue"])
    with pytest.raises(BundleError, match="not trusted on this host"):
        import_bundle(result.path, settings=settings, engine_cache_dir=engine_cache)
    assert list_imports(settings) == []
    allowed = import_bundle(
        result.path, settings=settings, engine_cache_dir=engine_cache, allow_unsigned=True
    )
    assert allowed.signature.state == "untrusted-key"


def test_manifest_changed_after_signing_is_a_bad_signature(
    make_bundle: Any, keys: dict[str, Path], settings: Settings, engine_cache: Path, tmp_path: Path
) -> None:
    """Even with --allow-unsigned: a signature that does not match is tampering."""
    result = make_bundle(compression="none", sign_key=keys["ops"])
    entries = read_entries(result.path)
    assert entries[1][0].name == "manifest.sig"
    manifest = manifest_of(entries)
    manifest["description"] = "harmless-looking edit"
    bad = write_entries(tmp_path / "bad.tar", with_manifest(entries, manifest))
    for allow in (False, True):
        with pytest.raises(BundleError, match="bad signature"):
            import_bundle(bad, settings=settings, engine_cache_dir=engine_cache, allow_unsigned=allow)
    assert list_imports(settings) == [] and not settings.models_dir.exists()


def test_signature_by_another_key_claiming_a_trusted_id_is_refused(
    make_bundle: Any, keys: dict[str, Path], settings: Settings, engine_cache: Path, tmp_path: Path
) -> None:
    trusted_id = read_head(make_bundle(sign_key=keys["ops"]).path).signature.key_id  # type: ignore[union-attr]
    result = make_bundle(compression="none")
    entries = read_entries(result.path)
    forged = load_private_key(keys["rogue"]).sign(entries[0][1] or b"")
    body = {"algorithm": "ed25519", "key_id": trusted_id, "signature": base64.b64encode(forged).decode()}
    sig = (tarfile.TarInfo("manifest.sig"), json.dumps(body).encode())
    bad = write_entries(tmp_path / "forged.tar", [entries[0], sig, *entries[1:]])
    with pytest.raises(BundleError, match="bad signature"):
        verify_bundle(bad, settings=settings, allow_unsigned=True)


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_sign_an_existing_bundle_in_place(
    compression: str, make_bundle: Any, keys: dict[str, Path], settings: Settings, engine_cache: Path
) -> None:
    result = make_bundle(compression=compression)
    before = read_head(result.path)
    signature = sign_bundle(result.path, key_path=keys["ops"])
    head, status = verify_bundle(result.path, settings=settings, allow_unsigned=False)
    assert status.state == "trusted" and status.key_id == signature.key_id
    assert head.id == before.id  # the manifest (and so the bundle id) is unchanged
    assert import_bundle(result.path, settings=settings, engine_cache_dir=engine_cache).status == "imported"


def test_sign_refuses_a_damaged_bundle(make_bundle: Any, keys: dict[str, Path]) -> None:
    result = make_bundle(compression="none")
    data = bytearray(result.path.read_bytes())
    data[len(data) // 2] ^= 1
    result.path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="bundle refused"):
        sign_bundle(result.path, key_path=keys["ops"])


def test_a_corrupt_trusted_key_file_is_reported_and_skipped(
    make_bundle: Any, keys: dict[str, Path], settings: Settings
) -> None:
    """One garbage .pub no longer blocks every signed import; it is named in a warning."""
    result = make_bundle(sign_key=keys["ops"])
    (trusted_dir(settings) / "broken.pub").write_text("not a key")
    (trusted_dir(settings) / "empty.pub").write_bytes(b"")
    _, status = verify_bundle(result.path, settings=settings, allow_unsigned=False)
    assert status.state == "trusted"
    assert [w for w in status.warnings if "broken.pub cannot be read" in w]
    assert [w for w in status.warnings if "empty.pub" in w]
    rogue = make_bundle(sign_key=keys["rogue"])
    with pytest.raises(BundleError, match="not trusted on this host .*2 key file.*skipped.*broken.pub"):
        verify_bundle(rogue.path, settings=settings, allow_unsigned=False)


@pytest.mark.parametrize("target", ["folder", "file"])
@pytest.mark.parametrize("mode", [0o020, 0o002])
def test_trusted_keys_writable_by_others_are_refused_with_the_fix(
    target: str, mode: int, make_bundle: Any, keys: dict[str, Path], settings: Settings
) -> None:
    result = make_bundle(sign_key=keys["ops"])
    path = trusted_dir(settings) if target == "folder" else trusted_dir(settings) / "ops.pub"
    path.chmod(path.stat().st_mode | mode)
    with pytest.raises(BundleError, match=f"trusted key {target} .* writable by group or others") as exc:
        verify_bundle(result.path, settings=settings, allow_unsigned=True)
    assert exc.value.fix is not None and f"chmod go-w {path}" in exc.value.fix


def test_only_a_trusted_bundle_replaces_an_engine_binary_and_the_old_one_is_kept(
    make_bundle: Any, keys: dict[str, Path], settings: Settings, engine_cache: Path
) -> None:
    binary = engine_cache / "llama-server" / "0.3.36" / "bin" / "llama-server"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\necho the cached build\n")
    for key in (None, keys["rogue"]):  # unsigned, untrusted key: refused even with --allow-unsigned
        bundle = make_bundle(sign_key=key)
        with pytest.raises(BundleError, match="only a bundle signed by a trusted key may do that"):
            import_bundle(bundle.path, settings=settings, engine_cache_dir=engine_cache, allow_unsigned=True)
        assert binary.read_text() == "#!/bin/sh\necho the cached build\n"

    import_bundle(make_bundle(sign_key=keys["ops"]).path, settings=settings, engine_cache_dir=engine_cache)
    assert "fake-engine-for-bundle-tests" in binary.read_text()
    previous = binary.with_name("llama-server.previous")
    assert previous.read_text() == "#!/bin/sh\necho the cached build\n"

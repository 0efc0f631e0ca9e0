"""ed25519 signatures over the manifest bytes, and the host's trusted keys.

The manifest pins every item's sha256, so a signature over it covers the whole bundle.
Keys are PEM files: `NAME.key` (PKCS#8, private, mode 0600) and `NAME.pub`
(SubjectPublicKeyInfo). A host trusts the `*.pub` files in `$CORTEX_HOME/trusted-keys/`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cortexctl.bundles import tarstream, trustdir
from cortexctl.bundles.errors import BundleError, refused
from cortexctl.bundles.tarstream import SIGNATURE_NAME

log = logging.getLogger(__name__)

ALGORITHM = "ed25519"
TRUSTED_KEYS_DIR = "trusted-keys"


@dataclass(frozen=True)
class Signature:
    key_id: str
    signature: bytes

    def to_bytes(self) -> bytes:
        body = {
            "algorithm": ALGORITHM,
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode(),
        }
        return json.dumps(body, sort_keys=True).encode() + b"\n"


@dataclass(frozen=True)
class SignatureStatus:
    """What `verify_signature` concluded; `trusted` is the only state that proves origin."""

    state: str  # "trusted" | "unsigned" | "untrusted-key"
    key_id: str | None = None
    key_file: str | None = None
    warnings: list[str] = field(default_factory=list)


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_keypair(directory: Path, name: str) -> tuple[Path, Path, str]:
    """Write NAME.key (0600) and NAME.pub into `directory`; refuse to overwrite."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / f"{name}.key", directory / f"{name}.pub"
    for p in (private_path, public_path):
        if p.exists():
            raise BundleError(f"{p} already exists", fix="Choose another key name or directory.")
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public = private.public_key()
    public_path.write_bytes(
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private_path, public_path, key_id(public)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise BundleError(
            f"cannot read signing key {path}: {exc}", fix="Pass a key made by `cortexctl bundle keygen`."
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError(
            f"{path} is not an ed25519 private key", fix="Use `cortexctl bundle keygen` to make one."
        )
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise BundleError(
            f"trusted key {path} cannot be read: {exc}",
            fix="Replace it with a .pub file from `cortexctl bundle keygen`.",
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise BundleError(f"trusted key {path} is not an ed25519 public key", fix="Remove it or replace it.")
    return key


@dataclass(frozen=True)
class TrustedKeys:
    """key id → (file, key), and one warning per key file that was skipped."""

    keys: dict[str, tuple[Path, Ed25519PublicKey]]
    warnings: list[str]

    def __contains__(self, key_id: str) -> bool:
        return key_id in self.keys


def trusted_keys(directory: Path) -> TrustedKeys:
    """Every usable *.pub in the trusted-keys directory; bad files are skipped with a warning.

    A folder or key file writable by group or others is refused (trustdir.UnsafeTrustDir).
    """
    try:
        files, warnings = trustdir.key_files(directory)
    except trustdir.UnsafeTrustDir as exc:
        raise BundleError(str(exc), fix=exc.fix) from None
    out: dict[str, tuple[Path, Ed25519PublicKey]] = {}
    for path in files:
        try:
            key = load_public_key(path)
        except BundleError as exc:
            warnings.append(f"skipped {exc.message}")
            continue
        out[key_id(key)] = (path, key)
    for warning in warnings:
        log.warning("%s", warning)
    return TrustedKeys(out, warnings)


def sign(manifest_bytes: bytes, private_key: Ed25519PrivateKey) -> Signature:
    return Signature(key_id=key_id(private_key.public_key()), signature=private_key.sign(manifest_bytes))


def parse_signature(data: bytes) -> Signature:
    try:
        body = tarstream.load_signature_json(data)
        raw = base64.b64decode(body["signature"], validate=True)
    except tarstream.Refused as exc:
        raise refused(exc.what, exc.problem) from None
    except binascii.Error:
        raise refused(SIGNATURE_NAME, "malformed signature (not base64)") from None
    return Signature(key_id=body["key_id"], signature=raw)


def verify_signature(
    manifest_bytes: bytes,
    signature: Signature | None,
    *,
    trusted_dir: Path,
    allow_unsigned: bool,
) -> SignatureStatus:
    """Raise BundleError unless the bundle is signed by a trusted key (or unsigned is allowed).

    A signature that does not match under the trusted key it names is always refused:
    that is tampering, not a missing trust decision.
    """
    if signature is None:
        if not allow_unsigned:
            raise refused(
                "signature",
                "the bundle is unsigned",
                fix="Sign it with `cortexctl bundle sign FILE --key KEY` on the exporting host, "
                "or pass --allow-unsigned to accept it without proof of origin.",
            )
        return SignatureStatus("unsigned")
    trusted = trusted_keys(trusted_dir)
    if signature.key_id not in trusted:
        if allow_unsigned:
            return SignatureStatus("untrusted-key", key_id=signature.key_id, warnings=trusted.warnings)
        skipped = f" ({len(trusted.warnings)} key file(s) skipped: {'; '.join(trusted.warnings)})"
        raise refused(
            "signature",
            f"signed by key {signature.key_id}, which is not trusted on this host"
            + (skipped if trusted.warnings else ""),
            fix=f"Copy the signer's .pub file into {trusted_dir}/ if you trust it, or pass --allow-unsigned.",
        )
    path, key = trusted.keys[signature.key_id]
    try:
        key.verify(signature.signature, manifest_bytes)
    except InvalidSignature:
        raise refused(
            "signature",
            f"bad signature: the manifest does not match the signature"
            f" of trusted key {signature.key_id} ({path.name})",
            fix="The bundle was altered after signing; get an intact copy from the exporting host.",
        ) from None
    return SignatureStatus("trusted", key_id=signature.key_id, key_file=str(path), warnings=trusted.warnings)

"""Secrets: API keys (random, shown once, stored as a keyed hash) and passwords (argon2)."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from cortexctl.core.settings import Settings

API_KEY_PREFIX = "sk-cortex-"
KEY_DISPLAY_CHARS = len(API_KEY_PREFIX) + 6
_password_hasher = PasswordHasher()


def generate_api_key() -> str:
    """32 random bytes (256 bits) behind a recognisable prefix."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str, secret: bytes) -> str:
    """HMAC-SHA256: keys have full entropy, so a fast keyed hash is the right tool."""
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()


def key_display_prefix(key: str) -> str:
    return key[:KEY_DISPLAY_CHARS]


def generate_password() -> str:
    return secrets.token_urlsafe(18)


def hash_password(password: str) -> str:
    return _password_hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _password_hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def write_secret_file(path: Path, content: str) -> None:
    """Write a file only its owner can read (mode 0600 from the first byte)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(content)
    os.replace(tmp, path)


def load_or_create_secret(settings: Settings) -> bytes:
    """The daemon's signing secret: CORTEX_SECRET_KEY, else $CORTEX_HOME/secret.key (created once).

    Several daemons sharing one database must share this secret (set CORTEX_SECRET_KEY).
    """
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    path = settings.secret_key_file
    if not path.exists():
        write_secret_file(path, secrets.token_hex(32) + "\n")
    return path.read_text().strip().encode()

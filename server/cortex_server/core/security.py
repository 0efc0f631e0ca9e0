"""Secrets: API keys (random, shown once, stored as a keyed hash), passwords (argon2), files at rest.

argon2 costs 64 MiB and ~50 ms of a core per hash or check; unbounded, 40 concurrent logins
took the daemon from 141 MiB to 1 GiB. `HASH_SLOTS` bounds the hashes in flight in this
process, so password work costs at most HASH_SLOTS x 64 MiB whatever the callers do.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from cortexctl.core.settings import Settings

log = logging.getLogger(__name__)

API_KEY_PREFIX = "sk-cortex-"
KEY_DISPLAY_CHARS = len(API_KEY_PREFIX) + 6
_password_hasher = PasswordHasher()
HASH_SLOTS = 2
_hash_slots = threading.BoundedSemaphore(HASH_SLOTS)
MAX_PASSWORD_BYTES = 1024  # longer input is refused before any hashing


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
    with _hash_slots:
        return _password_hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        return False  # never a valid password: no hash work for it
    try:
        with _hash_slots:
            return _password_hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


PRIVATE_DIRS = ("logs", "spool", "run")  # under $CORTEX_HOME; models/ keeps its own modes


@contextmanager
def private_umask() -> Iterator[None]:
    """Files created inside start private (umask 077); the old umask comes back after."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def secure_home(home: Path) -> None:
    """$CORTEX_HOME 0700 and what the daemon writes there 0600 (db, logs, spool, keys).

    The daemon calls it first thing and keeps umask 077 for its lifetime (main.serve);
    prepare_database calls it before and after its work, under `private_umask`. A file we
    may not chmod (owned by someone else) is logged and left alone.
    """
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    _restrict(home, 0o700)
    for entry in home.iterdir():
        if entry.is_symlink():
            continue
        if entry.is_file():
            _restrict(entry, 0o600)
        elif entry.is_dir() and entry.name in PRIVATE_DIRS:
            _restrict(entry, 0o700)
            for inner in entry.rglob("*"):
                if not inner.is_symlink():
                    _restrict(inner, 0o700 if inner.is_dir() else 0o600)


def _restrict(path: Path, mode: int) -> None:
    try:
        if stat.S_IMODE(path.stat().st_mode) != mode:
            os.chmod(path, mode)
    except OSError as exc:
        log.warning("could not make %s private (%s)", path, exc.strerror or type(exc).__name__)


def write_secret_file(path: Path, content: str) -> None:
    """Write a file only its owner can read (mode 0600 from the first byte)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
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

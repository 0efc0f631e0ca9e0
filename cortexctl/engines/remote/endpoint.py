"""The rules a remote recipe must keep, written for a hostile recipe.

The URL is plain http(s) to a host the operator allowed in `remote_engine_hosts` (no
file:, no credentials in the URL, no query). The key is read from a file under
$CORTEX_HOME/secrets only (so a recipe cannot ship /etc/shadow or an SSH key to the
endpoint as a Bearer token): a regular file (no symlink) owned by the daemon's user,
unreadable to group and others, at most MAX_KEY_BYTES, one line of visible ASCII.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from pathlib import Path
from urllib.parse import urlsplit

from cortexctl.core.errors import RecipeError

MAX_KEY_BYTES = 4096
SECRETS_DIR = "secrets"  # under $CORTEX_HOME
_KEY_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_KEY_TEXT = re.compile(r"^[\x21-\x7e]+$")


def check_url_form(url: str) -> str:
    """ValueError (a recipe error at spec.args.url) unless `url` is a plain http(s) base URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{url!r}: only http:// and https:// endpoints can be served")
    if not parts.hostname:
        raise ValueError(f"{url!r} names no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials do not belong in the URL: put the key in spec.args.key_file")
    if parts.query or parts.fragment:
        raise ValueError(f"{url!r}: a base URL has no query or fragment")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ValueError(f"{url!r}: {exc}") from None
    return url


def base_url(url: str) -> str:
    """The endpoint without a trailing `/v1` (the gateway adds `/v1/...` itself)."""
    base = url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


def _norm_host(host: str) -> str:
    host = host.strip("[]").lower()
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.rstrip(".")


def _split_entry(entry: str) -> tuple[str, str]:
    """`host`, `host:port`, `[v6]:port` or a bare IPv6 address → (host, port or "")."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, rest.lstrip(":")
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        return host, port
    return entry, ""


def host_allowed(url: str, allowed: list[str]) -> bool:
    """Whether `url`'s host (or host:port) is one the operator listed."""
    parts = urlsplit(url)
    host = _norm_host(parts.hostname or "")
    port = str(parts.port or (443 if parts.scheme == "https" else 80))
    for entry in allowed:
        name, entry_port = _split_entry(entry.strip())
        if _norm_host(name) == host and entry_port in ("", port):
            return True
    return False


def require_allowed(url: str, allowed: list[str]) -> None:
    if not host_allowed(url, allowed):
        host = urlsplit(url).hostname
        raise RecipeError(
            f"remote endpoint host {host!r} is not allowed on this daemon",
            fix=f"An operator adds it to remote_engine_hosts (e.g. CORTEX_REMOTE_ENGINE_HOSTS="
            f"'[\"{host}\"]') after checking it is an inference endpoint they trust.",
            param="spec.args.url",
        )


def check_key_file_name(name: str) -> str:
    if not _KEY_FILE_NAME.match(name):
        raise ValueError(
            f"{name!r}: give a file name (letters, digits, . _ -) of a file in $CORTEX_HOME/{SECRETS_DIR}"
        )
    return name


def key_path(home: Path, name: str) -> Path:
    return home / SECRETS_DIR / check_key_file_name(name)


def read_key(home: Path, name: str) -> str:
    """The key in $CORTEX_HOME/secrets/NAME, checked; RecipeError saying what to fix otherwise."""
    path = key_path(home, name)

    def refuse(problem: str, fix: str) -> RecipeError:
        return RecipeError(f"key file {path}: {problem}", fix=fix, param="spec.args.key_file")

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise refuse("not found", f"Write the key into {path} (chmod 600).") from None
    except OSError as exc:  # ELOOP: a symlink
        raise refuse(f"cannot be opened ({exc.strerror})", "Make it a regular file, not a symlink.") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise refuse("not a regular file", "Write the key into a regular file.")
        if st.st_uid != os.geteuid():
            raise refuse("owned by another user", "chown it to the user the daemon runs as.")
        if st.st_mode & 0o077:
            raise refuse(f"readable by others (mode {stat.S_IMODE(st.st_mode):o})", f"chmod 600 {path}")
        if st.st_size > MAX_KEY_BYTES:
            raise refuse(f"{st.st_size} bytes; a key is at most {MAX_KEY_BYTES}", "Put only the key in it.")
        data = os.read(fd, MAX_KEY_BYTES + 1)
    finally:
        os.close(fd)
    text = data.decode("ascii", errors="replace").rstrip("\r\n")
    if not text or not _KEY_TEXT.match(text):
        raise refuse("not one line of visible ASCII", "Put only the key in it, on one line.")
    return text

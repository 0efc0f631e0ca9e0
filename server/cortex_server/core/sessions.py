"""Browser sessions: a signed, expiring cookie plus a CSRF token bound to it.

The cookie holds {user id, password version, csrf token}, signed with the daemon secret
(itsdangerous, HMAC-SHA1 over a key derived with a session-only salt) and timestamped, so a
tampered or expired cookie is rejected. Writes made with a session must send the csrf token
in X-CSRF-Token (synchronizer pattern: the server compares it with the signed copy).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

SESSION_COOKIE = "cortex_session"
CSRF_COOKIE = "cortex_csrf"  # readable by the console's JS so it can echo it in the header
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class SessionData:
    user_id: int
    pw_version: str
    csrf: str


class SessionCodec:
    def __init__(self, *, secret: bytes, max_age_s: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="cortex-session-v1")
        self.max_age_s = max_age_s

    def issue(self, *, user_id: int, pw_version: str) -> tuple[str, SessionData]:
        data = SessionData(user_id=user_id, pw_version=pw_version, csrf=secrets.token_urlsafe(32))
        token = self._serializer.dumps({"u": data.user_id, "p": data.pw_version, "c": data.csrf})
        return token, data

    def load(self, token: str) -> SessionData | None:
        """None for a cookie that is tampered, expired or malformed."""
        try:
            raw = self._serializer.loads(token, max_age=self.max_age_s)
        except (BadSignature, SignatureExpired):
            return None
        if not isinstance(raw, dict):
            return None
        try:
            return SessionData(user_id=int(raw["u"]), pw_version=str(raw["p"]), csrf=str(raw["c"]))
        except (KeyError, TypeError, ValueError):
            return None


def csrf_matches(expected: str, sent: str | None) -> bool:
    return sent is not None and secrets.compare_digest(expected.encode(), sent.encode())

"""Browser sessions: a signed cookie naming a server-side session record, plus a CSRF token.

The cookie holds {session id, csrf token}, signed with the daemon secret (itsdangerous,
HMAC-SHA1 over a key derived with a session-only salt) and timestamped. The cookie alone
proves nothing: the session id must name a live row of `auth_sessions` (services/sessions.py),
so logout, a password or role change, deactivation and "end this session" take effect at
once (within the auth cache's 2 s on other daemons, at once where Redis carries invalidation).
Writes made with a session must send the csrf token in X-CSRF-Token (synchronizer pattern:
the server compares it with the signed copy).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

SESSION_COOKIE = "cortex_session"
CSRF_COOKIE = "cortex_csrf"  # readable by the console's JS so it can echo it in the header
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class SessionData:
    sid: str  # random; the database keeps only its sha256 (session_token_hash)
    csrf: str


def session_token_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class SessionCodec:
    def __init__(self, *, secret: bytes, max_age_s: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="cortex-session-v2")
        self.max_age_s = max_age_s

    def issue(self) -> tuple[str, SessionData]:
        data = SessionData(sid=secrets.token_urlsafe(32), csrf=secrets.token_urlsafe(32))
        return self._serializer.dumps({"s": data.sid, "c": data.csrf}), data

    def load(self, token: str) -> SessionData | None:
        """None for a cookie that is tampered, expired or malformed."""
        if len(token) > 512:
            return None
        try:
            raw = self._serializer.loads(token, max_age=self.max_age_s)
        except (BadSignature, SignatureExpired):
            return None
        if not isinstance(raw, dict):
            return None
        sid, csrf = raw.get("s"), raw.get("c")
        if not isinstance(sid, str) or not isinstance(csrf, str):
            return None
        return SessionData(sid=sid, csrf=csrf)


def csrf_matches(expected: str, sent: str | None) -> bool:
    return sent is not None and secrets.compare_digest(expected.encode(), sent.encode())

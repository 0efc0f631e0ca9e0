"""Human durations for CLI flags: '90s', '15m', '12h', '30d', '2w'."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from cortexctl.core.errors import InvalidRequest

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PATTERN = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


def parse_duration(text: str, *, option: str = "--expires") -> timedelta:
    match = _PATTERN.match(text.lower())
    if match is None or int(match.group(1)) == 0:
        raise InvalidRequest(
            f"{option}: {text!r} is not a duration.", fix="Use a number and a unit: 90s, 15m, 12h, 30d or 2w."
        )
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def expiry_from_now(text: str, *, now: datetime | None = None) -> str:
    """The ISO-8601 UTC time `text` from now, as the admin API wants it."""
    return ((now or datetime.now(UTC)) + parse_duration(text)).isoformat()

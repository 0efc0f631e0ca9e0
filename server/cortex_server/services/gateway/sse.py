"""Server-sent events relayed as they arrive, parsed only enough to take usage.

Upstream bytes are cut at event boundaries (a blank line) so a whole event is
forwarded at once; only an incomplete trailing event waits for its next bytes.
Only events that mention "usage" are decoded. The usage-only final chunk
(`choices: []`) that the gateway asked for is dropped when the client did not ask.

Generated tokens are counted as they pass, for streams that end without the engine's usage
chunk (the client left, the engine died): one token per generated-text field in a chunk
(`content`, `reasoning_content`, `text`, tool-call `arguments`). llama-server and vLLM send one
token per chunk by default, so this is the count the client saw; an engine that batches tokens
(vLLM's `--stream-interval`, speculative decoding) is under-counted, never over-counted.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

_SEP = b"\n\n"
_USAGE = b'"usage"'
_DONE = b"data: [DONE]"
_MAX_TAIL = 1 << 20  # an "event" this long without a separator is not SSE: pass it on
# a non-empty generated-text string; an escaped quote inside a string (\") never matches
_TOKEN = re.compile(rb'"(?:content|reasoning_content|reasoning|text|arguments)": ?"(?!")')


class SseRelay:
    __slots__ = ("_tail", "strip_usage_chunk", "usage", "saw_done", "tokens_seen")

    def __init__(self, *, strip_usage_chunk: bool) -> None:
        self._tail = b""
        self.strip_usage_chunk = strip_usage_chunk
        self.usage: dict[str, Any] | None = None
        self.saw_done = False  # the `data: [DONE]` sentinel went out: the client has everything
        self.tokens_seen = 0  # generated tokens relayed so far (see the module's docstring)

    def feed(self, chunk: bytes) -> bytes:
        """Bytes to send to the client now (may be empty)."""
        data = self._tail + chunk if self._tail else chunk
        end = data.rfind(_SEP)
        if end < 0:
            if len(data) > _MAX_TAIL:
                self._tail = b""
                return data
            self._tail = data
            return b""
        cut = end + 2
        out, self._tail = data[:cut], data[cut:]
        self.tokens_seen += len(_TOKEN.findall(out))
        if _USAGE in out:
            out = self._take_usage(out)
        if _DONE in out:
            self.saw_done = True
        return out

    def flush(self) -> bytes:
        """Whatever is left when the upstream ends."""
        out, self._tail = self._tail, b""
        self.tokens_seen += len(_TOKEN.findall(out))
        if out and _USAGE in out:
            out = self._take_usage(out + _SEP)
        return out

    def _take_usage(self, block: bytes) -> bytes:
        kept: list[bytes] = []
        dropped = False
        for event in block.split(_SEP):
            if not event:
                continue
            if _USAGE in event:
                payload = _event_json(event)
                if isinstance(payload, dict) and isinstance(payload.get("usage"), dict):
                    self.usage = payload["usage"]
                    if self.strip_usage_chunk and not payload.get("choices"):
                        dropped = True
                        continue
            kept.append(event)
        if not dropped:
            return block
        return b"".join(e + _SEP for e in kept)


def _event_json(event: bytes) -> Any:
    """The JSON of an event's data lines, or None."""
    data = b"".join(line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:"))
    if not data or data == b"[DONE]":
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def extract_usage(body: bytes) -> dict[str, Any] | None:
    """The `usage` object of a JSON response body, without decoding the rest.

    Embedding responses can be megabytes of floats; usage sits at the top level,
    after `data` in every engine we proxy, so look for the last `"usage"` first and
    fall back to a full decode.
    """
    idx = body.rfind(_USAGE)
    if idx < 0:
        return None
    start = body.find(b"{", idx)
    if start < 0 or body[idx + len(_USAGE) : start].strip() != b":":  # e.g. "usage": null
        return _decode_usage(body)
    # its closing brace: jump from "}" to "}" counting the "{" between (not byte by byte in Python)
    limit = min(len(body), start + 4096)
    depth, pos = 1, start + 1
    while depth:
        close = body.find(b"}", pos, limit)
        if close < 0:
            return _decode_usage(body)
        depth += body.count(b"{", pos, close) - 1
        pos = close + 1
    try:
        usage = orjson.loads(body[start:pos])
    except orjson.JSONDecodeError:  # a brace inside a string: read the whole body instead
        return _decode_usage(body)
    return usage if isinstance(usage, dict) else None


def _decode_usage(body: bytes) -> dict[str, Any] | None:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    usage = payload.get("usage") if isinstance(payload, dict) else None
    return usage if isinstance(usage, dict) else None

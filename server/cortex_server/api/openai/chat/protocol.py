"""POST /v1/chat/completions: what the gateway checks before routing."""

from __future__ import annotations

from typing import Any

from cortex_server.api.openai.protocol import check_object, missing
from cortexctl.core.errors import InvalidRequest


def parse_chat_request(decoded: Any) -> dict[str, Any]:
    payload = check_object(decoded)
    messages = payload.get("messages")
    if messages is None:
        raise missing("messages", "a list of {role, content} objects")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty list.", param="messages", code="invalid_type")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise InvalidRequest(
                f"messages[{i}] must be an object with a 'role'.", param=f"messages.{i}", code="invalid_type"
            )
    return payload

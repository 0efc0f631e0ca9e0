"""POST /v1/embeddings: what the gateway checks before routing."""

from __future__ import annotations

from typing import Any

from cortex_server.api.openai.protocol import check_object, missing
from cortexctl.core.errors import InvalidRequest


def parse_embedding_request(decoded: Any) -> dict[str, Any]:
    payload = check_object(decoded)
    value = payload.get("input")
    if value is None:
        raise missing("input", "a string or a list of strings / token ids")
    if not isinstance(value, str | list) or (isinstance(value, list) and not value):
        raise InvalidRequest(
            "'input' must be a string or a non-empty list.", param="input", code="invalid_type"
        )
    if payload.get("stream"):
        raise InvalidRequest("Embeddings cannot be streamed.", param="stream", code="invalid_value")
    return payload

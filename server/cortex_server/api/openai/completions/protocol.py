"""POST /v1/completions: what the gateway checks before routing."""

from __future__ import annotations

from typing import Any

from cortex_server.api.openai.protocol import check_object, missing
from cortexctl.core.errors import InvalidRequest


def parse_completion_request(decoded: Any) -> dict[str, Any]:
    payload = check_object(decoded)
    prompt = payload.get("prompt")
    if prompt is None:
        raise missing("prompt", "a string or a list of strings / token ids")
    if not isinstance(prompt, str | list):
        raise InvalidRequest("'prompt' must be a string or a list.", param="prompt", code="invalid_type")
    return payload

"""Shared request checks for the inference surfaces.

Bodies are decoded once with orjson (by the inference dependency) and checked only for what the gateway needs
(routing, streaming); every other field, known or not, goes to the engine as-is.
"""

from __future__ import annotations

from typing import Any

import orjson

from cortexctl.core.errors import InvalidRequest


def decode_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            "We could not parse the JSON body of your request.",
            fix="Send a valid JSON object with Content-Type: application/json.",
            code="invalid_json",
        ) from None


def check_object(payload: Any) -> dict[str, Any]:
    """The decoded body as the gateway needs it: an object with a model and sane stream flags."""
    if not isinstance(payload, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise missing("model", "the served name of a model; list them with GET /v1/models")
    stream = payload.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be true or false.", param="stream", code="invalid_type")
    opts = payload.get("stream_options")
    if opts is not None and not isinstance(opts, dict):
        raise InvalidRequest(
            "'stream_options' must be an object.", param="stream_options", code="invalid_type"
        )
    return payload


def missing(field: str, what: str) -> InvalidRequest:
    return InvalidRequest(f"'{field}' is required: {what}.", param=field, code="missing_required_parameter")

"""What an inference request will cost in tokens, decided before it is admitted.

The TPM limiter charges this estimate on admission and reconciles with real usage after.
An estimate that ignores what the engine will really generate admits far too much: four
concurrent requests without `max_tokens` on a 300-tpm key used 1,096 tokens, because the
recipe's default `max_tokens` was not counted, and a 5,000-prompt completions list counted
as one request. So the estimate is

    prompt bytes / 4   +   effective max_tokens x completions generated

where the effective max_tokens is the request's, else the recipe's request default, else
the model's context length (when known), and "completions generated" is every prompt of a
completions list times `n`. Embeddings generate nothing: their inputs (every item of a list)
count through the bytes.
"""

from __future__ import annotations

import math
from typing import Any

from cortex_server.services.registry import ServedModel

MAX_CHOICES = 128  # `n` above this is the engine's to refuse; the estimate stops growing here


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return int(min(value, 2**40))


def _prompt_count(prompt: Any) -> int:
    """Completions `prompt`: a string, a token list, a list of strings or a list of token lists."""
    if isinstance(prompt, list) and prompt and not all(isinstance(p, int) for p in prompt):
        return len(prompt)
    return 1


def effective_max_tokens(body: dict[str, Any], served: ServedModel | None) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        if (value := _positive_int(body.get(name))) is not None:
            return value
    if served is not None:
        if (value := _positive_int(served.request_defaults.get("max_tokens"))) is not None:
            return value
        if (value := _positive_int(served.max_model_len)) is not None:
            return value
    return 0


def estimate_tokens(raw: bytes, body: dict[str, Any], *, path: str, served: ServedModel | None) -> int:
    prompt = math.ceil(len(raw) / 4)
    if path.rstrip("/").endswith("embeddings"):
        return prompt
    choices = min(_positive_int(body.get("n")) or 1, MAX_CHOICES)
    completions = choices * (_prompt_count(body.get("prompt")) if "prompt" in body else 1)
    return prompt + effective_max_tokens(body, served) * completions


def tightest_tpm(limits: list[int | None]) -> int | None:
    """The smallest tokens-per-minute limit that applies (None: unlimited)."""
    set_limits = [t for t in limits if t]
    return min(set_limits) if set_limits else None

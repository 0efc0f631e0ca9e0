from __future__ import annotations

import random

import orjson

from cortex_server.services.gateway.sse import SseRelay, extract_usage

CHUNK = b'data: {"id":"1","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
USAGE = (
    b'data: {"id":"1","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n'
)
DONE = b"data: [DONE]\n\n"


def test_events_pass_through_whole_and_split_ones_wait_for_their_end() -> None:
    r = SseRelay(strip_usage_chunk=False)
    assert r.feed(CHUNK[:10]) == b""
    assert r.feed(CHUNK[10:] + CHUNK[:5]) == CHUNK
    assert r.feed(CHUNK[5:]) == CHUNK
    assert r.flush() == b""


def test_usage_only_chunk_is_stripped_when_the_client_did_not_ask() -> None:
    r = SseRelay(strip_usage_chunk=True)
    out = r.feed(CHUNK + USAGE[:20]) + r.feed(USAGE[20:] + DONE) + r.flush()
    assert out == CHUNK + DONE
    assert r.usage == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def test_usage_chunk_is_kept_when_the_client_asked() -> None:
    r = SseRelay(strip_usage_chunk=False)
    assert r.feed(CHUNK + USAGE + DONE) == CHUNK + USAGE + DONE
    assert r.usage is not None and r.usage["completion_tokens"] == 2


def test_a_content_chunk_that_carries_usage_is_never_dropped() -> None:
    both = (
        b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1}}\n\n'
    )
    r = SseRelay(strip_usage_chunk=True)
    assert r.feed(both) == both
    assert r.usage == {"prompt_tokens": 1}


def test_extract_usage_reads_only_the_usage_object() -> None:
    body = orjson.dumps(
        {
            "data": [{"embedding": [0.1] * 1000, "index": 0}],
            "usage": {"prompt_tokens": 7, "total_tokens": 7, "details": {"cached": 1}},
        }
    )
    assert extract_usage(body) == {"prompt_tokens": 7, "total_tokens": 7, "details": {"cached": 1}}
    assert extract_usage(b'{"usage": null, "x": {"a": 1}}') is None
    assert extract_usage(b'{"choices": []}') is None


def test_done_sentinel_is_noticed() -> None:
    r = SseRelay(strip_usage_chunk=False)
    r.feed(CHUNK)
    assert not r.saw_done
    r.feed(DONE)
    assert r.saw_done


def test_generated_tokens_are_counted_one_per_text_field_as_they_pass() -> None:
    """What a stream cut short is billed for: llama-server and vLLM send a token per chunk."""
    events = [
        b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n',  # no token
        b'data: {"choices":[{"index":0,"delta":{"content":null}}]}\n\n',  # no token
        CHUNK,
        b'data: {"choices":[{"index":0,"delta":{"reasoning_content":"hm"}}]}\n\n',
        b'data: {"choices": [{"index": 0, "delta": {"content": "spaced"}}]}\n\n',  # json.dumps style
        b'data: {"choices":[{"index":0,"text":" tok","logprobs":null}]}\n\n',  # completions
        b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,'
        b'"function":{"arguments":"{\\"a"}}]}}]}\n\n',
        b'data: {"choices":[{"index":0,"delta":{"content":"say \\"content\\":\\"x\\""}}]}\n\n',  # one token
        b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',  # no token
    ]
    r = SseRelay(strip_usage_chunk=True)
    stream = b"".join(events) + USAGE
    for i in range(0, len(stream), 7):  # split anywhere: counted once each, when the event is whole
        r.feed(stream[i : i + 7])
    r.flush()
    assert r.tokens_seen == 6


def _usage_values(rng: random.Random, depth: int) -> dict[str, object]:
    out: dict[str, object] = {}
    for i in range(rng.randint(0, 4)):
        kind = rng.choice(["int", "null", "str", "dict"] if depth < 3 else ["int", "null", "str"])
        if kind == "int":
            out[f"k{i}"] = rng.randint(0, 10**6)
        elif kind == "null":
            out[f"k{i}"] = None
        elif kind == "str":  # braces inside strings too: the fast path must give way, not guess
            out[f"k{i}"] = "".join(rng.choice('ab{}:,\\" ') for _ in range(rng.randint(0, 6)))
        else:
            out[f"k{i}"] = _usage_values(rng, depth + 1)
    return out


def test_extract_usage_equals_a_full_decode_on_generated_bodies() -> None:
    rng = random.Random(20261202)
    for _ in range(2000):
        usage = _usage_values(rng, 0)
        doc: dict[str, object] = {"id": "x", "choices": [{"text": "{usage}"}]}
        doc["usage"] = usage
        if rng.random() < 0.5:
            doc["after"] = {"z": [1, {"y": "}"}]}
        body = orjson.dumps(doc, option=orjson.OPT_INDENT_2 if rng.random() < 0.3 else 0)
        assert extract_usage(body) == usage, body

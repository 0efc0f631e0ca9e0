"""Log-spaced latency buckets (upper bounds 2^(i/2) ms, the last one open) and percentiles from them.

Why a histogram: a month of a busy gateway is millions of rows; hourly rollups keep
counts per bucket, so a percentile over a month sums a few thousand rows instead of
sorting millions. The estimate interpolates inside the bucket that holds the rank,
so it lies within one bucket (a factor √2) of the exact value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from cortex_server.db.models import HISTOGRAM_BUCKETS

N = HISTOGRAM_BUCKETS


def bucket_of(ms: float) -> int:
    if ms <= 1.0:
        return 0
    return min(N - 1, math.ceil(2 * math.log2(ms)))


def upper_bound(i: int) -> float:
    return math.inf if i >= N - 1 else 2 ** (i / 2)


def lower_bound(i: int) -> float:
    return 0.0 if i == 0 else 2 ** ((i - 1) / 2)


def percentile(counts: Sequence[int], p: float) -> float | None:
    """The p-quantile (percentile_cont's rank (n-1)·p), interpolated within its bucket."""
    n = sum(counts)
    if n == 0:
        return None
    rank = (n - 1) * p
    seen = 0
    for i, c in enumerate(counts):
        if c and seen + c > rank:
            lo = lower_bound(i)
            hi = upper_bound(i) if i < N - 1 else lo * math.sqrt(2)
            return lo + (hi - lo) * ((rank - seen + 0.5) / c)
        seen += c
    return lower_bound(N - 1)


def histogram(values: Sequence[float]) -> list[int]:
    counts = [0] * N
    for v in values:
        counts[bucket_of(v)] += 1
    return counts

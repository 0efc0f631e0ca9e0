"""Log-spaced latency buckets (upper bounds 2^(i/2) ms, the last one open) and percentiles from them.

Why a histogram: a month of a busy gateway is millions of rows; hourly rollups keep
counts per bucket, so a percentile over a month sums a few thousand rows instead of
sorting millions. Each order statistic is estimated inside its bucket, so the result
lies between the buckets of the two order statistics percentile_cont interpolates
between: with enough data, the bucket of the exact value (a factor √2).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

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


def percentiles(counts: Sequence[int], ps: Sequence[float]) -> list[float | None]:
    """Each p-quantile as percentile_cont defines it (rank (n-1)·p, linear between the two order
    statistics around it), each order statistic estimated inside the bucket that holds it."""
    cumulative = list(accumulate(counts))
    n = cumulative[-1] if cumulative else 0
    if n == 0:
        return [None] * len(ps)
    out: list[float | None] = []
    for p in ps:
        rank = (n - 1) * p
        lo_rank, hi_rank = math.floor(rank), math.ceil(rank)
        low = _order_statistic(counts, cumulative, lo_rank)
        high = low if hi_rank == lo_rank else _order_statistic(counts, cumulative, hi_rank)
        out.append(low + (high - low) * (rank - lo_rank))
    return out


def percentile(counts: Sequence[int], p: float) -> float | None:
    return percentiles(counts, (p,))[0]


def _order_statistic(counts: Sequence[int], cumulative: list[int], j: int) -> float:
    """The j-th smallest value (0-based), spread evenly inside its bucket."""
    i = bisect_right(cumulative, j)  # the first bucket whose cumulative count exceeds j
    seen = cumulative[i - 1] if i else 0
    lo = lower_bound(i)
    hi = upper_bound(i) if i < N - 1 else lo * math.sqrt(2)
    return lo + (hi - lo) * ((j - seen + 0.5) / counts[i])


def histogram(values: Sequence[float]) -> list[int]:
    counts = [0] * N
    for v in values:
        counts[bucket_of(v)] += 1
    return counts

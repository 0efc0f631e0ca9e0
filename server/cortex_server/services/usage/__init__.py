"""Usage analytics: exact queries over recent rows, hourly rollups for long ranges.

report.py     the query (/admin/usage): which path, merging, the row it returns
raw.py        exact aggregates from usage_records (percentile_cont on PostgreSQL)
rollups.py    the hourly rollup table: kept by the usage writer, read for long ranges
histogram.py  the log-spaced latency buckets and percentiles from them
"""

"""Observability: Prometheus metrics, engine metrics re-exposed, host and GPU monitoring.

Each daemon owns one `CollectorRegistry` (built in `create_app`, never at import), so
several apps in one process (the tests) do not share counters. Per-request work is a
few dict lookups and counter increments done where the usage row is made anyway;
everything else (model states, breakers, host, GPUs, engines) is read at scrape time.
"""

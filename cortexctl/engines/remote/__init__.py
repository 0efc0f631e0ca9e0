"""`remote`: an OpenAI-compatible endpoint that already runs elsewhere, served like a local engine.

    args.py         the recipe's `spec.args` (url, key_file, model)
    endpoint.py     what a hostile recipe must not do: URL scheme and host allow-list, key file rules
    runtime.py      the "runtime" that launches nothing and reports the endpoint as its handle
    adapter.py      launch spec, readiness probe, validation checks, `ENGINE`
    data/           the (empty) flag data: a remote engine takes no flags

Nothing is started: the supervisor probes the endpoint and routes to it, and the gateway
meters and limits its requests like any replica's. Callers reach it through the registry.
"""

from cortexctl.engines.remote.adapter import RemoteEngine

ENGINE = RemoteEngine()

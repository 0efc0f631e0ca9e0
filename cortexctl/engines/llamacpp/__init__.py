"""llama.cpp (`llama-server`): everything CORTEX knows about this engine, in one package.

    pin.py          the pinned version, program and default image
    adapter.py      recipe → launch spec (with its runtime needs), readiness probe, `ENGINE`
    args.py         the recipe's `spec.args` model
    flags.py        typed/CORTEX-set flags, the extra_args allow-list and refusal reasons
    data/           the pinned version's flag data (generated from the engine itself)
    checks.py       recipe (semantic) and validation checks only this engine needs
    estimate.py     the memory estimate
    diagnosis.py    startup-failure rules over the engine's log
    binary.py       where the executable is (process runtime)

Callers never import this package by name: they ask `cortexctl.engines.registry`.
"""

from cortexctl.engines.llamacpp.adapter import LlamaCppEngine

ENGINE = LlamaCppEngine()

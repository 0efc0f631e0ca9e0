"""The fit matrix's case selection: generated, deterministic, and covering every pair of values."""

from __future__ import annotations

import itertools

from cortexctl.engines.llamacpp.arch import known_archs
from tests.validation.fitmatrix import DIMENSIONS, NOT_IN_MATRIX, VARIANTS, all_pairs, archs, cases, valid
from tests.validation.ggufmodels import WRITABLE


def test_every_pair_of_flag_values_is_covered_and_valid() -> None:
    cover = all_pairs(DIMENSIONS)
    assert all(valid(c) for c in cover)
    for a, b in itertools.combinations(DIMENSIONS, 2):
        wanted = {(x, y) for x in DIMENSIONS[a] for y in DIMENSIONS[b] if valid({a: x, b: y})}
        assert wanted <= {(c[a], c[b]) for c in cover}, (a, b)


def test_selection_is_deterministic_and_small() -> None:
    assert [c.id for c in cases(long=False)] == [c.id for c in cases(long=False)]
    # one case per model, or per row of the cover when it has more rows (CI stays short:
    # about a second a case)
    assert len(cases(long=False)) == max(len(all_pairs(DIMENSIONS)), len(archs()) + len(VARIANTS))


def test_models_are_every_writable_architecture_in_the_data() -> None:
    assert archs() == [a for a in WRITABLE if a in known_archs() and a not in NOT_IN_MATRIX]
    assert set(NOT_IN_MATRIX) <= set(WRITABLE)  # left out on purpose, each with its reason
    ci_models = {c.model for c in cases(long=False)}
    assert ci_models == {*archs(), *VARIANTS}  # each at least once in CI
    long = cases(long=True)
    assert len(long) == len(ci_models) * len(all_pairs(DIMENSIONS))

"""Wheels may not shadow CORTEX or its dependencies; the closure follows the extras CORTEX asks for."""

from __future__ import annotations

import importlib.metadata as md

import pytest

from cortexctl.bundles.content import check_wheels, installed_closure
from cortexctl.bundles.errors import BundleError
from cortexctl.bundles.manifest import Item


def _wheel(name: str) -> Item:
    return Item(kind="wheelhouse", name=name, path=f"wheelhouse/{name}", size=1, sha256="0" * 64)


def test_the_closure_holds_cortex_its_dependencies_and_the_extras_it_asks_for() -> None:
    closure = installed_closure()
    assert closure["cortex-appliance"] == md.version("cortex-appliance")
    assert closure["pydantic-core"] == md.version("pydantic-core")  # a dependency of a dependency
    assert closure["psycopg-binary"] == md.version("psycopg-binary")  # psycopg[binary]
    assert "pytest" not in closure  # the dev extra is not asked for


def test_a_wheel_at_the_installed_version_passes_any_other_is_refused() -> None:
    version = md.version("pydantic")
    check_wheels(
        [_wheel(f"pydantic-{version}-py3-none-any.whl"), _wheel("unrelated_dist-9.9-py3-none-any.whl")]
    )
    with pytest.raises(BundleError, match=f"would shadow the installed pydantic {version} .* with 0.1"):
        check_wheels([_wheel("Pydantic-0.1-py3-none-any.whl")])
    with pytest.raises(BundleError, match="would shadow the installed psycopg-binary"):
        check_wheels([_wheel("psycopg_binary-0.0.1-cp311-cp311-manylinux_2_17_x86_64.whl")])

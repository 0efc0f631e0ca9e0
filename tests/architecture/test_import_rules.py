"""The import rules of docs/ARCHITECTURE.md ("Layers and import rules"), checked on every import
statement of the tree (module level and inside functions alike)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (ROOT / "cortexctl", ROOT / "server" / "cortex_server")

# The documented entry points from the host side into the daemon's code.
SERVER_ENTRY_POINTS = {
    "cortexctl/cli/daemon.py",  # `cortexctl serve` / `up`: runs the daemon
    "cortexctl/bundles/recipes_adapter.py",  # bundle import registers recipes through the recipes service
    "cortexctl/core/doctor.py",  # `cortexctl doctor` checks the daemon's database connection
}
# Outside an engine's own package, only the registry names engines; these read engine data on purpose.
ENGINE_PACKAGE_READERS = {
    "cortexctl/validation/inspect_gguf.py",  # GGUF is llama.cpp's format: its architecture table reads it
    "cortexctl/core/service_install.py",  # copies the llama-server install.sh built for the service user
}


def modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted(package.rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), path


def imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def violations(rule: str, bad: list[str]) -> str:
    return f"{rule}:\n  " + "\n  ".join(bad)


def test_the_host_core_never_imports_the_cli() -> None:
    bad = [
        f"{rel} imports {name}"
        for rel, path in modules()
        if not rel.startswith(("cortexctl/cli/", "cortexctl/__main__.py"))
        for name in imports(path)
        if under(name, "cortexctl.cli")
    ]
    assert not bad, violations("only cortexctl/cli (and `python -m cortexctl`) may import the CLI", bad)


def test_only_documented_entry_points_import_the_server() -> None:
    bad = [
        f"{rel} imports {name}"
        for rel, path in modules()
        if rel.startswith("cortexctl/") and rel not in SERVER_ENTRY_POINTS
        for name in imports(path)
        if under(name, "cortex_server")
    ]
    assert not bad, violations("the host side imports cortex_server only at its documented entry points", bad)


def test_engines_are_reached_through_the_registry() -> None:
    bad = [
        f"{rel} imports {name}"
        for rel, path in modules()
        if not rel.startswith("cortexctl/engines/") and rel not in ENGINE_PACKAGE_READERS
        for name in imports(path)
        if any(under(name, f"cortexctl.engines.{engine}") for engine in ("llamacpp", "vllm"))
    ]
    assert not bad, violations("outside cortexctl/engines, ask cortexctl.engines.registry", bad)


def test_the_daemon_side_never_imports_rich_through_cortex_code() -> None:
    # (httpx's own CLI module imports rich; ours must not add a path to it.)
    allowed = ("cortexctl/cli/", "cortexctl/validation/render.py")
    bad = [
        f"{rel} imports {name}"
        for rel, path in modules()
        if not rel.startswith(allowed)
        for name in imports(path)
        if under(name, "rich") or under(name, "cortexctl.validation.render")
    ]
    assert not bad, violations("rich and the report renderer are the CLI's", bad)


def test_the_rules_see_imports_inside_functions() -> None:
    tree = "def f():\n    from cortexctl.cli.main import app\n"
    path = ROOT / "tests" / "architecture" / "_probe.py"
    path.write_text(tree)
    try:
        assert "cortexctl.cli.main" in set(imports(path))
    finally:
        path.unlink()

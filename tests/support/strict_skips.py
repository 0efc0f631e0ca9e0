"""Strict mode for CI: a skip outside the allow-list fails the run.

Real-component tests (llama-server, Docker, PostgreSQL, Redis, Chromium, Prometheus) skip on a
developer's laptop where a part is missing, but in CI a skip means the README's promise went
untested while the run stayed green. With `CORTEX_TEST_STRICT=1` (set by `.ci/run`) every skip
whose test is not listed in SKIP_ALLOWLIST becomes a failure naming the reason. The allow-list
holds only what cannot run on a GPU-less host, each with its reason; the terminal summary prints
it, the skips that happened, and how many tests ran on PostgreSQL.
"""

from __future__ import annotations

import fnmatch
import os

import pytest

STRICT_ENV = "CORTEX_TEST_STRICT"

# node id pattern -> why it may skip in CI
SKIP_ALLOWLIST: dict[str, str] = {
    "tests/validation/test_gpus.py::test_detect_gpus_without_driver_is_empty": (
        "asserts the no-driver answer; skips on a host that has an NVIDIA driver"
    ),
}


def strict() -> bool:
    return os.environ.get(STRICT_ENV, "") not in ("", "0")


def allowed(nodeid: str) -> str | None:
    for pattern, reason in SKIP_ALLOWLIST.items():
        if fnmatch.fnmatchcase(nodeid, pattern) or fnmatch.fnmatchcase(nodeid, pattern + "[[]*"):
            return reason
    return None


class StrictSkips:
    """The pytest plugin: turns unlisted skips into failures and reports what ran where."""

    def __init__(self) -> None:
        # read once, at start-up: tests run with the CORTEX_* environment cleared (conftest's
        # _isolated_environment), so asking at report time would always say "not strict"
        self.strict = strict()
        self.skipped: list[tuple[str, str]] = []
        self.failed_skips: list[tuple[str, str]] = []
        self.postgres_passed = 0

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
        outcome = yield
        report = outcome.get_result()
        if report.when == "call" and report.passed and "postgresql" in item.nodeid:
            self.postgres_passed += 1
        if not report.skipped or hasattr(report, "wasxfail"):
            return
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if allowed(item.nodeid) is not None or not self.strict:
            self.skipped.append((item.nodeid, reason))
            return
        self.failed_skips.append((item.nodeid, reason))
        report.outcome = "failed"
        report.longrepr = (
            f"skipped in strict mode ({STRICT_ENV}=1): {reason}\n"
            "A real-component test must run in CI. Install what it needs (see .ci/run and install.sh),"
            " or add it to SKIP_ALLOWLIST in tests/support/strict_skips.py with the reason it cannot"
            " run on a GPU-less host."
        )

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        tr = terminalreporter
        tr.section("CORTEX test coverage of real parts")
        tr.write_line(f"strict skips: {'on' if self.strict else 'off'} ({STRICT_ENV})")
        tr.write_line("skip allow-list:")
        for pattern, reason in SKIP_ALLOWLIST.items():
            tr.write_line(f"  {pattern}: {reason}")
        tr.write_line(f"skipped (allowed or non-strict): {len(self.skipped)}")
        for nodeid, reason in self.skipped:
            tr.write_line(f"  {nodeid}: {reason}")
        if self.failed_skips:
            tr.write_line(f"skips refused by strict mode: {len(self.failed_skips)}")
            for nodeid, reason in self.failed_skips:
                tr.write_line(f"  {nodeid}: {reason}")
        tr.write_line(f"tests passed on PostgreSQL: {self.postgres_passed}")

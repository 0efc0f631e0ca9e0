"""Defect 6 of issue #11: disk full + database outage lost 138 usage rows with no trace (the spool
write failed, the batch was dropped, and the logs were full too).

The daemon's usage journal lives on a real 256 KiB tmpfs. PostgreSQL is stopped under load, so
records pile up in the journal until the filesystem answers ENOSPC for real; load goes on for the
profile's fault time, then PostgreSQL returns. Now nothing is dropped: records the journal could
not take stay in memory and reach the database, the daemon says so loudly (an error log line, and
`cortex_usage_journal_writable` 0 / `cortex_usage_records_unjournaled` in /metrics, which need no
disk), and `usage_journal_full_policy` decides: "serve" keeps answering 200, "refuse" answers an
OpenAI-shaped 503 `usage_journal_unavailable` until the journal has room again. Either way every
200 has its usage row.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.gateway.gateway_support import PrivatePostgres
from tests.reliability.conftest import Profile, needs_pg_binaries
from tests.reliability.daemon_process import DaemonProcess
from tests.reliability.load import Load, metric, stored_ids, wait_until

MODEL = "diskfull-model"
JOURNAL_FS_BYTES = 256 * 1024
LOUD = "USAGE RECORDS ARE NOT DURABLE"


def start_upstream() -> tuple[subprocess.Popen[bytes], str]:
    """The mock OpenAI upstream in a process of its own (no GIL shared with the load)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.openai_upstream", str(port), MODEL],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(base + "/v1/models", timeout=1).is_success
        except httpx.HTTPError:
            return False

    assert wait_until(up, timeout_s=20, step_s=0.1), "the mock upstream did not start"
    return proc, base


@needs_pg_binaries
@pytest.mark.parametrize("policy", ["serve", "refuse"])
def test_disk_full_during_a_database_outage_loses_no_row_and_says_so(
    tmp_path: Path,
    private_pg: PrivatePostgres,
    tmpfs: Callable[[int], Path],
    profile: Profile,
    policy: str,
) -> None:
    home = tmp_path / "home"
    (home / "spool").mkdir(parents=True)
    journal_fs = tmpfs(JOURNAL_FS_BYTES)  # a real filesystem that really fills up (ENOSPC)
    (home / "spool" / "journal").symlink_to(journal_fs)  # = settings.usage_journal_dir
    upstream, base = start_upstream()
    daemon = DaemonProcess(
        home=home,
        port=free_port(),
        model=MODEL,
        upstream=base,
        database_url=private_pg.url,
        usage_journal_full_policy=policy,
    )
    load: Load | None = None
    try:
        daemon.start()
        load = Load(daemon.url, daemon.admin_key, MODEL, clients=profile.clients).start()
        assert wait_until(lambda: len(load.completed) >= 20, timeout_s=60), load.statuses
        time.sleep(profile.load_s)
        before = Counter(load.statuses)

        private_pg.stop()  # records now stay in the journal, which fills the tmpfs
        full = wait_until(lambda: LOUD in daemon.log(), timeout_s=60, step_s=0.2)
        assert full, f"the journal never reported a full disk: {load.statuses} {daemon.log()[-2000:]}"
        time.sleep(profile.fault_s)  # load goes on against a full disk and no database
        writable = metric(daemon.url, "cortex_usage_journal_writable")
        unjournaled = metric(daemon.url, "cortex_usage_records_unjournaled")
        load.join()
        during = Counter(load.statuses) - before
        completed = set(load.completed)

        private_pg.start()
        wait_until(lambda: completed <= stored_ids(private_pg.url), timeout_s=30, step_s=0.3)
        rows = stored_ids(private_pg.url)
        # the journal drained into the database: it has room again, and inference is served again
        served_again = wait_until(lambda: load.one().status_code == 200, timeout_s=20, step_s=0.3)
    finally:
        if load is not None:
            load.join()
        daemon.stop()
        upstream.kill()
        upstream.wait(10)

    missing = completed - rows
    log = daemon.log()
    loud = next(line for line in log.splitlines() if LOUD in line)
    print(
        f"disk full + PostgreSQL down, policy {policy} ({profile.name}, {profile.clients} clients, "
        f"journal on a {JOURNAL_FS_BYTES // 1024} KiB tmpfs): sent {load.sent}, "
        f"by status {dict(load.statuses)} "
        f"(after the fault began: {dict(during)}), errors {dict(load.errors)}, "
        f"completed {len(completed)}, rows {len(rows)}, completed without a row {len(missing)}, "
        f"records held only in memory {unjournaled}, journal writable {writable}, "
        f"served again after recovery {served_again}"
    )
    assert "No space left on device" in loud, loud  # the real ENOSPC, not the size cap
    assert writable == 0.0, "/metrics says the journal is not writable"
    assert not load.malformed, load.malformed[:3]
    assert not missing, f"{len(missing)} of {len(completed)} completed responses have no usage row"
    if policy == "serve":
        assert set(load.statuses) == {"200"}, f"policy serve answers every request: {load.statuses}"
        assert unjournaled, "records were served without the journal, and counted"
    else:
        assert during.get("503", 0) > 0, f"policy refuse refused nothing: {during}"
        assert set(load.statuses) <= {"200", "503"}, load.statuses
        assert {(status, code) for status, _, code in load.errors} == {(503, "usage_journal_unavailable")}, (
            load.errors
        )
    assert served_again, "inference is served again once the journal drained"

"""Defect 4 of issue #11: a daemon SIGKILL lost the usage rows that waited in memory (39 of 1,636).

Now every response that reached the client in full has its usage record in the journal before
its end was sent (written, and fsync'd within a second; or fsync'd first, with
`usage_journal_fsync: always`), and the next daemon replays the journal into the database:
after a SIGKILL under load, every completed response has its row, in both modes.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.gateway.gateway_support import LlamaServer, PrivatePostgres
from tests.reliability.conftest import Profile, needs_llama, needs_pg_binaries
from tests.reliability.daemon_process import DaemonProcess
from tests.reliability.load import Load, stored_ids, wait_until

MODEL = "tiny-journal"


@needs_llama
@needs_pg_binaries
@pytest.mark.parametrize("fsync", ["every_second", "always"])
def test_sigkill_under_load_loses_no_completed_response_row(
    tmp_path: Path, private_pg: PrivatePostgres, llama_server: object, profile: Profile, fsync: str
) -> None:
    upstream: LlamaServer = llama_server(MODEL)  # type: ignore[operator]
    home = tmp_path / "home"
    # the default flush interval (0.5 s): rows wait in the journal
    settings = {"database_url": private_pg.url, "usage_journal_fsync": fsync}
    first = DaemonProcess(home=home, port=free_port(), model=MODEL, upstream=upstream.base_url, **settings)
    first.start()
    load = Load(first.url, first.admin_key, MODEL, clients=profile.clients, api="completions").start()
    try:
        assert wait_until(lambda: len(load.completed) >= 20, timeout_s=60), load.statuses
        time.sleep(profile.load_s)  # load, not a timing assertion: the kill lands mid-traffic
        first.kill()
    finally:
        load.join()
    completed = set(load.completed)
    journal_files = len(list((home / "spool" / "journal").glob("usage-*.jsonl")))

    second = DaemonProcess(home=home, port=free_port(), model=MODEL, upstream=upstream.base_url, **settings)
    second.start()
    try:
        # the replay on start; the figures below say what is missing if it never completes
        wait_until(lambda: completed <= stored_ids(private_pg.url), timeout_s=20, step_s=0.2)
    finally:
        second.stop()
    rows = stored_ids(private_pg.url)
    missing = completed - rows
    print(
        f"SIGKILL under load ({profile.name}, {profile.clients} clients, fsync {fsync}): sent {load.sent}, "
        f"by status {dict(load.statuses)}, responses completed {len(completed)}, rows {len(rows)}, "
        f"completed without a row {len(missing)}, journal segments left by the kill {journal_files}"
    )
    assert not missing, f"{len(missing)} of {len(completed)} completed responses have no usage row"

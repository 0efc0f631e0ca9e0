"""The local admin token is per host and home: daemons sharing one database keep their own."""

from __future__ import annotations

from pathlib import Path

from cortex_server.core.security import hash_api_key
from cortex_server.db.engine import make_engine, make_session_factory
from cortex_server.services.bootstrap import local_token_key_name
from cortex_server.services.keys import find_active_key
from cortex_server.services.prepare import prepare_database
from cortexctl.core.settings import load_settings


def test_daemons_sharing_a_database_keep_their_own_local_tokens(tmp_path: Path, database_url: str) -> None:
    common = {"database_url": database_url, "secret_key": "shared-secret-of-the-fleet"}
    a = load_settings(home=tmp_path / "a", **common)
    b = load_settings(home=tmp_path / "b", **common)
    prepare_database(a)
    prepare_database(b)
    (a.admin_token_file).unlink()  # a's token file is lost: a mints a new one...
    prepare_database(a)
    prepare_database(b)  # ...and b, restarting, still has its own
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            for settings in (a, b):
                token = settings.admin_token_file.read_text().strip()
                row = find_active_key(session, key_hash=hash_api_key(token, b"shared-secret-of-the-fleet"))
                assert row is not None and row.name == local_token_key_name(settings.home)
    finally:
        engine.dispose()
    assert local_token_key_name(a.home) != local_token_key_name(b.home)
    assert local_token_key_name(a.home, "host-1") != local_token_key_name(a.home, "host-2")
    assert len(local_token_key_name(a.home, "h" * 500)) <= 128

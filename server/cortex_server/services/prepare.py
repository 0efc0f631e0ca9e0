"""Before the daemon serves: DB reachable, migrations at head, first-run bootstrap."""

from __future__ import annotations

from cortex_server.core.security import load_or_create_secret, private_umask, secure_home
from cortex_server.db.engine import check_connection, make_engine, make_session_factory, session_scope
from cortex_server.db.schema_version import is_current
from cortex_server.services.bootstrap import BootstrapResult, bootstrap, mark_password_shown
from cortexctl.core.settings import Settings


def prepare_database(settings: Settings, *, shows_password: bool = True) -> BootstrapResult:
    with private_umask():  # the SQLite file, secret key and admin token are created private
        secure_home(settings.home)
        engine = make_engine(settings.effective_database_url)
        try:
            check_connection(engine)
            if not is_current(engine):
                # alembic only when there is something to migrate: it stays out of a daemon that
                # restarts on a current schema (9 MiB of imports in the serving process)
                from cortex_server.db.migrate import upgrade_to_head

                upgrade_to_head(engine)
            with session_scope(make_session_factory(engine)) as session:
                return bootstrap(
                    session,
                    settings=settings,
                    secret=load_or_create_secret(settings),
                    shows_password=shows_password,
                )
        finally:
            engine.dispose()
            secure_home(settings.home)  # and files an older version left 0644


def password_shown(settings: Settings) -> None:
    """The operator has seen the first admin password (`cortexctl up` printed it)."""
    engine = make_engine(settings.effective_database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            mark_password_shown(session)
    finally:
        engine.dispose()

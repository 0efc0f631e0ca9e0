"""The usage writer's insert: a batch of usage rows and their rollups, through the driver's executemany.

Why not `conn.execute(insert_stmt, rows)`, and its INSERT … RETURNING (which tells which rows
were new, so a replayed row is not rolled up twice): see db/driver_sql.py; it cost more CPU a
row in the writer's thread than the gateway spends on much of the request.

Which rows were new: the driver's rowcount for the batch (INSERT … ON CONFLICT (request_id)
DO NOTHING). When it counts every row (the normal case: fresh records), all of them are rolled
up in the same transaction. When it counts fewer (a replay after a crash or a DB outage), the
transaction is rolled back and the caller inserts the batch the slow way, with RETURNING,
rolling up only what was new.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, Insert

from cortex_server.db.driver_sql import DriverStatement
from cortex_server.db.models import UsageRecord
from cortex_server.services.usage import rollups


class _SomeStoredAlready(Exception):
    """Rolls the batch's transaction back: some of its rows were in the database already."""


class UsageBulkInsert:
    def __init__(self, engine: Engine, stmt: Insert, rollup_stmts: dict[str, DriverStatement]) -> None:
        self._engine = engine
        self._rollup_stmts = rollup_stmts
        columns = [c for c in UsageRecord.__table__.columns if c.key != "id"]  # id: the database's
        self._keys = [c.key for c in columns]
        self._insert = DriverStatement(engine, stmt, columns)

    def insert_if_all_new(self, rows: list[dict[str, Any]]) -> bool:
        """Insert `rows` and roll them up, in one transaction; False (and nothing written) when
        some were stored already or a row lacks a column: then use the RETURNING path."""
        keys = self._keys
        try:
            values = [[row[k] for k in keys] for row in rows]
        except KeyError:
            return False
        try:
            with self._engine.begin() as conn:
                if self._insert.execute(conn, values) != len(rows):
                    raise _SomeStoredAlready
                rollups.add(conn, rows, self._rollup_stmts)
        except _SomeStoredAlready:
            return False
        return True

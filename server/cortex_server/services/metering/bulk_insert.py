"""The usage writer's insert: a batch of usage rows and their rollups, through the driver's executemany.

Why not `conn.execute(insert_stmt, rows)`: SQLAlchemy builds and processes every row's parameters
in Python, and INSERT … RETURNING (which tells which rows were new, so a replayed row is not
rolled up twice) runs as multi-VALUES batches. Measured per row, in the writer's thread: ~30 µs of
CPU on SQLite and ~150 µs on PostgreSQL, against a gateway that spends ~250 µs on the whole
request. Here the statement is compiled once, each row's values go through the columns' own
bind processors (the same conversions SQLAlchemy applies) and the driver's executemany inserts
them, with ON CONFLICT (request_id) DO NOTHING.

Which rows were new: the driver's rowcount for the batch. When it counts every row (the normal
case: fresh records), all of them are rolled up in the same transaction. When it counts fewer
(a replay after a crash or a DB outage), the transaction is rolled back and the caller inserts
the batch the slow way, with RETURNING, rolling up only what was new.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, Insert

from cortex_server.db.models import UsageRecord
from cortex_server.services.usage import rollups


class _SomeStoredAlready(Exception):
    """Rolls the batch's transaction back: some of its rows were in the database already."""


class UsageBulkInsert:
    def __init__(self, engine: Engine, stmt: Insert, rollup_stmts: dict[str, Insert]) -> None:
        self._engine = engine
        self._rollup_stmts = rollup_stmts
        columns = [c for c in UsageRecord.__table__.columns if c.key != "id"]  # id: the database's
        compiled = stmt.compile(dialect=engine.dialect, column_keys=[c.key for c in columns])
        self._sql = str(compiled)
        by_key = {c.key: c for c in columns}
        # the bound parameters in the statement's order (positional drivers) or by name (pyformat)
        self._keys: list[str] = list(compiled.positiontup or ()) if compiled.positional else list(by_key)
        self._positional = compiled.positional
        self._processors: list[tuple[int, Callable[[Any], Any]]] = []
        for i, key in enumerate(self._keys):
            processor = by_key[key].type.dialect_impl(engine.dialect).bind_processor(engine.dialect)
            if processor is not None:
                self._processors.append((i, processor))

    def insert_if_all_new(self, rows: list[dict[str, Any]]) -> bool:
        """Insert `rows` and roll them up, in one transaction; False (and nothing written) when
        some were stored already or a row lacks a column: then use the RETURNING path."""
        try:
            params = self._params(rows)
        except KeyError:
            return False
        try:
            with self._engine.begin() as conn:
                # straight to the driver's executemany (driver errors still come as SQLAlchemy's)
                stored = conn.exec_driver_sql(self._sql, params).rowcount
                if stored != len(rows):
                    raise _SomeStoredAlready
                rollups.add(conn, rows, self._rollup_stmts)
        except _SomeStoredAlready:
            return False
        return True

    def _params(self, rows: list[dict[str, Any]]) -> list[Any]:
        keys, processors = self._keys, self._processors
        out: list[Any] = []
        for row in rows:
            values = [row[k] for k in keys]
            for i, process in processors:
                values[i] = process(values[i])
            out.append(tuple(values) if self._positional else dict(zip(keys, values, strict=True)))
        return out

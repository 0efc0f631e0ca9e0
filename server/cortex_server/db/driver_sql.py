"""A statement compiled once and run through the driver's executemany, for the usage writer's batches.

Why: `conn.execute(stmt, rows)` builds and processes every row's parameters in SQLAlchemy's
Python code, per column. For the usage rows (15 columns) that was ~30 µs of CPU a row on SQLite
and ~150 µs on PostgreSQL; for a rollup row (~100 columns: sums and two histograms) ~80 µs,
paid once per (key, model, hour) in every batch, so a gateway serving many keys paid it for
most rows. Here each value goes through its column's own bind processor (the conversions
SQLAlchemy applies: UTC datetimes to SQLite's text, booleans) and the rest is the driver's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine
from sqlalchemy.sql.dml import ValuesBase


class DriverStatement:
    """`stmt` (an INSERT, with or without ON CONFLICT) compiled for `engine`'s dialect with the
    values of `columns`; `execute(conn, rows)` takes one sequence of values per row, in
    `columns`' order, and answers the driver's rowcount for the batch."""

    def __init__(self, engine: Engine, stmt: ValuesBase, columns: Sequence[ColumnElement[Any]]) -> None:
        keys = [c.key for c in columns]
        compiled = stmt.compile(dialect=engine.dialect, column_keys=keys)
        self.sql = str(compiled)
        self._positional = compiled.positional
        self._keys = keys
        # positional drivers (SQLite: ?) take the values in the statement's order; named ones
        # (psycopg: %(name)s) take a dict
        self._order: list[int] | None = None
        if compiled.positional:
            at = {key: i for i, key in enumerate(keys)}
            self._order = [at[name] for name in compiled.positiontup or ()]
        self._processors: list[tuple[int, Callable[[Any], Any]]] = []
        for i, column in enumerate(columns):
            processor = column.type.dialect_impl(engine.dialect).bind_processor(engine.dialect)
            if processor is not None:
                self._processors.append((i, processor))

    def execute(self, conn: Connection, rows: Sequence[Sequence[Any]]) -> int:
        if not rows:
            return 0
        # exec_driver_sql: straight to the driver's executemany, its errors still SQLAlchemy's
        return conn.exec_driver_sql(self.sql, self._params(rows)).rowcount

    def _params(self, rows: Sequence[Sequence[Any]]) -> list[Any]:
        processors, order, keys = self._processors, self._order, self._keys
        out: list[Any] = []
        for row in rows:
            values = list(row)
            for i, process in processors:
                values[i] = process(values[i])
            if order is not None:
                out.append(tuple([values[i] for i in order]))
            else:
                out.append(dict(zip(keys, values, strict=True)))
        return out

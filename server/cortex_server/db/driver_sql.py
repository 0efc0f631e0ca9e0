"""A statement compiled once and run through the driver's executemany, for the usage writer's batches.

Why: `conn.execute(stmt, rows)` builds and processes every row's parameters in SQLAlchemy's
Python code, per column. For the usage rows (15 columns) that was ~30 µs of CPU a row on SQLite
and ~150 µs on PostgreSQL; for a rollup row (~100 columns: sums and two histograms) ~80 µs,
paid once per (key, model, hour) in every batch, so a gateway serving many keys paid it for
most rows. Here each value goes through its column's own bind processor (the conversions
SQLAlchemy applies: UTC datetimes to SQLite's text, booleans) and the rest is the driver's.

On SQLite a batch goes as multi-row `VALUES (…), (…)` statements, not an executemany: sqlite3
hands the GIL back around every row's step and must win it back, and with the event loop's thread
busy (a saturated gateway) each win waited up to the interpreter's switch interval (5 ms).
Measured with a busy thread beside it, 1000 rows took 0.4-0.55 s instead of 1.6 ms (17 ms as
multi-row statements); in the daemon at c=8 the writer fell behind the requests it meters and
their rows piled up in memory without bound (+95 MiB after 186k requests). PostgreSQL keeps
psycopg's executemany: the same test slows it 10x (170 ms instead of 15), not 300x, and the
multi-row form cost psycopg twice the CPU a row (51 against 23 µs).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine
from sqlalchemy.sql.dml import ValuesBase

# Rows per multi-row statement: the largest power of two with at most this many values. Few
# statements per batch (GIL hand-backs), and few distinct ones: a chunk's rows are a power of two
# (a batch of 1000 usage rows: 7 x 128, then 64 + 32 + 8), so sqlite3's cache of prepared statements
# holds at most 8 sizes per statement, each small, instead of one compiled program per batch size.
# (999: SQLite's own limit before 3.32)
MAX_VALUES_PER_STATEMENT = 2048 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
_ROW = re.compile(r"VALUES (\(\?(?:, \?)*\))")  # the one row of values of a compiled (qmark) INSERT


class DriverStatement:
    """`stmt` (an INSERT of one row of values, with or without ON CONFLICT) compiled for `engine`'s
    dialect with the values of `columns`; `execute(conn, rows)` takes one sequence of values per
    row, in `columns`' order, and answers the driver's rowcount for the batch."""

    def __init__(self, engine: Engine, stmt: ValuesBase, columns: Sequence[ColumnElement[Any]]) -> None:
        keys = [c.key for c in columns]
        compiled = stmt.compile(dialect=engine.dialect, column_keys=keys)
        self.sql = str(compiled)
        self._keys = keys
        at = {key: i for i, key in enumerate(keys)}
        # positional drivers (SQLite: ?) take the values in the statement's order; named ones
        # (psycopg: %(name)s) take a dict
        self._order: list[int] | None = None
        if compiled.positional:
            self._order = [at[name] for name in compiled.positiontup or ()]
        self._processors: list[tuple[int, Callable[[Any], Any]]] = []
        for i, column in enumerate(columns):
            processor = column.type.dialect_impl(engine.dialect).bind_processor(engine.dialect)
            if processor is not None:
                self._processors.append((i, processor))
        # the multi-row form (SQLite): the row of values repeated; the rest of the statement
        # must hold no parameter, or the values would not line up
        row = _ROW.search(self.sql) if engine.dialect.name == "sqlite" else None
        self._head = self._row = self._tail = ""  # _row empty: no multi-row form, executemany
        if row is not None and "?" not in self.sql[: row.start(1)] + self.sql[row.end(1) :]:
            self._head, self._row, self._tail = self.sql[: row.start(1)], row.group(1), self.sql[row.end(1) :]
        self.rows_per_statement = 1 << max(0, (MAX_VALUES_PER_STATEMENT // len(keys)).bit_length() - 1)
        self._multi_sql: dict[int, str] = {}

    def execute(self, conn: Connection, rows: Sequence[Sequence[Any]]) -> int:
        if not rows:
            return 0
        values = self._processed(rows)
        order = self._order  # a qmark statement: positional
        if not self._row or order is None or len(rows) == 1:
            # exec_driver_sql: straight to the driver's executemany, its errors still SQLAlchemy's
            return conn.exec_driver_sql(self.sql, self._params(values)).rowcount
        count, at, left = 0, 0, len(values)
        while left:
            size = min(self.rows_per_statement, 1 << (left.bit_length() - 1))  # a power of two
            flat = tuple([row[i] for row in values[at : at + size] for i in order])
            count += conn.exec_driver_sql(self._multi_row_sql(size), flat).rowcount
            at, left = at + size, left - size
        return count

    def _multi_row_sql(self, n: int) -> str:
        """The statement with `n` rows of values (built once per size: n is a power of two)."""
        sql = self._multi_sql.get(n)
        if sql is None:
            sql = self._multi_sql[n] = f"{self._head}{', '.join([self._row] * n)}{self._tail}"
        return sql

    def _processed(self, rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
        processors = self._processors
        out: list[list[Any]] = []
        for row in rows:
            values = list(row)
            for i, process in processors:
                values[i] = process(values[i])
            out.append(values)
        return out

    def _params(self, values: list[list[Any]]) -> list[Any]:
        order, keys = self._order, self._keys
        if order is not None:
            return [tuple([row[i] for i in order]) for row in values]
        return [dict(zip(keys, row, strict=True)) for row in values]

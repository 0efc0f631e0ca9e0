"""Tables that fit the terminal without cutting identifiers.

A name, a key prefix or a served name cut to `gemma3-270m-c…` cannot be pasted into
the next command. So: every cell wraps (folds) instead of being cut, and when the
table is wider than the terminal the least important columns are dropped first,
one at a time, until it fits. `--wide` keeps every column (lines may then be wider
than the terminal; nothing is cut either way). `--json` has everything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

WideOpt = Annotated[
    bool, typer.Option("--wide", help="Show every column, even if the table is wider than the terminal.")
]


@dataclass(frozen=True)
class Col:
    header: str
    drop_order: int = 0  # 0: always shown; otherwise dropped when short of room, highest first
    justify: str = "left"


def fit_table(
    console: Console,
    columns: Sequence[Col],
    rows: Iterable[Sequence[str]],
    *,
    wide: bool = False,
    title: str | None = None,
) -> Table:
    """The table with as many columns as fit `console.width` (all of them with `wide`)."""
    cells = [list(r) for r in rows]
    keep = list(range(len(columns)))
    droppable = [i for i, c in enumerate(columns) if c.drop_order]
    droppable.sort(key=lambda i: -columns[i].drop_order)
    table = _build(columns, cells, keep, title)
    while not wide and droppable and _natural_width(console, table) > console.width:
        keep.remove(droppable.pop(0))
        table = _build(columns, cells, keep, title)
    return table


def print_table(console: Console, table: Table, *, wide: bool = False) -> None:
    """Print without cutting: with `wide`, as wide as the table needs rather than the terminal."""
    if not wide:
        console.print(table)
        return
    wider = Console(
        file=console.file,
        width=max(console.width, _natural_width(console, table)),
        color_system=console.color_system,  # type: ignore[arg-type]
        force_terminal=console.is_terminal,
    )
    wider.print(table, crop=False)


def _build(columns: Sequence[Col], rows: list[list[str]], keep: list[int], title: str | None) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title=title)
    for i in keep:
        c = columns[i]
        table.add_column(c.header, overflow="fold", justify=c.justify)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(*(r[i] for i in keep))
    return table


def _natural_width(console: Console, table: Table) -> int:
    return Measurement.get(console, console.options.update(width=10_000), table).maximum

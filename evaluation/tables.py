"""Build published tables from per-case items: count, summarise, suppress, in one place.

Every number a report shows passes through here or through the share rule below, so the
suppression rules are applied once, the same way for every measure.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass

from evaluation.suppression import THRESHOLD, suppress
from models.reports import ReportTable

ALL = "all"


@dataclass(frozen=True)
class Item:
    """One case's contribution to a table: its row, its column, who it is, and a value."""

    row: str
    col: str
    person: Hashable
    value: float | None = None


def share_shown(part: int, whole: int, threshold: int = THRESHOLD) -> bool:
    """A share may be published when neither its part nor the rest is a small count:
    "2 of 9 missed" would publish a cell of 2 people as surely as a count would."""
    rest = whole - part
    return whole >= threshold and not (0 < part < threshold) and not (0 < rest < threshold)


def ordered(values: Iterable[str], order: Sequence[str] | None = None) -> list[str]:
    present = set(values)
    if order is None:
        return sorted(present)
    return [v for v in order if v in present] + sorted(present - set(order))


def _cell_sets(items: Sequence[Item], rows: list[str], cols: list[str]) -> list[list[list[Item]]]:
    r_index = {r: i for i, r in enumerate(rows)}
    c_index = {c: i for i, c in enumerate(cols)}
    cells: list[list[list[Item]]] = [
        [[] for _ in range(len(cols) + 1)] for _ in range(len(rows) + 1)
    ]
    for item in items:
        r, c = r_index[item.row], c_index[item.col]
        for rr in (r, len(rows)):
            for cc in (c, len(cols)):
                cells[rr][cc].append(item)
    return cells


def cross_table(
    key: str,
    title: str,
    measure: str,
    items: Sequence[Item],
    *,
    row_label: str,
    col_label: str,
    row_order: Sequence[str] | None = None,
    col_order: Sequence[str] | None = None,
    value_label: str | None = None,
    summary: Callable[[list[float]], float] = statistics.median,
    shared_total_row: bool = False,
    one_way: bool = False,
    margins: bool = True,
) -> ReportTable:
    """Counts per cell with margins, suppressed; with `value_label`, a summary of the values.

    `one_way`: the column is a single `all` and only the row margin is published.
    `margins=False`: no totals (rows that must not add up, e.g. stays in different stages);
    then only the primary rule applies, since nothing can be derived from what is not shown.
    """
    rows = ordered((i.row for i in items), row_order)
    cols = [ALL] if one_way else ordered((i.col for i in items), col_order)
    if one_way:
        items = [Item(i.row, ALL, i.person, i.value) for i in items]
    if not rows:
        return ReportTable(
            key=key,
            title=title,
            measure=measure,
            row_label=row_label,
            col_label=col_label,
            rows=[ALL],
            cols=[ALL],
            counts=[[None]],
            value_label=value_label,
            values=[[None]] if value_label else None,
        )
    cells = _cell_sets(items, rows, cols)
    counts = [[len(cell) for cell in row] for row in cells]
    people = [[len({i.person for i in cell}) for cell in row] for row in cells]
    if margins:
        hidden = [
            list(r) for r in suppress(counts, people, shared_total_row=shared_total_row).hidden
        ]
    else:
        hidden = [[p < THRESHOLD for p in row] for row in people]

    out_cols = len(cols) if one_way else len(cols) + 1
    out_rows = len(rows) + 1 if margins else len(rows)
    shown_counts: list[list[int | None]] = []
    shown_values: list[list[float | None]] = []
    for r in range(out_rows):
        count_row: list[int | None] = []
        value_row: list[float | None] = []
        for c in range(out_cols):
            # A one-way table's data column and its margin are the same cells.
            is_hidden = hidden[r][c] or (one_way and hidden[r][c + 1])
            count_row.append(None if is_hidden else counts[r][c])
            values = [i.value for i in cells[r][c] if i.value is not None]
            value_row.append(None if is_hidden or not values else round(summary(values), 1))
        shown_counts.append(count_row)
        shown_values.append(value_row)
    return ReportTable(
        key=key,
        title=title,
        measure=measure,
        row_label=row_label,
        col_label=col_label,
        rows=[*rows, ALL] if margins else rows,
        cols=cols if one_way else [*cols, ALL],
        counts=shown_counts,
        value_label=value_label,
        values=shown_values if value_label else None,
    )

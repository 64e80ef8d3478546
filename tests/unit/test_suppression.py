"""Small-cell suppression: no shown cell under 5 people, no hidden cell derivable from the rest.

The derivability check is plain linear algebra, independent of the graph argument the
suppression code uses: a hidden cell is determined exactly when every solution of the table's
additivity equations, with the shown cells fixed, gives it the same value, i.e. when no
vector of the equations' null space (restricted to the hidden cells) moves it.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation.suppression import THRESHOLD, suppress


def with_margins(inner: list[list[int]]) -> list[list[int]]:
    rows = [[*row, sum(row)] for row in inner]
    return [*rows, [sum(col) for col in zip(*rows, strict=True)]]


def determined_cells(
    grid: list[list[int]], hidden: tuple[tuple[bool, ...], ...]
) -> set[tuple[int, int]]:
    n_rows, n_cols = len(grid), len(grid[0])
    unknowns = [(r, c) for r in range(n_rows) for c in range(n_cols) if hidden[r][c]]
    if not unknowns:
        return set()
    index = {cell: k for k, cell in enumerate(unknowns)}
    equations = []
    # Every row (margin row too): its inner cells sum to its last cell.
    for r in range(n_rows):
        line = np.zeros(len(unknowns))
        for c in range(n_cols):
            if (r, c) in index:
                line[index[(r, c)]] = -1.0 if c == n_cols - 1 else 1.0
        equations.append(line)
    for c in range(n_cols):
        line = np.zeros(len(unknowns))
        for r in range(n_rows):
            if (r, c) in index:
                line[index[(r, c)]] = -1.0 if r == n_rows - 1 else 1.0
        equations.append(line)
    matrix = np.array(equations)
    _, singular, vt = np.linalg.svd(matrix)
    rank = int((singular > 1e-9).sum())
    null_space = vt[rank:]
    return {
        cell
        for cell, k in index.items()
        if null_space.shape[0] == 0 or np.all(np.abs(null_space[:, k]) < 1e-9)
    }


tables = st.integers(1, 5).flatmap(
    lambda rows: st.integers(1, 5).flatmap(
        lambda cols: st.lists(
            st.lists(st.integers(0, 25), min_size=cols, max_size=cols),
            min_size=rows,
            max_size=rows,
        )
    )
)


@settings(max_examples=300, deadline=None)
@given(inner=tables, shared=st.booleans())
def test_no_shown_cell_is_small_and_no_hidden_cell_can_be_derived(
    inner: list[list[int]], shared: bool
) -> None:
    grid = with_margins(inner)
    result = suppress(grid, shared_total_row=shared)
    for r, row in enumerate(grid):
        for c, count in enumerate(row):
            if result.shows(r, c):
                assert count >= THRESHOLD, (r, c)
    assert determined_cells(grid, result.hidden) == set()


@settings(max_examples=150, deadline=None)
@given(inner=tables)
def test_a_shared_total_row_is_hidden_the_same_way_in_every_table(inner: list[list[int]]) -> None:
    """Two breakdowns of one measure share their column totals: they must hide the same ones,
    or one table would show what the other hides."""
    grid = with_margins(inner)
    totals = grid[-1][:-1]
    # Another breakdown of the same people: the same column totals, split into other rows.
    other = with_margins([[t // 2 for t in totals], [t - t // 2 for t in totals]])
    a = suppress(grid, shared_total_row=True).hidden
    b = suppress(other, shared_total_row=True).hidden
    if all(all(row) for row in a) or all(all(row) for row in b):
        return  # a table that shows nothing cannot show what another hides
    assert a[-1] == b[-1]


def test_the_derivability_check_finds_a_lone_hidden_cell() -> None:
    grid = with_margins([[3, 10], [9, 11]])
    alone = tuple(tuple((r, c) == (0, 0) for c in range(3)) for r in range(3))
    assert determined_cells(grid, alone) == {(0, 0)}
    square = tuple(tuple(r < 2 and c < 2 for c in range(3)) for r in range(3))
    assert determined_cells(grid, square) == set()


def test_a_single_small_cell_takes_a_partner_in_its_row_and_its_column() -> None:
    grid = with_margins([[3, 10, 12], [9, 11, 14], [8, 20, 6]])
    hidden = suppress(grid).hidden
    assert hidden[0][0]
    assert sum(hidden[0][:3]) >= 2 and sum(row[0] for row in hidden[:3]) >= 2
    # The margins stay shown: the cheapest partners are inner cells.
    assert not any(hidden[3]) and not any(row[3] for row in hidden)


def test_people_not_cases_decide_what_is_small() -> None:
    # Seven cases of only four people: hidden, although seven is not a small number.
    grid = with_margins([[7, 20], [15, 30]])
    people = [[4, 20, 24], [15, 30, 45], [19, 50, 69]]
    assert suppress(grid, people).hidden[0][0]

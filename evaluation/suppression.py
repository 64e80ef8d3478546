"""Small-cell suppression of a two-way table with margins, primary and complementary.

A table is published with its margins: the last row holds the column totals and the last
column the row totals. Primary suppression hides every cell that counts fewer than
`threshold` people. Complementary suppression then hides more cells until no hidden cell can
be worked out exactly from what is shown.

Why the rule is a cycle: give the margins a minus sign and every row and column of the grid
sums to zero. The hidden cells are the unknowns; the values they may take are the published
solution plus any combination of zero-sum patterns on the hidden cells, and those patterns
are exactly the cycles of the bipartite graph whose nodes are the grid's rows and columns and
whose edges are the hidden cells. A hidden cell is therefore determined if and only if its
edge lies on no cycle (it is a bridge). The loop below closes every bridge into a rectangle of
hidden cells, choosing the rectangle that hides the fewest people.

Margins shared with other tables of the same population (the column totals of a measure
broken down in several ways, and the grand total) are never hidden to protect an inner cell,
or one table could hide what another shows: they are hidden only by the primary rule, and
among themselves by a pre-pass that depends on the shared margin alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

THRESHOLD = 5
_FORBIDDEN = float("inf")


@dataclass(frozen=True)
class Suppressed:
    """Which cells of the (rows + 1) x (cols + 1) grid are hidden; `grid[r][c]` is True."""

    hidden: tuple[tuple[bool, ...], ...]

    def shows(self, row: int, col: int) -> bool:
        return not self.hidden[row][col]


def suppress(
    counts: Sequence[Sequence[int]],
    people: Sequence[Sequence[int]] | None = None,
    *,
    threshold: int = THRESHOLD,
    shared_total_row: bool = False,
) -> Suppressed:
    """Hide cells of a grid with margins (last row and column are totals).

    `counts` are the published values; `people` the number of distinct people behind each
    cell (the same as `counts` when omitted). With `shared_total_row`, the total row is a
    margin other tables publish too; it is then decided from its own values only.
    """
    grid = [list(map(int, row)) for row in counts]
    heads = [list(map(int, row)) for row in (people if people is not None else counts)]
    n_rows, n_cols = len(grid), len(grid[0])
    total_row, total_col = n_rows - 1, n_cols - 1
    hidden = [[heads[r][c] < threshold for c in range(n_cols)] for r in range(n_rows)]

    if shared_total_row:
        _protect_line(grid[total_row][:total_col], hidden[total_row])

    def cost(r: int, c: int) -> float:
        if hidden[r][c]:
            return 0
        if (r, c) == (total_row, total_col) or (shared_total_row and r == total_row):
            return _FORBIDDEN
        # Prefer inner cells to margins, then the fewest people.
        margin = r == total_row or c == total_col
        return grid[r][c] + (1_000_000 if margin else 0)

    while (bridge := _first_bridge(hidden)) is not None:
        r, c = bridge
        best: tuple[float, int, int] | None = None
        for r2 in range(n_rows):
            for c2 in range(n_cols):
                if r2 == r or c2 == c:
                    continue
                total = cost(r, c2) + cost(r2, c2) + cost(r2, c)
                if total < _FORBIDDEN and (best is None or total < best[0]):
                    best = (total, r2, c2)
        if best is None:
            # No rectangle avoids the shared margins: publish nothing of this table.
            return Suppressed(tuple(tuple(True for _ in range(n_cols)) for _ in range(n_rows)))
        _, r2, c2 = best
        for rr, cc in ((r, c2), (r2, c2), (r2, c)):
            hidden[rr][cc] = True
    return Suppressed(tuple(tuple(row) for row in hidden))


def _protect_line(values: Sequence[int], hidden: list[bool]) -> None:
    """A shared margin line: its sum (the grand total) is shown, so never one hidden alone."""
    inner = range(len(values))
    if sum(hidden[i] for i in inner) == 1:
        candidates = sorted((values[i], i) for i in inner if not hidden[i])
        if candidates:
            hidden[candidates[0][1]] = True


def _first_bridge(hidden: Sequence[Sequence[bool]]) -> tuple[int, int] | None:
    """A hidden cell on no cycle of hidden cells, in row-major order, or None."""
    n_rows, n_cols = len(hidden), len(hidden[0])
    edges = [(r, c) for r in range(n_rows) for c in range(n_cols) if hidden[r][c]]
    for edge in edges:
        if not _connected_without(edges, edge, n_rows):
            return edge
    return None


def _connected_without(edges: list[tuple[int, int]], removed: tuple[int, int], n_rows: int) -> bool:
    # Row nodes are 0..n_rows-1, column nodes n_rows + c.
    adjacency: dict[int, list[int]] = {}
    for r, c in edges:
        if (r, c) == removed:
            continue
        adjacency.setdefault(r, []).append(n_rows + c)
        adjacency.setdefault(n_rows + c, []).append(r)
    start, goal = removed[0], n_rows + removed[1]
    seen, frontier = {start}, [start]
    while frontier:
        node = frontier.pop()
        if node == goal:
            return True
        for nxt in adjacency.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return False

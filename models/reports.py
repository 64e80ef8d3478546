"""The evaluation report as published: aggregates only, every shown cell at least 5 people.

Pure models (no I/O): the API returns them, the CLI renders them to CSV, charts and HTML.
A suppressed cell is `None` in `counts` and `values`; nothing about a single case is here.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field


class _Published(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReportTable(_Published):
    """A two-way table with its margins: the last row and column are the totals (`all`)."""

    key: str = Field(description="Stable name; the CSV file is `<key>.csv`.")
    title: str
    measure: str
    row_label: str
    col_label: str
    rows: list[str]
    cols: list[str]
    counts: list[list[int | None]] = Field(description="Cases per cell; null where suppressed.")
    value_label: str | None = None
    values: list[list[float | None]] | None = Field(
        default=None, description="The measure per cell (e.g. median days); null where hidden."
    )


class SurvivalCurve(_Published):
    group: str
    people: int
    returned: int
    days: list[int]
    share_returned: list[float] = Field(description="1 - Kaplan-Meier survival at each day")
    lower: list[float]
    upper: list[float]


class ReturnToWork(_Published):
    """Return to work (partial: any extent; full: 100 %) with open cases censored."""

    extent: str
    curves: list[SurvivalCurve]
    within_days: dict[int, float | None] = Field(
        description="Share returned within 90, 180 and 365 days (all cases); null if hidden."
    )


class Comparison(_Published):
    """Two routines compared: the difference b - a with a 95 % bootstrap interval."""

    key: str
    title: str
    measure: str
    group_a: str
    group_b: str
    people_a: int | None
    people_b: int | None
    value_a: float | None
    value_b: float | None
    difference: float | None
    lower: float | None
    upper: float | None
    note: str = ""


class DeadlineGap(_Published):
    rank: int
    unit: str
    kind: str
    cases: int
    missed_share: float = Field(description="Missed or late, as a share of the decided ones")


class StageStall(_Published):
    rank: int
    stage: str
    completed_stays: int | None
    median_days: float | None
    open_over_30_days: int | None = Field(
        description="Open cases in this stage for more than 30 days (null if under 5)"
    )


class UnitCoverage(_Published):
    unit: str
    managers: int
    trained_within_12_months: int
    apt_dialogues_12_months: int
    apt_participants_12_months: int


class Report(_Published):
    first: date
    last: date
    generated_at: datetime
    cases: int | None = Field(description="Cases opened in the period (null if under 5)")
    tables: list[ReportTable]
    return_to_work: list[ReturnToWork]
    comparisons: list[Comparison]
    deadline_gaps: list[DeadlineGap]
    stage_stalls: list[StageStall]
    coverage: list[UnitCoverage]
    notes: list[str]
    synthetic: bool = Field(
        default=False, description="Made up by `starter.py report --synthetic`, not real cases"
    )

    def table(self, key: str) -> ReportTable:
        return next(t for t in self.tables if t.key == key)

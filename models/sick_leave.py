"""Sick spells, sick periods and the Day-N arithmetic that dates every policy deadline.

Day 1 is the first day of a sick period and day N of an uninterrupted period falls on
start + (N - 1) days. A relapse continues the period: its healthy gap days are not counted,
so numbering goes on from the last sick day. Partial extents count as whole sick days.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, PositiveInt, model_validator

from models.policy import CalendarOffset, Policy

Extent = Literal[25, 50, 75, 100]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SickSpell(_Frozen):
    """An unbroken run of sick days at one extent; `end` is the last sick day, None if open."""

    start: date
    end: date | None = None
    extent: Extent = 100

    @model_validator(mode="after")
    def _end_not_before_start(self) -> Self:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"sick spell ends on {self.end}, before it starts on {self.start}")
        return self


class SickPeriod(_Frozen):
    """Spells joined by the relapse rule into one sick-pay period; build with group_into_periods."""

    spells: tuple[SickSpell, ...]

    @model_validator(mode="after")
    def _ordered_and_disjoint(self) -> Self:
        if not self.spells:
            raise ValueError("a sick period needs at least one spell")
        for earlier, later in zip(self.spells, self.spells[1:], strict=False):
            if earlier.end is None or later.start <= earlier.end:
                raise ValueError(
                    f"sick spells overlap: {earlier.start}..{earlier.end or 'open'} "
                    f"and {later.start}..{later.end or 'open'}"
                )
        return self

    @property
    def start(self) -> date:
        return self.spells[0].start

    @property
    def end(self) -> date | None:
        """The last sick day, or None while the period is ongoing."""
        return self.spells[-1].end


class DatedDeadline(_Frozen):
    """A policy rule or trigger placed on the calendar for one sick period."""

    kind: str
    sick_day: PositiveInt
    due: date
    description: str


def _days_inclusive(first: date, last: date) -> int:
    return (last - first).days + 1


def group_into_periods(spells: Iterable[SickSpell], relapse_gap_days: int) -> list[SickPeriod]:
    """Chain spells into periods: a spell starting at most `relapse_gap_days` after the
    previous spell's last day continues its period. Raises ValueError on overlapping spells."""
    periods: list[list[SickSpell]] = []
    for spell in sorted(spells, key=lambda s: s.start):
        previous = periods[-1][-1] if periods else None
        # Overlapping spells always land in the same chain, where SickPeriod rejects them.
        if previous is not None and (
            previous.end is None or (spell.start - previous.end).days <= relapse_gap_days
        ):
            periods[-1].append(spell)
        else:
            periods.append([spell])
    return [SickPeriod(spells=tuple(chain)) for chain in periods]


def date_of_sick_day(period: SickPeriod, n: int) -> date | None:
    """The date of sick day `n`, projected from the open last spell if the period is ongoing.

    None when a closed period ends before day n: that day never comes, so deadlines on it do
    not arise. When the last spell is extended or a relapse joins, date the new period again."""
    if n < 1:
        raise ValueError(f"sick days are numbered from 1, got {n}")
    counted = 0
    for spell in period.spells:
        if spell.end is None or n <= counted + _days_inclusive(spell.start, spell.end):
            return spell.start + timedelta(days=n - counted - 1)
        counted += _days_inclusive(spell.start, spell.end)
    return None


def sick_day_number(period: SickPeriod, on: date) -> int | None:
    """Which sick day `on` is, or None when it is not a sick day of this period."""
    counted = 0
    for spell in period.spells:
        if on < spell.start:
            return None
        if spell.end is None or on <= spell.end:
            return counted + _days_inclusive(spell.start, on)
        counted += _days_inclusive(spell.start, spell.end)
    return None


def sick_days_elapsed(period: SickPeriod, as_of: date) -> int:
    """How many sick days of the period fall on or before `as_of`."""
    counted = 0
    for spell in period.spells:
        if as_of < spell.start:
            break
        last = as_of if spell.end is None else min(spell.end, as_of)
        counted += _days_inclusive(spell.start, last)
    return counted


def expected_sick_days(period: SickPeriod, expected_end: date) -> int:
    """The period's length in sick days if its last spell lasts until `expected_end`."""
    current = period.spells[-1]
    if expected_end < current.start:
        raise ValueError(
            f"expected end {expected_end} is before the current spell's start {current.start}"
        )
    earlier = sick_days_elapsed(period, current.start - timedelta(days=1))
    return earlier + _days_inclusive(current.start, expected_end)


def count_occasions(periods: Iterable[SickPeriod], as_of: date, window: CalendarOffset) -> int:
    """Sick occasions in the rolling window ending on `as_of`: (as_of - window, as_of].

    An occasion is the start of a sick period, so a relapse is not a new occasion: it
    continues the same sick-pay period, and counting it would let one illness trip the
    repeated-absence trigger on its own."""
    window_start = window.before(as_of)
    return sum(1 for period in periods if window_start < period.start <= as_of)


def deadline_dates(
    period: SickPeriod,
    policy: Policy,
    expected_end: date | None,
    expectation_recorded_on: date | None = None,
) -> list[DatedDeadline]:
    """Every dated trigger and deadline the policy attaches to this period, by due date.

    A conditional rule (expected length) applies only when `expected_end` meets it. If that
    expectation was recorded after the rule's day, the deadline is due at once, i.e. on
    `expectation_recorded_on`. Days a closed period never reaches are left out."""
    expected = None if expected_end is None else expected_sick_days(period, expected_end)
    dated: list[DatedDeadline] = []
    for rule in (*policy.identification_triggers, *policy.deadlines):
        threshold = rule.expected_sick_days_at_least
        if threshold is not None and (expected is None or expected < threshold):
            continue
        due = date_of_sick_day(period, rule.sick_day)
        if due is None:
            continue
        if threshold is not None and expectation_recorded_on is not None:
            due = max(due, expectation_recorded_on)
        dated.append(
            DatedDeadline(
                kind=rule.kind, sick_day=rule.sick_day, due=due, description=rule.description
            )
        )
    return sorted(dated, key=lambda deadline: (deadline.due, deadline.sick_day))

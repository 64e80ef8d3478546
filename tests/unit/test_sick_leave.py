"""Tests of sick-day numbering, relapse grouping, occasion counting and deadline dating."""

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.policy import NORWAY, SWEDISH_DEFAULT, CalendarOffset
from models.sick_leave import (
    SickPeriod,
    SickSpell,
    count_occasions,
    date_of_sick_day,
    deadline_dates,
    group_into_periods,
    sick_day_number,
    sick_days_elapsed,
)

START = date(2025, 3, 3)  # a Monday
SE_GAP = SWEDISH_DEFAULT.relapse_gap_days
TWELVE_MONTHS = CalendarOffset(months=12)


def one_period(*spells: SickSpell, gap: int = SE_GAP) -> SickPeriod:
    periods = group_into_periods(spells, gap)
    assert len(periods) == 1
    return periods[0]


def due_by_kind(
    period: SickPeriod, expected_end: date | None, expectation_recorded_on: date | None = None
) -> dict[str, date]:
    dated = deadline_dates(period, SWEDISH_DEFAULT, expected_end, expectation_recorded_on)
    return {deadline.kind: deadline.due for deadline in dated}


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (1, date(2025, 3, 3)),
        (15, date(2025, 3, 17)),
        (21, date(2025, 3, 23)),
        (30, date(2025, 4, 1)),
    ],
)
def test_day_n_of_uninterrupted_period_falls_on_start_plus_n_minus_one(
    day: int, expected: date
) -> None:
    ongoing = one_period(SickSpell(start=START))
    closed = one_period(SickSpell(start=START, end=date(2025, 6, 1)))
    assert date_of_sick_day(ongoing, day) == expected
    assert date_of_sick_day(closed, day) == expected
    assert sick_day_number(ongoing, expected) == day


def test_swedish_deadlines_of_an_ongoing_period_fall_on_their_days() -> None:
    dated = deadline_dates(
        one_period(SickSpell(start=START)), SWEDISH_DEFAULT, expected_end=date(2025, 5, 1)
    )
    assert [(d.kind, d.sick_day, d.due) for d in dated] == [
        ("long_absence", 15, date(2025, 3, 17)),
        ("fk_sick_notice", 21, date(2025, 3, 23)),
        ("return_to_work_plan", 30, date(2025, 4, 1)),
        ("rehab_chain_day_90", 90, date(2025, 5, 31)),
        ("rehab_chain_day_180", 180, date(2025, 8, 29)),
        ("rehab_chain_day_365", 365, date(2026, 3, 2)),
        ("long_term", 366, date(2026, 3, 3)),
        ("rehab_chain_day_550", 550, date(2026, 9, 3)),
    ]


def test_return_to_work_plan_applies_only_when_sixty_sick_days_are_expected() -> None:
    period = one_period(SickSpell(start=START))
    day_60 = date(2025, 5, 1)
    assert "return_to_work_plan" in due_by_kind(period, expected_end=day_60)
    assert "return_to_work_plan" not in due_by_kind(period, expected_end=day_60 - timedelta(1))
    assert "return_to_work_plan" not in due_by_kind(period, expected_end=None)


def test_expected_length_counts_sick_days_not_relapse_gap_days() -> None:
    # Sixty calendar days from the start, but three of them are a healthy gap.
    period = one_period(
        SickSpell(start=START, end=date(2025, 3, 12)), SickSpell(start=date(2025, 3, 16))
    )
    assert "return_to_work_plan" not in due_by_kind(period, expected_end=date(2025, 5, 1))
    assert "return_to_work_plan" in due_by_kind(period, expected_end=date(2025, 5, 4))


def test_return_to_work_plan_is_due_at_once_when_the_expectation_comes_after_day_30() -> None:
    period = one_period(SickSpell(start=START))
    late = due_by_kind(
        period, expected_end=date(2025, 7, 1), expectation_recorded_on=date(2025, 4, 16)
    )
    early = due_by_kind(
        period, expected_end=date(2025, 7, 1), expectation_recorded_on=date(2025, 3, 10)
    )
    assert late["return_to_work_plan"] == date(2025, 4, 16)
    assert early["return_to_work_plan"] == date(2025, 4, 1)
    # Unconditional deadlines were known from day 1 and do not move.
    assert late["fk_sick_notice"] == date(2025, 3, 23)


def test_relapse_within_gap_continues_numbering_without_counting_gap_days() -> None:
    # Days 1-10 on 1-10 March, healthy 11-13 March, sick again from 14 March.
    period = one_period(
        SickSpell(start=date(2025, 3, 1), end=date(2025, 3, 10)),
        SickSpell(start=date(2025, 3, 14)),
    )
    assert sick_day_number(period, date(2025, 3, 14)) == 11
    assert date_of_sick_day(period, 21) == date(2025, 3, 24)  # uninterrupted: 21 March
    assert due_by_kind(period, expected_end=None)["fk_sick_notice"] == date(2025, 3, 24)


def test_relapse_joins_up_to_five_days_after_the_last_sick_day() -> None:
    first = SickSpell(start=date(2025, 3, 1), end=date(2025, 3, 10))
    fifth_day_after = SickSpell(start=date(2025, 3, 15))  # four healthy days between
    sixth_day_after = SickSpell(start=date(2025, 3, 16))  # five healthy days between
    assert len(group_into_periods([first, fifth_day_after], SE_GAP)) == 1
    assert len(group_into_periods([first, sixth_day_after], SE_GAP)) == 2


def test_gap_of_six_healthy_days_starts_a_new_period_numbered_from_one() -> None:
    periods = group_into_periods(
        [
            SickSpell(start=date(2025, 3, 1), end=date(2025, 3, 10)),
            SickSpell(start=date(2025, 3, 17)),
        ],
        SE_GAP,
    )
    assert [period.start for period in periods] == [date(2025, 3, 1), date(2025, 3, 17)]
    assert sick_day_number(periods[1], date(2025, 3, 17)) == 1


def test_norway_joins_absences_with_up_to_fifteen_healthy_days_between() -> None:
    first = SickSpell(start=date(2025, 3, 1), end=date(2025, 3, 10))
    gap = NORWAY.relapse_gap_days
    assert len(group_into_periods([first, SickSpell(start=date(2025, 3, 26))], gap)) == 1
    assert len(group_into_periods([first, SickSpell(start=date(2025, 3, 27))], gap)) == 2


def test_partial_extents_count_as_whole_sick_days() -> None:
    period = one_period(
        SickSpell(start=date(2025, 3, 1), end=date(2025, 3, 5), extent=100),
        SickSpell(start=date(2025, 3, 6), end=date(2025, 3, 20), extent=50),
        SickSpell(start=date(2025, 3, 21), extent=25),
    )
    assert date_of_sick_day(period, 21) == date(2025, 3, 21)
    assert sick_days_elapsed(period, date(2025, 3, 25)) == 25


def test_closed_period_has_no_date_beyond_its_last_sick_day() -> None:
    period = one_period(SickSpell(start=START, end=date(2025, 3, 12)))
    assert date_of_sick_day(period, 10) == date(2025, 3, 12)
    assert date_of_sick_day(period, 11) is None
    assert deadline_dates(period, SWEDISH_DEFAULT, expected_end=None) == []


def test_sick_day_number_is_none_on_days_that_are_not_sick_days() -> None:
    period = one_period(
        SickSpell(start=date(2025, 3, 1), end=date(2025, 3, 10)),
        SickSpell(start=date(2025, 3, 14), end=date(2025, 3, 20)),
    )
    assert sick_day_number(period, date(2025, 2, 28)) is None
    assert sick_day_number(period, date(2025, 3, 12)) is None
    assert sick_day_number(period, date(2025, 3, 21)) is None
    assert sick_day_number(period, date(2025, 3, 20)) == 17


def test_sick_days_elapsed_skips_gap_days_and_stops_at_as_of() -> None:
    period = one_period(
        SickSpell(start=date(2025, 3, 1), end=date(2025, 3, 10)),
        SickSpell(start=date(2025, 3, 14)),
    )
    assert sick_days_elapsed(period, date(2025, 2, 28)) == 0
    assert sick_days_elapsed(period, date(2025, 3, 5)) == 5
    assert sick_days_elapsed(period, date(2025, 3, 12)) == 10
    assert sick_days_elapsed(period, date(2025, 3, 16)) == 13


def test_sick_day_zero_is_rejected() -> None:
    with pytest.raises(ValueError, match="numbered from 1"):
        date_of_sick_day(one_period(SickSpell(start=START)), 0)


def test_spell_ending_before_it_starts_is_rejected() -> None:
    with pytest.raises(ValueError, match="ends on 2025-03-02, before it starts on 2025-03-03"):
        SickSpell(start=START, end=date(2025, 3, 2))


@pytest.mark.parametrize(
    "spells",
    [
        [SickSpell(start=START, end=date(2025, 3, 10)), SickSpell(start=date(2025, 3, 10))],
        [SickSpell(start=START), SickSpell(start=date(2025, 6, 1), end=date(2025, 6, 2))],
    ],
)
def test_overlapping_spells_are_rejected(spells: list[SickSpell]) -> None:
    with pytest.raises(ValueError, match="sick spells overlap"):
        group_into_periods(spells, SE_GAP)


def test_spells_are_grouped_in_date_order_whatever_the_input_order() -> None:
    later = SickSpell(start=date(2025, 3, 14))
    earlier = SickSpell(start=date(2025, 3, 1), end=date(2025, 3, 10))
    assert group_into_periods([later, earlier], SE_GAP) == [SickPeriod(spells=(earlier, later))]


def test_expected_end_before_the_current_spell_is_rejected() -> None:
    with pytest.raises(ValueError, match="before the current spell's start"):
        deadline_dates(
            one_period(SickSpell(start=START)), SWEDISH_DEFAULT, expected_end=date(2025, 3, 2)
        )


def test_norway_deadlines_fall_on_the_last_day_of_each_nav_week() -> None:
    period = one_period(SickSpell(start=START), gap=NORWAY.relapse_gap_days)
    dated = deadline_dates(period, NORWAY, expected_end=None)
    due = {deadline.kind: deadline.due for deadline in dated}
    assert due == {
        "long_absence": date(2025, 3, 19),
        "follow_up_plan": date(2025, 3, 30),
        "dialogue_meeting_1": date(2025, 4, 20),
        "activity_requirement": date(2025, 4, 27),
        "dialogue_meeting_2": date(2025, 8, 31),
        "benefit_end": date(2026, 3, 1),
        "long_term": date(2026, 3, 3),
    }
    # Sick from a Monday, every "by week W" deadline is the Sunday ending week W.
    nav = [d.due for d in dated if d.kind not in {"long_absence", "long_term"}]
    assert {day.strftime("%A") for day in nav} == {"Sunday"}


def periods_starting_on(*starts: date) -> list[SickPeriod]:
    return group_into_periods([SickSpell(start=s, end=s) for s in starts], SE_GAP)


def test_sixth_occasion_within_twelve_months_reaches_the_threshold() -> None:
    periods = periods_starting_on(
        date(2024, 3, 10),
        date(2024, 5, 10),
        date(2024, 7, 10),
        date(2024, 9, 10),
        date(2024, 11, 10),
        date(2025, 3, 9),
    )
    assert count_occasions(periods, date(2025, 3, 8), TWELVE_MONTHS) == 5
    assert count_occasions(periods, date(2025, 3, 9), TWELVE_MONTHS) == 6


def test_occasion_exactly_twelve_months_old_has_left_the_window() -> None:
    periods = periods_starting_on(
        date(2024, 3, 10),
        date(2024, 5, 10),
        date(2024, 7, 10),
        date(2024, 9, 10),
        date(2024, 11, 10),
        date(2025, 3, 10),
    )
    assert count_occasions(periods, date(2025, 3, 10), TWELVE_MONTHS) == 5


def test_six_occasions_spread_over_thirteen_months_never_reach_six() -> None:
    periods = periods_starting_on(
        date(2024, 1, 15),
        date(2024, 4, 1),
        date(2024, 6, 15),
        date(2024, 9, 1),
        date(2024, 11, 15),
        date(2025, 2, 15),
    )
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(600)]
    counts = [count_occasions(periods, day, TWELVE_MONTHS) for day in days]
    assert max(counts) == 5


def test_relapse_is_not_a_new_occasion() -> None:
    periods = group_into_periods(
        [
            SickSpell(start=date(2025, 1, 6), end=date(2025, 1, 7)),
            SickSpell(start=date(2025, 1, 10), end=date(2025, 1, 10)),  # relapse
            SickSpell(start=date(2025, 2, 3), end=date(2025, 2, 4)),
        ],
        SE_GAP,
    )
    assert count_occasions(periods, date(2025, 3, 1), TWELVE_MONTHS) == 2


@st.composite
def relapse_chains(draw: st.DrawFn) -> tuple[list[SickSpell], list[date]]:
    """Spells joined by relapses, and the calendar days on which the person is sick."""
    cursor = draw(st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 1, 1)))
    lengths = draw(st.lists(st.integers(1, 40), min_size=1, max_size=6))
    ongoing = draw(st.booleans())
    spells: list[SickSpell] = []
    sick_dates: list[date] = []
    for index, length in enumerate(lengths):
        end = cursor + timedelta(days=length - 1)
        is_last = index == len(lengths) - 1
        extent = draw(st.sampled_from([25, 50, 75, 100]))
        spells.append(
            SickSpell(start=cursor, end=None if is_last and ongoing else end, extent=extent)
        )
        sick_dates += [cursor + timedelta(days=i) for i in range(length)]
        cursor = end + timedelta(days=draw(st.integers(1, SE_GAP)))
    return spells, sick_dates


@given(relapse_chains())
def test_day_numbering_is_strictly_increasing_and_gap_free_across_relapses(
    chain: tuple[list[SickSpell], list[date]],
) -> None:
    spells, sick_dates = chain
    period = one_period(*spells)
    numbered = [date_of_sick_day(period, n) for n in range(1, len(sick_dates) + 1)]
    # Day n is the n-th calendar day on which the person is sick: no gap day gets a number.
    assert numbered == sick_dates
    for n, day in enumerate(sick_dates, start=1):
        assert sick_day_number(period, day) == n
        assert sick_days_elapsed(period, day) == n


@given(
    st.lists(st.integers(1, 3 * SE_GAP), max_size=8),
    st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 1, 1)),
)
def test_a_new_period_starts_exactly_where_the_gap_exceeds_the_relapse_rule(
    distances: list[int], first: date
) -> None:
    # Two-day spells; each distance is from one spell's last day to the next spell's first.
    spells = [SickSpell(start=first, end=first + timedelta(days=1))]
    for distance in distances:
        start = spells[-1].start + timedelta(days=1 + distance)
        spells.append(SickSpell(start=start, end=start + timedelta(days=1)))
    periods = group_into_periods(spells, SE_GAP)
    assert len(periods) == 1 + sum(1 for d in distances if d > SE_GAP)
    assert sum(len(period.spells) for period in periods) == len(spells)

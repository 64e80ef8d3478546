"""What the report's figures beyond its tables could give away: group sizes that complete a
published total, and the synthetic report's own guarantees."""

from __future__ import annotations

from datetime import date

from evaluation.report import build_report
from evaluation.synthetic import synthetic_casework
from evaluation.tables import share_shown

FIRST, LAST, CHANGE = date(2025, 6, 1), date(2026, 11, 30), date(2026, 6, 1)


def test_survival_curves_by_sex_are_all_shown_or_none() -> None:
    cases, programme = synthetic_casework(600, FIRST, LAST, CHANGE)
    men = [c for c in cases if c.sex == "M"]
    few_men = [c for c in cases if c.sex != "M"] + men[:3]
    everyone = build_report(cases, programme, first=FIRST, last=LAST, today=LAST)
    assert {c.group for r in everyone.return_to_work for c in r.curves} == {"all", "women", "men"}
    # Three men and the total would give the men's number: then no group is shown at all.
    report = build_report(few_men, programme, first=FIRST, last=LAST, today=LAST)
    assert {c.group for r in report.return_to_work for c in r.curves} == {"all"}


def test_a_comparison_shows_both_group_sizes_or_neither() -> None:
    cases, programme = synthetic_casework(600, FIRST, LAST, CHANGE)
    # A change date so late that only a handful of cases come after it.
    late = date(2026, 11, 20)
    report = build_report(cases, programme, first=FIRST, last=LAST, today=LAST, change_on=late)
    for comparison in report.comparisons:
        sizes = (comparison.people_a, comparison.people_b)
        assert sizes == (None, None) or min(s or 0 for s in sizes) >= 5, comparison.key
    assert any(c.people_a is None for c in report.comparisons)


def test_a_share_hides_a_small_part_or_a_small_rest() -> None:
    assert share_shown(0, 12) and share_shown(12, 12) and share_shown(6, 12)
    assert not share_shown(2, 12) and not share_shown(10, 12) and not share_shown(3, 4)


def test_the_synthetic_report_shows_no_cell_under_five() -> None:
    cases, programme = synthetic_casework(1000, FIRST, LAST, CHANGE)
    report = build_report(cases, programme, first=FIRST, last=LAST, today=LAST, change_on=CHANGE)
    for table in report.tables:
        assert all(c is None or c >= 5 for row in table.counts for c in row), table.key
    days = next(c for c in report.comparisons if c.key == "before_after_days_to_joint_meeting")
    # The synthetic biweekly routine brings the meeting forward: the interval says so.
    assert days.upper is not None and days.upper < 0

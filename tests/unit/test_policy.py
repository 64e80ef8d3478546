"""Tests of the policy models, the shipped policies and the policy registry."""

from datetime import date

import pytest
from pydantic import ValidationError

from models.policy import (
    NORWAY,
    POLICIES,
    SWEDISH_DEFAULT,
    CalendarOffset,
    DeadlineRule,
    Policy,
    UnknownPolicyError,
    get_policy,
)


def test_swedish_default_carries_the_design_table() -> None:
    p = SWEDISH_DEFAULT
    assert (p.policy_id, p.version, p.jurisdiction) == ("se-default", 1, "SE")
    assert p.repeated_absence_occasions == 6
    assert p.repeated_absence_window == CalendarOffset(months=12)
    assert p.long_absence_trigger_day == 15
    assert p.long_term_trigger_day == 366
    assert p.employer_sick_pay_days == 14
    assert p.medical_certificate_from_day == 8
    assert p.relapse_gap_days == 5
    assert p.joint_meeting_interval_days == 14
    assert p.retention_after_closure == CalendarOffset(months=24)
    rules = {rule.kind: rule for rule in p.deadlines}
    assert rules["fk_sick_notice"].sick_day == 21
    assert rules["return_to_work_plan"].sick_day == 30
    assert rules["return_to_work_plan"].expected_sick_days_at_least == 60
    chain = {kind: rule.sick_day for kind, rule in rules.items() if kind.startswith("rehab")}
    assert chain == {
        "rehab_chain_day_90": 90,
        "rehab_chain_day_180": 180,
        "rehab_chain_day_365": 365,
        "rehab_chain_day_550": 550,
    }


def test_rehab_chain_checkpoints_name_the_assessment_that_applies() -> None:
    rules = {rule.kind: rule.description for rule in SWEDISH_DEFAULT.deadlines}
    assert "own-job" in rules["rehab_chain_day_90"]
    assert "any job at the employer" in rules["rehab_chain_day_90"]
    assert "normal labour market" in rules["rehab_chain_day_180"]
    assert "overriding reasons" in rules["rehab_chain_day_365"]


def test_norway_deadlines_are_the_nav_weeks_in_sick_days() -> None:
    assert {rule.kind: rule.sick_day for rule in NORWAY.deadlines} == {
        "follow_up_plan": 28,
        "dialogue_meeting_1": 49,
        "activity_requirement": 56,
        "dialogue_meeting_2": 182,
        "benefit_end": 364,
    }
    assert NORWAY.jurisdiction == "NO"
    assert NORWAY.employer_sick_pay_days == 16


def test_follow_ups_after_return_fall_on_calendar_dates() -> None:
    returned = date(2025, 1, 31)
    assert [offset.after(returned) for offset in SWEDISH_DEFAULT.follow_ups_after_return] == [
        date(2025, 2, 14),
        date(2025, 4, 30),  # April has no 31st: clamped to month end
        date(2025, 7, 31),
    ]


@pytest.mark.parametrize(
    ("anchor", "offset", "after", "before"),
    [
        (date(2024, 1, 31), CalendarOffset(months=1), date(2024, 2, 29), date(2023, 12, 31)),
        (date(2024, 2, 29), CalendarOffset(months=12), date(2025, 2, 28), date(2023, 2, 28)),
        (
            date(2024, 12, 15),
            CalendarOffset(months=1, days=20),
            date(2025, 2, 4),
            date(2024, 10, 26),
        ),
        (date(2025, 3, 1), CalendarOffset(days=14), date(2025, 3, 15), date(2025, 2, 15)),
    ],
)
def test_calendar_offset_moves_by_months_then_days(
    anchor: date, offset: CalendarOffset, after: date, before: date
) -> None:
    assert offset.after(anchor) == after
    assert offset.before(anchor) == before


def test_zero_calendar_offset_is_rejected() -> None:
    with pytest.raises(ValidationError, match="at least one day or one month"):
        CalendarOffset()


def test_policy_is_immutable() -> None:
    with pytest.raises(ValidationError, match="frozen"):
        SWEDISH_DEFAULT.relapse_gap_days = 7  # type: ignore[misc]


def test_policy_survives_a_json_round_trip_as_a_workflow_snapshot() -> None:
    for policy in POLICIES.values():
        assert Policy.model_validate_json(policy.model_dump_json()) == policy


def test_duplicate_deadline_kinds_are_rejected() -> None:
    rule = DeadlineRule(kind="fk_sick_notice", sick_day=21, description="Notice")
    data = SWEDISH_DEFAULT.model_dump() | {"deadlines": [rule.model_dump(), rule.model_dump()]}
    with pytest.raises(ValidationError, match="deadline kinds must be unique"):
        Policy.model_validate(data)


def test_deadline_kind_may_not_reuse_a_trigger_kind() -> None:
    rule = DeadlineRule(kind="long_absence", sick_day=15, description="Identification")
    data = SWEDISH_DEFAULT.model_dump() | {"deadlines": [rule.model_dump()]}
    with pytest.raises(ValidationError, match="deadline kinds must be unique"):
        Policy.model_validate(data)


def test_escalation_before_reminder_is_rejected() -> None:
    data = SWEDISH_DEFAULT.model_dump() | {
        "overdue_reminder_after_days": 7,
        "overdue_escalation_after_days": 7,
    }
    with pytest.raises(ValidationError, match="escalation must come after"):
        Policy.model_validate(data)


def test_get_policy_returns_latest_version_by_default() -> None:
    assert get_policy("se-default") is SWEDISH_DEFAULT
    assert get_policy("no-nav", version=1) is NORWAY


def test_unknown_policy_id_names_the_known_ids() -> None:
    with pytest.raises(UnknownPolicyError, match=r"unknown policy id 'dk-default'.*se-default"):
        get_policy("dk-default")


def test_unknown_policy_version_names_the_known_versions() -> None:
    with pytest.raises(UnknownPolicyError, match=r"no version 9; known versions: 1"):
        get_policy("se-default", version=9)

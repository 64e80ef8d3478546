"""Plausible date windows: their edges, the field paths they name, and that no date escapes."""

from __future__ import annotations

import types
import typing
from datetime import UTC, date, datetime

import pytest
from pydantic import BaseModel

from models.absence import AbsenceEventIn
from models.actions import AgreedNextStep, BookJointMeeting, SetSickLeave
from models.case.actions import ACTIONS, ActionDeclaration
from models.plausible_dates import DateOfKind, ImplausibleDate, implausible_dates
from models.policy import NORWAY, PLAUSIBLE_DATES, SWEDISH_DEFAULT
from models.screening import SubmitMeetingOutcome

TODAY = date(2026, 11, 30)


def test_a_sick_leave_start_is_taken_back_to_five_years_and_a_month_ahead() -> None:
    window = PLAUSIBLE_DATES.sick_leave_start

    assert window.contains(date(2021, 11, 30), TODAY)
    assert not window.contains(date(2021, 11, 29), TODAY)
    assert window.contains(date(2026, 12, 31), TODAY)
    assert not window.contains(date(2027, 1, 1), TODAY)
    assert window.reason == "must lie between 60 months before today and 31 days after today"


def test_a_recorded_fact_may_not_lie_in_the_future() -> None:
    window = PLAUSIBLE_DATES.fact_recorded

    assert window.contains(TODAY, TODAY)
    assert not window.contains(date(2026, 12, 1), TODAY)
    assert window.reason == "must lie between 24 months before today and today"


def test_both_policies_carry_the_windows_with_a_rationale_for_each() -> None:
    assert SWEDISH_DEFAULT.date_windows == NORWAY.date_windows == PLAUSIBLE_DATES
    for name in type(PLAUSIBLE_DATES).model_fields:
        assert PLAUSIBLE_DATES.of(name).rationale  # type: ignore[arg-type]


def test_nested_and_listed_dates_are_named_by_their_path_and_never_by_value() -> None:
    outcome = SubmitMeetingOutcome(
        attended=("coordinator",),
        held_by="coordinator",
        reinforced_support=False,
        next_steps=(
            AgreedNextStep(track="work_oriented", kind="a", owner="manager", due_on=TODAY),
            AgreedNextStep(
                track="work_oriented", kind="b", owner="manager", due_on=date(9999, 1, 1)
            ),
        ),
    )

    found = implausible_dates(outcome, PLAUSIBLE_DATES, TODAY)

    assert [f.field for f in found] == ["next_steps.1.due_on"]
    assert "9999" not in repr(found)


def test_instants_are_read_as_dates_in_stockholm() -> None:
    # 23:30 UTC on the window's last day is already the next day in Stockholm.
    last = PLAUSIBLE_DATES.meeting.latest(TODAY)
    late = datetime(last.year, last.month, last.day, 23, 30, tzinfo=UTC)
    booking = BookJointMeeting(starts_at=late.replace(hour=22), ends_at=late)

    assert implausible_dates(booking, PLAUSIBLE_DATES, TODAY) == [
        ImplausibleDate("ends_at", PLAUSIBLE_DATES.meeting.reason)
    ]


def test_an_absence_event_names_each_implausible_date() -> None:
    event = AbsenceEventIn(
        event_id="e",
        employee_ref="19811218-9876",
        unit_code="U",
        kind="sick",
        start=date(1, 1, 1),
        end=date(1, 1, 2),
    )

    assert [f.field for f in implausible_dates(event, PLAUSIBLE_DATES, TODAY)] == [
        "start",
        "end",
    ]
    assert SetSickLeave(start=TODAY).start == TODAY  # the marker changes nothing else


def _unmarked_dates(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Date fields that carry no window, following nested models (the API's bodies)."""
    missing = []
    for name, info in model.model_fields.items():
        marked = any(isinstance(m, DateOfKind) for m in info.metadata)
        for arg in _flatten(info.annotation):
            if arg in (date, datetime) and not marked:
                missing.append(f"{prefix}{name}")
            elif isinstance(arg, type) and issubclass(arg, BaseModel):
                missing += _unmarked_dates(arg, f"{prefix}{name}.")
    return missing


def _flatten(annotation: object) -> list[object]:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Annotated:
        return _flatten(args[0])
    if args and (typing.get_origin(annotation) in (tuple, list, typing.Union, types.UnionType)):
        return [a for arg in args for a in _flatten(arg)]
    return [annotation]


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.name)
def test_every_date_an_action_accepts_has_a_window(action: ActionDeclaration) -> None:
    # The HTTP body (answers for scored actions) and the update input the workflow takes.
    assert _unmarked_dates(action.body) == []
    assert _unmarked_dates(action.input_model) == []


def test_every_date_of_an_absence_event_has_a_window() -> None:
    assert _unmarked_dates(AbsenceEventIn) == []

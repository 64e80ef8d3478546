"""The case core's rules, without a server: every refusal of today's validators, and what
each action changes and asks the shell to do (models/case/)."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from models.actions import (
    AddIntervention,
    BookJointMeeting,
    CancelIntervention,
    CloseCase,
    CompleteIntervention,
    PlannedIntervention,
    RecordConsent,
    RecordDeadlineMet,
    RecordFollowUpMeeting,
    RecordMeetingOutcome,
    RecordReturnToWorkStep,
    RecordScreeningResult,
    ReportSickLeave,
    SetPlan,
    SetSickLeave,
)
from models.case import (
    CaseChange,
    CaseInput,
    CaseOutcome,
    CaseProjection,
    CaseTrigger,
    ConsentParty,
    InformationRequestStatus,
    InterventionStatus,
    MeetingBooking,
    Stage,
    Track,
)
from models.case.effects import AskTeam, FinishChild, Record, ReleaseSeat, StartChild
from models.case.rules import CaseCore, initial_state
from models.deadlines import DeadlineStatus, local_date
from models.information_requests import (
    CancelInformationRequest,
    RecordInformationResponse,
    RequestInformation,
)
from models.instruments import ScreeningScore
from models.meetings import CancelMeeting, ChooseFhv, RecordNoShow, RescheduleMeeting, TeamBooking

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
TODAY = local_date(NOW)
SICK_START = TODAY - timedelta(days=20)


def core(stage: Stage = Stage.IDENTIFIED, **state: Any) -> CaseCore:
    input = CaseInput(
        case_id=uuid.uuid4(),
        employee_pseudonym=uuid.uuid4(),
        unit_code="U1",
        trigger=CaseTrigger.LONG_ABSENCE,
        opened_at=NOW - timedelta(days=5),
        sick_start=SICK_START,
    )
    s = initial_state(input)
    s.stage = stage
    for key, value in state.items():
        setattr(s, key, value)
    counter = itertools.count(1)
    return CaseCore(input, s, "case-test", lambda: uuid.UUID(int=next(counter)))


def meeting(starts_at: datetime = NOW - timedelta(hours=1)) -> MeetingBooking:
    return MeetingBooking(
        meeting_id=uuid.uuid4(), starts_at=starts_at, ends_at=starts_at + timedelta(hours=1)
    )


def planned(due_on: date = TODAY + timedelta(days=10), **kw: Any) -> PlannedIntervention:
    return PlannedIntervention(
        track=Track.WORK_ORIENTED, kind="work_training", owner="manager", due_on=due_on, **kw
    )


def with_intervention(
    c: CaseCore, status: InterventionStatus = InterventionStatus.OPEN
) -> uuid.UUID:
    (iv,) = c.add_interventions([planned()])
    iv.status = status
    return iv.intervention_id


def with_request(
    c: CaseCore, status: InformationRequestStatus = InformationRequestStatus.OPEN
) -> uuid.UUID:
    c.state.consents[ConsentParty.HEALTHCARE] = True
    c.apply_request_information(
        RequestInformation(party=ConsentParty.HEALTHCARE, due_on=TODAY + timedelta(days=5)), NOW
    )
    request = c.state.information_requests[-1]
    request.status = status
    return request.request_id


def returned(c: CaseCore, on: date = TODAY - timedelta(days=3)) -> CaseCore:
    c.state.stage = Stage.RETURN_TO_WORK
    c.apply_record_return_to_work_step(RecordReturnToWorkStep(extent=100, from_date=on), NOW)
    return c


VIOLENCE = ScreeningScore(
    instrument_id="violence_exposure",
    instrument_version=1,
    total=1,
    band="disclosed",
    risk_level="high",
    disclosure=True,
    protected=True,
    suggests_reinforced_support=False,
)


def _long_ago() -> CaseCore:
    """A case whose full return was 300 days ago: its follow-up window is over."""
    c = core()
    c.state.sick_spells = [
        c.state.sick_spells[0].model_copy(update={"start": TODAY - timedelta(days=400)})
    ]
    return returned(c, TODAY - timedelta(days=300))


# (rule, the case, the action, a word of the reason)
Refusal = tuple[str, Callable[[], CaseCore], Any, str | None]
REFUSALS: list[Refusal] = [
    ("record_consent", lambda: core(Stage.CLOSED), RecordConsent(party="fk", given=True), "closed"),
    (
        "record_consent",
        lambda: core(consents={ConsentParty.FK: True}),
        RecordConsent(party="fk", given=True),
        "already given",
    ),
    ("record_consent", lambda: core(), RecordConsent(party="fk", given=False), None),
    (
        "book_joint_meeting",
        lambda: core(Stage.SCREENING),
        BookJointMeeting(
            starts_at=NOW + timedelta(days=1), ends_at=NOW + timedelta(days=1, hours=1)
        ),
        "only in stage identified, joint_meeting",
    ),
    (
        "book_joint_meeting",
        lambda: core(),
        BookJointMeeting(starts_at=NOW - timedelta(days=15), ends_at=NOW - timedelta(days=14)),
        "at most 14 days",
    ),
    (
        "book_joint_meeting",
        lambda: core(),
        BookJointMeeting(
            starts_at=NOW + timedelta(days=1),
            ends_at=NOW + timedelta(days=1, hours=1),
            invite=("fk",),
        ),
        "only with the employee's consent",
    ),
    (
        "record_meeting_outcome",
        lambda: core(Stage.JOINT_MEETING),
        RecordMeetingOutcome(attended=("employee",), reinforced_support=False),
        "no joint meeting is booked",
    ),
    (
        "record_meeting_outcome",
        lambda: core(Stage.JOINT_MEETING, meeting=meeting(NOW + timedelta(hours=1))),
        RecordMeetingOutcome(attended=("employee",), reinforced_support=False),
        "has not started yet",
    ),
    (
        "record_meeting_outcome",
        lambda: core(Stage.JOINT_MEETING, meeting=meeting(), meeting_held=True),
        RecordMeetingOutcome(attended=("employee",), reinforced_support=False),
        "already recorded",
    ),
    (
        "record_meeting_outcome",
        lambda: core(Stage.JOINT_MEETING, meeting=meeting()),
        RecordMeetingOutcome(attended=("employee", "fk"), reinforced_support=False),
        "fk cannot have attended",
    ),
    (
        "record_meeting_outcome",
        lambda: core(Stage.JOINT_MEETING, meeting=meeting()),
        RecordMeetingOutcome(attended=("employee",), held_by="manager", reinforced_support=False),
        "must have attended",
    ),
    (
        "record_meeting_outcome",
        lambda: core(Stage.JOINT_MEETING, meeting=meeting()),
        RecordMeetingOutcome(
            attended=("manager",), reinforced_support=False, violence_screening=VIOLENCE
        ),
        "only of an employee who attended",
    ),
    (
        "record_meeting_outcome",
        lambda: core(Stage.JOINT_MEETING, meeting=meeting()),
        RecordMeetingOutcome(
            attended=("employee",),
            reinforced_support=False,
            violence_screening=VIOLENCE.model_copy(update={"protected": False}),
        ),
        "must be a protected set",
    ),
    (
        "record_follow_up_meeting",
        lambda: core(Stage.PLANNING),
        RecordFollowUpMeeting(
            starts_at=NOW - timedelta(hours=1), ends_at=NOW, attended=("employee",), held_by="fhv"
        ),
        "only in stage interventions",
    ),
    (
        "record_follow_up_meeting",
        lambda: core(Stage.INTERVENTIONS),
        RecordFollowUpMeeting(
            starts_at=NOW + timedelta(hours=1),
            ends_at=NOW + timedelta(hours=2),
            attended=("employee",),
            held_by="coordinator",
        ),
        "once it has started",
    ),
    (
        "record_screening_result",
        lambda: core(Stage.PLANNING),
        RecordScreeningResult(scores=(VIOLENCE,)),
        "only in stage screening",
    ),
    (
        "record_screening_result",
        lambda: core(Stage.SCREENING),
        RecordScreeningResult(scores=(VIOLENCE, VIOLENCE)),
        "scored once",
    ),
    ("set_plan", lambda: core(Stage.SCREENING), SetPlan(), "only in stage planning"),
    (
        "set_plan",
        lambda: core(Stage.PLANNING),
        SetPlan(interventions=(planned(TODAY - timedelta(days=1)),)),
        "cannot lie in the past",
    ),
    (
        "set_plan",
        lambda: core(Stage.PLANNING),
        SetPlan(adopt_next_steps=(uuid.UUID(int=99),)),
        "no agreed next step",
    ),
    (
        "set_plan",
        lambda: core(Stage.PLANNING),
        SetPlan(
            interventions=(
                planned(intervention_id=uuid.UUID(int=7)),
                planned(intervention_id=uuid.UUID(int=7)),
            )
        ),
        "listed twice",
    ),
    (
        "add_intervention",
        lambda: core(Stage.PLANNING),
        AddIntervention(intervention=planned()),
        "only in stage interventions",
    ),
    (
        "complete_intervention",
        lambda: core(Stage.INTERVENTIONS),
        CompleteIntervention(intervention_id=uuid.UUID(int=5), outcome="achieved"),
        "no intervention",
    ),
    (
        "cancel_intervention",
        lambda: core(Stage.CLOSED),
        CancelIntervention(intervention_id=uuid.UUID(int=5)),
        "closed",
    ),
    (
        "request_information",
        lambda: core(Stage.IDENTIFIED),
        RequestInformation(party="healthcare", due_on=TODAY),
        "only in stage joint_meeting",
    ),
    (
        "request_information",
        lambda: core(Stage.SCREENING),
        RequestInformation(party="healthcare", due_on=TODAY),
        "only with the employee's consent",
    ),
    (
        "request_information",
        lambda: core(Stage.SCREENING, consents={ConsentParty.HEALTHCARE: False}),
        RequestInformation(party="healthcare", due_on=TODAY),
        "withdrawn consent",
    ),
    (
        "request_information",
        lambda: core(Stage.SCREENING, consents={ConsentParty.HEALTHCARE: True}),
        RequestInformation(party="healthcare", due_on=TODAY - timedelta(days=1)),
        "cannot lie in the past",
    ),
    (
        "record_information_response",
        lambda: core(Stage.SCREENING),
        RecordInformationResponse(request_id=uuid.UUID(int=5)),
        "no information request",
    ),
    (
        "cancel_information_request",
        lambda: core(Stage.CLOSED),
        CancelInformationRequest(request_id=uuid.UUID(int=5)),
        "closed",
    ),
    (
        "record_return_to_work_step",
        lambda: core(Stage.PLANNING),
        RecordReturnToWorkStep(extent=50, from_date=TODAY),
        "only in stage interventions",
    ),
    (
        "record_return_to_work_step",
        lambda: core(Stage.INTERVENTIONS),
        RecordReturnToWorkStep(extent=50, from_date=TODAY + timedelta(days=1)),
        "once it has begun",
    ),
    (
        "record_return_to_work_step",
        lambda: core(Stage.INTERVENTIONS),
        RecordReturnToWorkStep(extent=50, from_date=SICK_START),
        "after the sick leave started",
    ),
    (
        "record_return_to_work_step",
        lambda: returned(core()),
        RecordReturnToWorkStep(extent=100, from_date=TODAY),
        "already recorded",
    ),
    (
        "report_sick_leave",
        lambda: core(Stage.INTERVENTIONS),
        ReportSickLeave(start=TODAY),
        "has not returned to work in full",
    ),
    (
        "report_sick_leave",
        lambda: returned(core()),
        ReportSickLeave(start=TODAY - timedelta(days=4)),
        "before the return to work",
    ),
    (
        "report_sick_leave",
        lambda: returned(core()),
        ReportSickLeave(start=TODAY + timedelta(days=1)),
        "once it has begun",
    ),
    (
        "report_sick_leave",
        _long_ago,
        ReportSickLeave(start=TODAY),
        "follow-up window ended",
    ),
    ("set_sick_leave", lambda: returned(core()), SetSickLeave(start=TODAY), "has returned to work"),
    (
        "set_sick_leave",
        lambda: core(sick_spells=[]),
        SetSickLeave(expected_end=TODAY),
        "give its start",
    ),
    (
        "set_sick_leave",
        lambda: core(),
        SetSickLeave(start=TODAY + timedelta(days=1)),
        "once it has begun",
    ),
    ("set_sick_leave", lambda: core(), SetSickLeave(start=SICK_START), "nothing changes"),
    (
        "set_sick_leave",
        lambda: core(),
        SetSickLeave(expected_end=SICK_START - timedelta(days=1)),
        "before the sick leave's start",
    ),
    (
        "record_deadline_met",
        lambda: core(),
        RecordDeadlineMet(kind="dialogue_meeting_1"),
        "no deadline",
    ),
    (
        "record_deadline_met",
        lambda: core(),
        RecordDeadlineMet(kind="fk_sick_notice", met_on=TODAY + timedelta(days=1)),
        "a day that has come",
    ),
    (
        "close_case",
        lambda: core(Stage.INTERVENTIONS),
        CloseCase(outcome=CaseOutcome.RETURNED_SAME_JOB),
        "needs the full return",
    ),
    ("close_case", lambda: core(Stage.CLOSED), CloseCase(outcome=CaseOutcome.OTHER), "closed"),
    (
        "reschedule_meeting",
        lambda: core(Stage.JOINT_MEETING, meeting=meeting(NOW + timedelta(days=1))),
        RescheduleMeeting(),
        "booked by hand",
    ),
    (
        "reschedule_meeting",
        lambda: core(
            Stage.JOINT_MEETING,
            meeting=meeting(),
            team_booking=TeamBooking(
                team_code="T", request_id=uuid.uuid4(), requested_at=NOW, assigned=True
            ),
        ),
        RescheduleMeeting(),
        "has started",
    ),
    (
        "cancel_meeting",
        lambda: core(Stage.JOINT_MEETING),
        CancelMeeting(),
        "no joint meeting is booked",
    ),
    (
        "record_no_show",
        lambda: core(Stage.JOINT_MEETING, meeting=meeting(NOW + timedelta(hours=1))),
        RecordNoShow(),
        "has not started yet",
    ),
    ("choose_fhv", lambda: core(), ChooseFhv(chosen=False), "already not chosen"),
    ("choose_fhv", lambda: core(), ChooseFhv(chosen=True), "only with the employee's consent"),
]


@pytest.mark.parametrize(
    ("rule", "make", "action", "reason"), REFUSALS, ids=lambda v: v if isinstance(v, str) else ""
)
def test_an_action_that_does_not_fit_is_refused_with_its_reason_and_changes_nothing(
    rule: str, make: Callable[[], CaseCore], action: Any, reason: str | None
) -> None:
    c = make()
    before = c.state.model_copy(deep=True)
    refused = c.check(rule, action, NOW)
    if reason is None:
        assert refused is None
    else:
        assert refused is not None and reason in refused
    assert c.state == before


def test_a_closed_intervention_or_request_cannot_be_finished_twice() -> None:
    c = core(Stage.INTERVENTIONS)
    done = with_intervention(c, InterventionStatus.COMPLETED)
    assert "already completed" in (
        c.check(
            "complete_intervention",
            CompleteIntervention(intervention_id=done, outcome="achieved"),
            NOW,
        )
        or ""
    )
    answered = with_request(c, InformationRequestStatus.ANSWERED)
    assert "already answered" in (
        c.check("cancel_information_request", CancelInformationRequest(request_id=answered), NOW)
        or ""
    )


def test_withdrawing_consent_ends_the_partys_open_requests() -> None:
    c = core(Stage.SCREENING)
    request_id = with_request(c)
    effects, _ = c.apply("record_consent", RecordConsent(party="healthcare", given=False), NOW)
    assert [type(e) for e in effects] == [Record, FinishChild]
    assert c.state.information_requests[0].status == InformationRequestStatus.CANCELLED
    assert isinstance(effects[0], Record)
    assert effects[0].change.detail["information_requests_cancelled"] == [str(request_id)]


def test_a_meeting_registered_after_it_took_place_can_be_recorded_at_once() -> None:
    c = core()
    back = BookJointMeeting(
        starts_at=NOW - timedelta(days=3), ends_at=NOW - timedelta(days=3, hours=-1)
    )
    assert c.check("book_joint_meeting", back, NOW) is None
    effects, _ = c.apply("book_joint_meeting", back, NOW)
    assert isinstance(effects[0], Record) and effects[0].change.notifications == ()
    outcome = RecordMeetingOutcome(attended=("employee",), reinforced_support=False)
    assert c.check("record_meeting_outcome", outcome, NOW) is None
    c.apply("record_meeting_outcome", outcome, NOW)
    assert c.state.stage == Stage.SCREENING


def test_a_future_booking_invites_and_gives_the_teams_seat_back() -> None:
    c = core(team_booking=TeamBooking(team_code="T", request_id=uuid.uuid4(), requested_at=NOW))
    book = BookJointMeeting(
        starts_at=NOW + timedelta(days=2), ends_at=NOW + timedelta(days=2, hours=1)
    )
    effects, created = c.apply("book_joint_meeting", book, NOW)
    assert [type(e) for e in effects] == [Record, ReleaseSeat]
    assert isinstance(effects[0], Record)
    assert {n.recipient_role.value for n in effects[0].change.notifications} == {
        "employee",
        "manager",
        "coordinator",
    }
    assert c.state.stage == Stage.JOINT_MEETING and c.state.team_booking is None
    assert created == (uuid.UUID(int=1),)


def test_a_disclosure_starts_the_protected_safety_support_and_returns_only_the_steps() -> None:
    c = core(Stage.JOINT_MEETING, meeting=meeting())
    outcome = RecordMeetingOutcome(
        attended=("employee",), reinforced_support=False, violence_screening=VIOLENCE
    )
    effects, created = c.apply("record_meeting_outcome", outcome, NOW)
    assert [type(e) for e in effects] == [Record, StartChild]
    assert created == ()  # never the safety support's id
    assert c.state.violence_disclosed and c.state.interventions[0].protected
    start = effects[1]
    assert isinstance(start, StartChild) and "safety" not in start.summary


def test_set_plan_starts_new_interventions_in_order_and_cancels_unlisted() -> None:
    c = core(Stage.PLANNING)
    effects, created = c.apply("set_plan", SetPlan(interventions=(planned(), planned())), NOW)
    assert created == (uuid.UUID(int=1), uuid.UUID(int=2))
    assert c.state.stage == Stage.INTERVENTIONS and c.state.plan_set
    assert "set_plan" in c.state.actions_done  # it meets the RTW-plan deadline
    effects, _ = c.apply(
        "set_plan", SetPlan(interventions=(planned(intervention_id=created[0]),)), NOW
    )
    assert isinstance(effects[0], Record) and effects[0].change.kind == "plan_revised"
    assert [type(e) for e in effects] == [Record, FinishChild]
    assert c.state.interventions[1].status == InterventionStatus.CANCELLED


def test_the_full_return_ends_the_sick_leave_and_plans_the_follow_ups() -> None:
    c = returned(core())
    assert c.state.returned_on == TODAY - timedelta(days=3)
    assert [d.kind for d in c.state.deadlines if d.source == "follow_up"] == [
        "follow_up_1",
        "follow_up_2",
        "follow_up_3",
    ]


def test_a_relapse_reopens_the_same_case_at_the_joint_meeting_and_asks_the_team() -> None:
    c = returned(core())
    effects, _ = c.apply("report_sick_leave", ReportSickLeave(start=TODAY), NOW)
    assert [type(e) for e in effects] == [Record, AskTeam]
    assert c.state.stage == Stage.JOINT_MEETING and c.state.relapse_count == 1
    assert not any(d.source == "follow_up" for d in c.state.deadlines)


def test_closing_finishes_every_open_child_and_stops_deadlines() -> None:
    c = core(Stage.INTERVENTIONS)
    with_intervention(c)
    with_request(c)
    effects, _ = c.apply("close_case", CloseCase(outcome=CaseOutcome.NOT_RETURNED), NOW)
    assert [type(e) for e in effects] == [Record, FinishChild, FinishChild]
    assert c.state.stage == Stage.CLOSED and c.state.closed_at == NOW
    assert c.fire_due(NOW + timedelta(days=300)) == []


def test_late_facts_fire_every_passed_deadline_step_at_once_and_flag_overdue() -> None:
    c = core(sick_spells=[])
    c.apply("set_sick_leave", SetSickLeave(start=TODAY - timedelta(days=40)), NOW)
    kinds = [e.change.kind for e in c.fire_due(NOW) if isinstance(e, Record)]
    assert "deadline_overdue" in kinds and "deadline_escalation" in kinds
    assert c.state.overdue


def test_absence_news_already_known_changes_nothing() -> None:
    from models.actions import AbsenceNews

    c = core()
    news = AbsenceNews(key="k1", sick_start=SICK_START, spell_start=SICK_START)
    assert c.absence_news(news, NOW) == []  # the case already has these dates
    moved = AbsenceNews(key="k2", sick_start=SICK_START - timedelta(days=2), spell_start=SICK_START)
    assert [type(e) for e in c.absence_news(moved, NOW)] == [Record]
    assert c.absence_news(moved, NOW) == []  # the same news twice


def test_every_action_records_a_unique_step_key() -> None:
    c = core(Stage.INTERVENTIONS)
    keys = []
    for _ in range(3):
        effects, _ = c.apply("add_intervention", AddIntervention(intervention=planned()), NOW)
        keys += [e.change.step_key for e in effects if isinstance(e, Record)]
    assert len(set(keys)) == 3


def test_an_overdue_protected_intervention_never_flags_the_case() -> None:
    from models.actions import InterventionOverdueNotice

    c = core(Stage.JOINT_MEETING, meeting=meeting())
    c.apply(
        "record_meeting_outcome",
        RecordMeetingOutcome(
            attended=("employee",), reinforced_support=False, violence_screening=VIOLENCE
        ),
        NOW,
    )
    protected = c.state.interventions[0].intervention_id
    assert c.intervention_overdue(InterventionOverdueNotice(intervention_id=protected), NOW) == []
    assert c.state.overdue is False


def test_a_write_carries_the_whole_case_first_and_afterwards_only_what_changed() -> None:
    c = core()
    first = c.as_sent(c.opened(NOW).change)
    assert first.columns is not None and first.columns.sick_start == SICK_START
    assert first.columns.model_fields_set == set(CaseProjection.model_fields)
    assert first.plan_replaced
    assert {d.kind for d in first.deadline_rows} == {d.kind for d in c.state.deadlines}
    assert first.projection is None and first.deadlines == ()

    starts = NOW - timedelta(hours=2)
    effects, _ = c.apply(
        "book_joint_meeting",
        BookJointMeeting(starts_at=starts, ends_at=starts + timedelta(hours=1)),
        NOW,
    )
    (booked,) = [c.as_sent(e.change) for e in effects if isinstance(e, Record)]
    assert booked.columns is not None and not booked.plan_replaced
    assert booked.columns.values() == {"next_meeting_at": starts, "stage": "joint_meeting"}
    assert booked.deadline_rows == () and booked.deadlines_dropped == ()
    # What did not change is not sent at all.
    wire = booked.model_dump_json()
    assert "sick_start" not in wire and "projection" not in wire and "deadline" not in wire

    effects, _ = c.apply("set_sick_leave", SetSickLeave(start=SICK_START - timedelta(days=7)), NOW)
    (moved,) = [c.as_sent(e.change) for e in effects if isinstance(e, Record)]
    assert moved.columns is not None
    assert moved.columns.values()["sick_start"] == SICK_START - timedelta(days=7)
    # Every deadline is counted from the start: all moved, and are sent as they are now.
    assert {(d.kind, d.due_on) for d in moved.deadline_rows} == {
        (d.kind, d.due_on) for d in c.state.deadlines
    }

    effects, _ = c.apply("record_deadline_met", RecordDeadlineMet(kind="fk_sick_notice"), NOW)
    (met,) = [c.as_sent(e.change) for e in effects if isinstance(e, Record)]
    assert [(d.kind, d.status) for d in met.deadline_rows] == [
        ("fk_sick_notice", DeadlineStatus.MET)
    ]


def test_a_change_in_the_shape_sent_before_the_lean_record_still_decodes() -> None:
    """An activity scheduled by earlier code may still be waiting for a worker."""
    old = {
        "case_id": str(uuid.uuid4()),
        "workflow_id": "case-x",
        "unit_code": "U1",
        "step_key": "00002-sick_leave_set",
        "kind": "sick_leave_set",
        "stage": "identified",
        "occurred_at": "2026-11-30T10:00:00Z",
        "detail": {},
        "projection": {
            "stage": "identified",
            "policy_id": "se-default",
            "policy_version": 1,
            "sick_start": "2026-11-10",
            "expected_end": None,
            "overdue": False,
            "next_deadline_kind": "fk_sick_notice",
            "next_deadline_on": "2026-11-17",
            "next_meeting_at": None,
            "long_term": False,
            "relapse_count": 0,
            "outcome": None,
            "closed_at": None,
        },
        "deadlines": [
            {
                "kind": "fk_sick_notice",
                "description": "Employer's sick notice",
                "due_on": "2026-11-17",
                "status": "pending",
                "met_on": None,
            }
        ],
        "consent": None,
        "meeting": None,
        "screenings": [],
        "next_steps": [],
        "notifications": [],
    }
    change = CaseChange.model_validate_json(json.dumps(old))
    assert change.projection is not None and change.projection.sick_start == SICK_START
    assert [d.kind for d in change.deadlines] == ["fk_sick_notice"]
    assert change.columns is None and not change.plan_replaced

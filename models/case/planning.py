"""The case's dates and derived views: deadline planning, the next instant, the projection.

Pure functions of a case's state and its policy snapshot (models/policy.py); the rules
(models/case/rules.py) and the workflow's queries use them.
"""

from __future__ import annotations

from datetime import date, datetime

from models.case import (
    CaseInput,
    CaseProjection,
    CaseState,
    CaseView,
    ConsentParty,
    InformationRequestStatus,
    InterventionStatus,
    OpenAction,
    Stage,
)
from models.deadlines import (
    DeadlineStep,
    DeadlineView,
    TrackedDeadline,
    end_of_day,
    local_date,
    start_of_day,
    view_of,
)
from models.policy import Policy
from models.sick_leave import SickPeriod, date_of_sick_day, deadline_dates, expected_sick_days


def period(state: CaseState) -> SickPeriod:
    return SickPeriod(spells=tuple(state.sick_spells))


def conditional_kinds(state: CaseState, policy: Policy, expected_end: date | None) -> set[str]:
    """The expectation-dependent rules that the expected end makes apply."""
    if expected_end is None or not state.sick_spells:
        return set()
    try:
        expected = expected_sick_days(period(state), expected_end)
    except ValueError:
        return set()
    return {
        rule.kind
        for rule in policy.deadlines
        if rule.expected_sick_days_at_least is not None
        and expected >= rule.expected_sick_days_at_least
    }


def replan(state: CaseState, policy: Policy) -> None:
    """Date the policy's deadlines for the current period; keep what is already known.

    A deadline whose date did not move keeps its fired steps; a moved one starts over
    (and, if its new date has passed, is recorded overdue at once). Met stays met.
    """
    s = state
    if not s.sick_spells:
        return
    rules = {rule.kind: rule for rule in policy.deadlines}
    known = {d.kind: d for d in s.deadlines if d.source == "policy"}
    planned: list[TrackedDeadline] = []
    expected_end = s.expected_end
    if expected_end is not None and expected_end < s.sick_spells[-1].start:
        expected_end = None
    for dated in deadline_dates(period(s), policy, expected_end, s.expectation_recorded_on):
        rule = rules.get(dated.kind)
        if rule is None:  # identification triggers: the case is already open
            continue
        old = known.get(dated.kind)
        if old is not None and (old.due_on == dated.due or old.met_on is not None):
            planned.append(old.model_copy(update={"due_on": dated.due}))
            continue
        deadline = TrackedDeadline(
            kind=dated.kind,
            source="policy",
            description=dated.description,
            sick_day=dated.sick_day,
            due_on=dated.due,
            met_by_action=rule.met_by_action,
        )
        if rule.met_by_action is not None and rule.met_by_action in s.actions_done:
            deadline.met_on = s.actions_done[rule.met_by_action]
        planned.append(deadline)
    follow_ups = [d for d in s.deadlines if d.source == "follow_up"]
    s.deadlines = sorted(planned + follow_ups, key=lambda d: (d.due_on, d.kind))


def action_done(state: CaseState, action: str, today: date) -> None:
    """An action that meets deadlines was taken: they are met today."""
    state.actions_done.setdefault(action, today)
    for deadline in state.deadlines:
        if deadline.met_by_action == action and deadline.met_on is None:
            deadline.met_on = today
    refresh_overdue(state)


def refresh_overdue(state: CaseState) -> None:
    s = state
    s.overdue = s.stage != Stage.CLOSED and (
        any(d.overdue for d in s.deadlines)
        or any(
            iv.status == InterventionStatus.OVERDUE
            for iv in s.interventions
            if not iv.protected  # the overdue flag is seen by managers
        )
        or any(r.status == InformationRequestStatus.OVERDUE for r in s.information_requests)
    )


def follow_up_window_end(state: CaseState, policy: Policy) -> date:
    assert state.returned_on is not None
    return max(
        (offset.after(state.returned_on) for offset in policy.follow_ups_after_return),
        default=state.returned_on,
    )


def next_due_step(
    state: CaseState, policy: Policy, now: datetime
) -> tuple[TrackedDeadline, DeadlineStep] | None:
    for deadline in sorted(state.deadlines, key=lambda d: d.due_on):
        steps = deadline.steps_to_fire(policy, now)
        if steps:
            return deadline, steps[0]
    return None


def long_term_instant(state: CaseState, policy: Policy) -> datetime | None:
    if state.long_term or state.stage == Stage.CLOSED or not state.sick_spells:
        return None
    day = date_of_sick_day(period(state), policy.long_term_trigger_day)
    return None if day is None else start_of_day(day)


def erase_instant(state: CaseState, policy: Policy) -> datetime | None:
    if state.closed_at is None or state.erased:
        return None
    # Kept through the last day of the retention period, erased when it ends.
    return end_of_day(policy.retention_after_closure.after(local_date(state.closed_at)))


def next_instant(state: CaseState, policy: Policy) -> datetime | None:
    """When the case must next wake by itself: a deadline step, the long-term track, erasure."""
    if state.stage == Stage.CLOSED:
        return erase_instant(state, policy)
    instants = [
        step[1] for deadline in state.deadlines if (step := deadline.next_step(policy)) is not None
    ]
    if (long_term_at := long_term_instant(state, policy)) is not None:
        instants.append(long_term_at)
    return min(instants, default=None)


def next_deadline(state: CaseState) -> TrackedDeadline | None:
    if state.stage == Stage.CLOSED:
        return None
    unmet = [d for d in state.deadlines if d.met_on is None]
    return min(unmet, key=lambda d: (d.due_on, d.kind), default=None)


def deadline_views(state: CaseState) -> tuple[DeadlineView, ...]:
    return tuple(view_of(d) for d in sorted(state.deadlines, key=lambda d: d.due_on))


def projection(state: CaseState, policy: Policy) -> CaseProjection:
    s = state
    upcoming = next_deadline(s)
    return CaseProjection(
        stage=s.stage,
        policy_id=policy.policy_id,
        policy_version=policy.version,
        sick_start=s.sick_spells[0].start if s.sick_spells else None,
        expected_end=s.expected_end,
        overdue=s.overdue,
        next_deadline_kind=upcoming.kind if upcoming else None,
        next_deadline_on=upcoming.due_on if upcoming else None,
        next_meeting_at=(s.meeting.starts_at if s.meeting and not s.meeting_held else None),
        long_term=s.long_term,
        relapse_count=s.relapse_count,
        outcome=s.outcome,
        closed_at=s.closed_at,
    )


def waiting_for_team(state: CaseState) -> bool:
    booking = state.team_booking
    return booking is not None and not booking.assigned


def case_view(state: CaseState, input: CaseInput) -> CaseView:
    """The `state` query: no personal data, and not the protected track."""
    s = state
    upcoming = next_deadline(s)
    return CaseView(
        case_id=input.case_id,
        unit_code=input.unit_code,
        trigger=input.trigger,
        stage=s.stage,
        recorded=s.recorded,
        policy_id=input.policy.policy_id,
        policy_version=input.policy.version,
        sick_start=s.sick_spells[0].start if s.sick_spells else None,
        expected_end=s.expected_end,
        returned_on=s.returned_on,
        overdue=s.overdue,
        next_deadline=None if upcoming is None else view_of(upcoming),
        meeting=s.meeting.slot if s.meeting else None,
        consents=dict(s.consents),
        interventions=tuple(iv.model_copy() for iv in s.interventions if not iv.protected),
        information_requests=tuple(r.model_copy() for r in s.information_requests),
        next_steps=tuple(step.model_copy() for step in s.next_steps),
        return_extent=s.return_steps[-1].extent if s.return_steps else None,
        long_term=s.long_term,
        relapse_count=s.relapse_count,
        outcome=s.outcome,
        closed_at=s.closed_at,
        erased=s.erased,
        meeting_team=s.team_booking.team_code if s.team_booking else None,
        meeting_requested=waiting_for_team(s),
        fhv_chosen=s.fhv_chosen,
        no_shows=s.no_shows,
    )


def open_actions(state: CaseState, *, include_protected: bool) -> list[OpenAction]:
    """What the coordinator can or should do; the protected track's task only on request
    (the `open_actions` query), never in the details operations staff read."""
    s = state
    actions: list[OpenAction] = []
    if s.stage == Stage.CLOSED:
        return actions
    for party in (ConsentParty.FK, ConsentParty.FHV):
        if party not in s.consents:
            actions.append(OpenAction(action="record_consent", reason=f"ask for {party.value}"))
    if not s.sick_spells:
        actions.append(OpenAction(action="set_sick_leave", reason="no sick leave recorded"))
    match s.stage:
        case Stage.IDENTIFIED | Stage.JOINT_MEETING if waiting_for_team(s):
            pass  # the team books the next slot with room
        case Stage.IDENTIFIED:
            actions.append(OpenAction(action="book_joint_meeting", reason="next stage"))
        case Stage.JOINT_MEETING if s.meeting is not None:
            actions.append(
                OpenAction(
                    action="record_meeting_outcome",
                    reason="after the joint meeting",
                    due_on=local_date(s.meeting.starts_at),
                )
            )
        case Stage.JOINT_MEETING:
            actions.append(OpenAction(action="book_joint_meeting", reason="relapse"))
        case Stage.SCREENING:
            actions.append(OpenAction(action="record_screening_result", reason="next stage"))
        case Stage.PLANNING:
            actions.append(OpenAction(action="set_plan", reason="next stage"))
        case _:
            if s.returned_on is None:
                actions.append(
                    OpenAction(action="record_return_to_work_step", reason="return graded")
                )
            else:
                actions.append(OpenAction(action="close_case", reason="returned to work"))
    for iv in s.interventions:
        if iv.is_open and iv.protected and include_protected:
            actions.append(
                OpenAction(
                    action="complete_intervention",
                    reason=f"safety support after a disclosure {iv.intervention_id}",
                    due_on=iv.due_on,
                )
            )
        elif iv.is_open and not iv.protected:
            actions.append(
                OpenAction(
                    action="complete_intervention",
                    reason=f"{iv.track.value} intervention {iv.intervention_id}",
                    due_on=iv.due_on,
                )
            )
    for request in s.information_requests:
        if request.is_open:
            # No party here: these details show in the Temporal UI.
            late = request.status == InformationRequestStatus.OVERDUE
            actions.append(
                OpenAction(
                    action="record_information_response",
                    reason=f"information request {request.request_id}"
                    + (" (overdue)" if late else ""),
                    due_on=request.due_on,
                )
            )
    for d in s.deadlines:
        if d.met_on is None and DeadlineStep.DUE in d.fired:
            actions.append(OpenAction(action="record_deadline_met", reason=d.kind, due_on=d.due_on))
    return actions

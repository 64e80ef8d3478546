"""The case's rules of change: `apply_<action>` changes the state and returns the effects.

`CaseCore` is the whole case without Temporal: `check(name, action, now)` gives the reason
an action is refused (or None), `apply(name, action, now)` changes the state and returns
the effects in the order they must happen (models/case/effects.py). Ids come from the
`new_id` the core is given (the workflow's deterministic uuid4), in a fixed order, so a
replayed workflow gets the same ids. Timer-driven changes (`fire_due`), signals from the
case's children and the meeting team, and absence news are rules here too.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from channels.message import NotificationType, RecipientRole
from models.actions import (
    AbsenceNews,
    AddIntervention,
    CancelIntervention,
    CloseCase,
    CompleteIntervention,
    InterventionFinish,
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
    PARTY_RECIPIENT,
    CancelReason,
    CaseChange,
    CaseInput,
    CaseState,
    ConsentRecord,
    InformationRequestState,
    InformationRequestStatus,
    InterventionState,
    InterventionStatus,
    MeetingRecord,
    NextStepRecord,
    NotificationRequest,
    ReturnStep,
    ScreeningRecord,
    Stage,
)
from models.deadlines import TrackedDeadline, local_date
from models.information_requests import (
    CancelInformationRequest,
    InformationRequestFinish,
    RecordInformationResponse,
    RequestInformation,
)
from models.sick_leave import SickSpell

from . import planning
from .checks import Rejected, planned_of
from .due import DueRules
from .effects import (
    AskTeam,
    Effect,
    Record,
)

# Absence news keys remembered against resends; a monitor resends only its latest news.
NEWS_KEPT = 20


Applied = tuple[list[Effect], tuple[UUID, ...]]


def initial_state(input: CaseInput) -> CaseState:
    """A new case's state (or the carried one after continue-as-new)."""
    if input.carried is not None:
        return input.carried.model_copy(deep=True)
    state = CaseState()
    if input.sick_start is not None:
        state.sick_spells = [SickSpell(start=input.sick_start)]
        state.period_no = 1
        state.expected_end = input.expected_end
        if planning.conditional_kinds(state, input.policy, state.expected_end):
            state.expectation_recorded_on = local_date(input.opened_at)
        planning.replan(state, input.policy)
    return state


class CaseCore(DueRules):
    """One case's rules over its state; see the module docstring."""

    # ------------------------------------------------------------------ the opening

    def opening(self) -> CaseChange:
        """The first change of a case whose opener wrote it (`CaseInput.opening_recorded`),
        dated when the case opened. The opener computes it on a new core to write it with
        the case's row; the case's workflow computes it again on its own, to take the same
        change into its state without writing it."""
        return self.as_sent(self.opened(self.input.opened_at).change)

    def passed_at_opening(self) -> list[CaseChange] | None:
        """After `opening`: what had already fallen due when the case opened (a late import's
        passed deadline steps, the long-term track), as sent, for the opener to write too
        (`CaseInput.passed_recorded`); the case's workflow computes it again, as `opening`.
        None when something due is more than a record-store write: the workflow does it."""
        effects = self.fire_due(self.input.opened_at)
        records = [effect for effect in effects if isinstance(effect, Record)]
        if len(records) != len(effects):
            return None
        return [self.as_sent(record.change) for record in records]

    # ------------------------------------------------------------------ the two entry points

    def check(self, name: str, action: Any, now: datetime) -> str | None:
        """Why `action` is refused now, or None when it fits the case."""
        try:
            getattr(self, f"check_{name}")(action, now)
        except Rejected as rejected:
            return str(rejected)
        return None

    def apply(self, name: str, action: Any, now: datetime) -> Applied:
        """Change the state; the effects to run in order and the ids the action created.
        Call only after `check` passed."""
        result: Applied = getattr(self, f"apply_{name}")(action, now)
        return result

    # ------------------------------------------------------------------ actions

    def apply_record_consent(self, action: RecordConsent, now: datetime) -> Applied:
        s = self.state
        s.consents[action.party] = action.given
        notifications: tuple[NotificationRequest, ...] = ()
        if action.given:
            notifications = self.invite_to_team_meeting(action.party)
        meeting = s.meeting
        if not action.given and meeting is not None and not s.meeting_held:
            if action.party in meeting.invited:
                # Without consent the party may not take part: uninvite it from the meeting.
                meeting.invited.remove(action.party)
                role = PARTY_RECIPIENT.get(action.party)
                if role is not None:
                    notifications = (
                        NotificationRequest(
                            notification_type=NotificationType.MEETING_CANCELLED,
                            recipient_role=role,
                            meeting=meeting.slot,
                        ),
                    )
        # Without consent nothing more may be asked of the party: its open requests end.
        withdrawn = [
            r
            for r in s.information_requests
            if not action.given and r.party == action.party and r.is_open
        ]
        detail: dict[str, Any] = {"party": action.party.value}
        if withdrawn:
            for request in withdrawn:
                request.status = InformationRequestStatus.CANCELLED
                request.cancel_reason = CancelReason.CONSENT_WITHDRAWN
            planning.refresh_overdue(s)
            detail["information_requests_cancelled"] = [str(r.request_id) for r in withdrawn]
        effects: list[Effect] = [
            self.record(
                "consent_given" if action.given else "consent_withdrawn",
                detail,
                now,
                consent=ConsentRecord(party=action.party, given=action.given),
                notifications=notifications,
            )
        ]
        finish = InformationRequestFinish(
            status=InformationRequestStatus.CANCELLED,
            cancel_reason=CancelReason.CONSENT_WITHDRAWN,
        )
        effects += [self.finish_request(r, finish) for r in withdrawn]
        return effects, ()

    def apply_record_meeting_outcome(self, action: RecordMeetingOutcome, now: datetime) -> Applied:
        s = self.state
        meeting = s.meeting
        assert meeting is not None
        s.meeting_held = True
        s.meetings_held += 1
        s.reinforced_support = action.reinforced_support
        s.stage = Stage.SCREENING
        planning.action_done(s, "record_meeting_outcome", local_date(now))
        steps = self.agree_next_steps(action.next_steps, meeting.meeting_id)
        safety_support = self.open_protected_track(action.violence_screening, now)
        attended = tuple(sorted(set(action.attended)))
        detail: dict[str, Any] = {
            "attended": list(attended),
            "needs": sorted({t.value for t in action.needs}),
            "reinforced_support": action.reinforced_support,
        }
        if action.held_by is not None:
            detail["held_by"] = action.held_by
        if steps:
            detail["next_steps"] = len(steps)
        effects: list[Effect] = [
            self.record(
                "joint_meeting_held",
                detail,
                now,
                meeting=self.meeting_record(
                    "held",
                    attended=attended,
                    reinforced_support=action.reinforced_support,
                    held_by=action.held_by,
                ),
                screenings=self.questions_asked(
                    action.violence_screening, meeting.meeting_id, action.held_by
                ),
                next_steps=tuple(NextStepRecord(**step.model_dump()) for step in steps),
            )
        ]
        effects += [self.start_intervention(iv, now) for iv in safety_support]
        # Never the safety support's id: whoever recorded the meeting learns nothing of it.
        return effects, tuple(step.step_id for step in steps)

    def apply_record_follow_up_meeting(
        self, action: RecordFollowUpMeeting, now: datetime
    ) -> Applied:
        s = self.state
        s.meetings_held += 1
        meeting_id = self.new_id()
        attended = tuple(sorted(set(action.attended)))
        safety_support = self.open_protected_track(action.violence_screening, now)
        effects: list[Effect] = [
            self.record(
                "meeting_follow_up_held",
                {
                    "meeting_id": str(meeting_id),
                    "attended": list(attended),
                    "held_by": action.held_by,
                },
                now,
                meeting=MeetingRecord(
                    meeting_id=meeting_id,
                    starts_at=action.starts_at,
                    ends_at=action.ends_at,
                    sequence=0,
                    status="held",
                    invited=attended,
                    attended=attended,
                    kind="follow_up",
                    held_by=action.held_by,
                ),
                screenings=self.questions_asked(
                    action.violence_screening, meeting_id, action.held_by
                ),
            )
        ]
        effects += [self.start_intervention(iv, now) for iv in safety_support]
        return effects, (meeting_id,)

    def apply_record_screening_result(
        self, action: RecordScreeningResult, now: datetime
    ) -> Applied:
        s = self.state
        s.screened = True
        s.stage = Stage.PLANNING
        # Reinforced support is recorded with the meeting, which FK and the manager share; a
        # disclosure gets its support from the protected track instead, so it cannot be
        # inferred from the flag.
        if any(score.suggests_reinforced_support for score in action.scores if not score.protected):
            s.reinforced_support = True
        safety_support: list[InterventionState] = []
        for score in action.scores:
            safety_support += self.open_protected_track(score, now)
        # The timeline says which instruments were used, never scores or disclosures; it is
        # append-only and outlives erasure, so the protected set (always asked) is left out.
        effects: list[Effect] = [
            self.record(
                "screening_recorded",
                {
                    "instruments": sorted(
                        {score.instrument_id for score in action.scores if not score.protected}
                    )
                },
                now,
                screenings=tuple(
                    ScreeningRecord(
                        instrument_id=score.instrument_id,
                        instrument_version=score.instrument_version,
                        total=score.total,
                        band=score.band,
                        risk_level=score.risk_level,
                        disclosure=bool(score.disclosure),
                        protected=score.protected,
                    )
                    for score in action.scores
                ),
            )
        ]
        effects += [self.start_intervention(iv, now) for iv in safety_support]
        return effects, ()

    def apply_set_plan(self, action: SetPlan, now: datetime) -> Applied:
        s = self.state
        revision = s.plan_set
        listed = {p.intervention_id for p in action.interventions if p.intervention_id}
        # The protected track is not part of the plan: a revision never cancels it.
        to_cancel = [
            iv
            for iv in s.interventions
            if iv.is_open and not iv.protected and iv.intervention_id not in listed
        ]
        known = {iv.intervention_id for iv in s.interventions}
        new = [p for p in action.interventions if p.intervention_id not in known]
        adopted = [self.next_step(step_id) for step_id in action.adopt_next_steps]
        s.plan_set = True
        if s.stage == Stage.PLANNING:
            s.stage = Stage.INTERVENTIONS
        planning.action_done(s, "set_plan", local_date(now))
        started = self.add_interventions(new)
        for step, iv in zip(
            adopted, self.add_interventions(list(map(planned_of, adopted))), strict=True
        ):
            step.intervention_id = iv.intervention_id
            started.append(iv)
        for iv in to_cancel:
            iv.status = InterventionStatus.CANCELLED
        planned = [iv for iv in s.interventions if iv.is_open and not iv.protected]
        effects: list[Effect] = [
            self.record(
                "plan_revised" if revision else "plan_set",
                {
                    "interventions": len(planned),
                    "tracks": sorted({iv.track.value for iv in planned}),
                },
                now,
                next_steps=tuple(NextStepRecord(**step.model_dump()) for step in adopted),
            )
        ]
        effects += [self.start_intervention(iv, now) for iv in started]
        replaced = InterventionFinish(
            status=InterventionStatus.CANCELLED, cancel_reason=CancelReason.REPLACED
        )
        effects += [self.finish_intervention(iv, replaced) for iv in to_cancel]
        return effects, tuple(iv.intervention_id for iv in started)

    def apply_add_intervention(self, action: AddIntervention, now: datetime) -> Applied:
        (iv,) = self.add_interventions([action.intervention])
        detail = {"intervention_id": str(iv.intervention_id), "track": iv.track.value}
        return [self.record("intervention_added", detail, now), self.start_intervention(iv, now)], (
            iv.intervention_id,
        )

    def apply_complete_intervention(self, action: CompleteIntervention, now: datetime) -> Applied:
        iv = self.intervention(action.intervention_id)
        iv.status = InterventionStatus.COMPLETED
        iv.outcome = action.outcome
        planning.refresh_overdue(self.state)
        detail = {
            "intervention_id": str(iv.intervention_id),
            "outcome": action.outcome.value,
            "track": iv.track.value,
        }
        finish = InterventionFinish(status=InterventionStatus.COMPLETED, outcome=action.outcome)
        return [
            self.record("intervention_outcome_recorded", detail, now),
            self.finish_intervention(iv, finish),
        ], ()

    def apply_cancel_intervention(self, action: CancelIntervention, now: datetime) -> Applied:
        iv = self.intervention(action.intervention_id)
        iv.status = InterventionStatus.CANCELLED
        planning.refresh_overdue(self.state)
        detail = {
            "intervention_id": str(iv.intervention_id),
            "reason": action.reason.value,
            "track": iv.track.value,
        }
        finish = InterventionFinish(
            status=InterventionStatus.CANCELLED, cancel_reason=action.reason
        )
        return [
            self.record("intervention_withdrawn", detail, now),
            self.finish_intervention(iv, finish),
        ], ()

    def apply_request_information(self, action: RequestInformation, now: datetime) -> Applied:
        request = InformationRequestState(
            request_id=self.new_id(),
            party=action.party,
            due_on=action.due_on,
            remind_days_before=action.remind_days_before,
            requested_on=local_date(now),
        )
        self.state.information_requests.append(request)
        detail = {
            "request_id": str(request.request_id),
            "party": request.party.value,
            "due_on": request.due_on.isoformat(),
        }
        return [
            self.record("information_requested", detail, now),
            self.start_request(request, now),
        ], (request.request_id,)

    def apply_record_information_response(
        self, action: RecordInformationResponse, now: datetime
    ) -> Applied:
        request = self.information_request(action.request_id)
        request.status = InformationRequestStatus.ANSWERED
        request.received_on = action.received_on or local_date(now)
        planning.refresh_overdue(self.state)
        detail = {
            "request_id": str(request.request_id),
            "party": request.party.value,
            "received_on": request.received_on.isoformat(),
            "late": request.received_on > request.due_on,
        }
        finish = InformationRequestFinish(
            status=InformationRequestStatus.ANSWERED, received_on=request.received_on
        )
        return [
            self.record("information_response_recorded", detail, now),
            self.finish_request(request, finish),
        ], ()

    def apply_cancel_information_request(
        self, action: CancelInformationRequest, now: datetime
    ) -> Applied:
        request = self.information_request(action.request_id)
        request.status = InformationRequestStatus.CANCELLED
        request.cancel_reason = action.reason
        planning.refresh_overdue(self.state)
        detail = {
            "request_id": str(request.request_id),
            "party": request.party.value,
            "reason": action.reason.value,
        }
        finish = InformationRequestFinish(
            status=InformationRequestStatus.CANCELLED, cancel_reason=action.reason
        )
        return [
            self.record("information_request_withdrawn", detail, now),
            self.finish_request(request, finish),
        ], ()

    def apply_record_return_to_work_step(
        self, action: RecordReturnToWorkStep, now: datetime
    ) -> Applied:
        s = self.state
        s.return_steps.append(ReturnStep(extent=action.extent, from_date=action.from_date))
        s.stage = Stage.RETURN_TO_WORK
        if action.extent == 100:
            # The sick leave ends the day before: later sick-day deadlines never arise, and
            # the follow-ups after the return take their place.
            s.returned_on = action.from_date
            last = s.sick_spells[-1]
            s.sick_spells[-1] = last.model_copy(
                update={"end": action.from_date - timedelta(days=1)}
            )
            planning.replan(s, self.policy)
            for number, offset in enumerate(self.policy.follow_ups_after_return, start=1):
                s.deadlines.append(
                    TrackedDeadline(
                        kind=f"follow_up_{number}",
                        source="follow_up",
                        description=f"Follow-up {number} after the return to work",
                        due_on=offset.after(action.from_date),
                    )
                )
            planning.refresh_overdue(s)
        detail = {"extent": action.extent, "from_date": action.from_date.isoformat()}
        return [self.record("return_to_work_step", detail, now)], ()

    def apply_report_sick_leave(self, action: ReportSickLeave, now: datetime) -> Applied:
        s = self.state
        previous_end = s.sick_spells[-1].end
        assert previous_end is not None
        continues = (action.start - previous_end).days <= self.policy.relapse_gap_days
        spell = SickSpell(start=action.start)
        if continues:
            # The relapse rule: the same sick-pay period, numbered on from its last day.
            s.sick_spells.append(spell)
        else:
            s.sick_spells = [spell]
            s.period_no += 1
            s.deadlines = []
            s.actions_done = {}
        s.deadlines = [d for d in s.deadlines if d.source != "follow_up"]
        s.relapse_count += 1
        s.returned_on = None
        s.return_steps = []
        s.meeting = None
        s.meeting_held = False
        s.stage = Stage.JOINT_MEETING
        s.expected_end = action.expected_end
        s.expectation_recorded_on = (
            local_date(now)
            if planning.conditional_kinds(s, self.policy, action.expected_end)
            else None
        )
        planning.replan(s, self.policy)
        detail = {
            "relapse_count": s.relapse_count,
            "continues_period": continues,
            **self.sick_leave_detail(),
        }
        effects: list[Effect] = [self.record("relapse_reported", detail, now)]
        # The held meeting's seat is long past; the relapse needs a new meeting.
        s.team_booking = None
        effects.append(AskTeam("relapse"))
        return effects, ()

    def apply_set_sick_leave(self, action: SetSickLeave, now: datetime) -> Applied:
        s = self.state
        had_rules = planning.conditional_kinds(s, self.policy, s.expected_end)
        if not s.sick_spells:
            assert action.start is not None
            s.sick_spells = [SickSpell(start=action.start)]
            s.period_no += 1
        elif action.start is not None:
            s.sick_spells[-1] = s.sick_spells[-1].model_copy(update={"start": action.start})
        if action.expected_end is not None:
            s.expected_end = action.expected_end
        if planning.conditional_kinds(s, self.policy, s.expected_end) - had_rules:
            # The expectation that makes e.g. the RTW plan apply arose today.
            s.expectation_recorded_on = local_date(now)
        planning.replan(s, self.policy)
        planning.refresh_overdue(s)
        return [self.record("sick_leave_set", self.sick_leave_detail(), now)], ()

    def apply_record_deadline_met(self, action: RecordDeadlineMet, now: datetime) -> Applied:
        deadline = self.deadline(action.kind)
        assert deadline is not None
        deadline.met_on = action.met_on or local_date(now)
        planning.refresh_overdue(self.state)
        detail = {
            "deadline": deadline.kind,
            "due_on": deadline.due_on.isoformat(),
            "met_on": deadline.met_on.isoformat(),
            "late": deadline.met_on > deadline.due_on,
        }
        return [self.record("deadline_met", detail, now)], ()

    def apply_close_case(self, action: CloseCase, now: datetime) -> Applied:
        s = self.state
        open_interventions = [iv for iv in s.interventions if iv.is_open]
        for iv in open_interventions:
            iv.status = InterventionStatus.CANCELLED
        open_requests = [r for r in s.information_requests if r.is_open]
        for request in open_requests:
            request.status = InformationRequestStatus.CANCELLED
            request.cancel_reason = CancelReason.CASE_CLOSED
        s.stage = Stage.CLOSED
        s.outcome = action.outcome
        s.closed_at = now
        planning.refresh_overdue(s)
        effects: list[Effect] = [
            self.record(
                "case_closed",
                {"outcome": action.outcome.value, "relapse_count": s.relapse_count},
                now,
                notifications=tuple(
                    NotificationRequest(
                        notification_type=NotificationType.CASE_CLOSED, recipient_role=r
                    )
                    for r in (
                        RecipientRole.COORDINATOR,
                        RecipientRole.MANAGER,
                        RecipientRole.EMPLOYEE,
                    )
                ),
            )
        ]
        closed_iv = InterventionFinish(
            status=InterventionStatus.CANCELLED, cancel_reason=CancelReason.CASE_CLOSED
        )
        effects += [self.finish_intervention(iv, closed_iv) for iv in open_interventions]
        closed_request = InformationRequestFinish(
            status=InformationRequestStatus.CANCELLED, cancel_reason=CancelReason.CASE_CLOSED
        )
        effects += [self.finish_request(r, closed_request) for r in open_requests]
        effects += self.leave_team()
        return effects, ()

    # ------------------------------------------------------------------ news and children

    def absence_news(self, news: AbsenceNews, now: datetime) -> list[Effect]:
        """Sick leave from payroll data, applied as the action a coordinator would take;
        news that the action's check refuses changes nothing."""
        s = self.state
        if news.key in s.absence_news_seen or s.stage == Stage.CLOSED:
            return []
        s.absence_news_seen = [*s.absence_news_seen[-(NEWS_KEPT - 1) :], news.key]
        start = news.spell_start if s.returned_on is not None else news.sick_start
        # An expected end from before this sick leave belongs to an earlier one.
        expected_end = news.expected_end if (news.expected_end or start) >= start else None
        try:
            if s.returned_on is not None:
                relapse = ReportSickLeave(start=start, expected_end=expected_end)
                self.check_report_sick_leave(relapse, now)
                return self.apply_report_sick_leave(relapse, now)[0]
            current = SetSickLeave(start=start, expected_end=expected_end)
            self.check_set_sick_leave(current, now)
            return self.apply_set_sick_leave(current, now)[0]
        except (Rejected, ValueError):
            return []

    # ------------------------------------------------------------------ building blocks

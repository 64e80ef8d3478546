"""The case's rules of refusal: `check_<action>` raises Rejected with the coordinator's reason.

An action that does not fit the case is refused and changes nothing. Each check is a pure
function of the state, the policy snapshot and the time; the workflow runs it as the
update's validator and again in the handler, before any change (two updates in one
workflow task are both validated before either handler runs).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from uuid import UUID

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
    RETURNED_OUTCOMES,
    CaseInput,
    CaseState,
    ConsentParty,
    InformationRequestState,
    InterventionState,
    MeetingBooking,
    NextStepState,
    Stage,
)
from models.deadlines import TrackedDeadline, local_date
from models.information_requests import (
    CancelInformationRequest,
    RecordInformationResponse,
    RequestInformation,
)
from models.instruments import ScreeningScore
from models.meetings import CancelMeeting, ChooseFhv, RecordNoShow, RescheduleMeeting
from models.policy import Policy

from . import planning

OPEN_STAGES_AFTER_PLAN = (Stage.INTERVENTIONS, Stage.RETURN_TO_WORK)
# Information is gathered from the joint meeting on (DESIGN.md: planning, Falun).
INFORMATION_STAGES = (Stage.JOINT_MEETING, Stage.SCREENING, Stage.PLANNING, *OPEN_STAGES_AFTER_PLAN)


class Rejected(ValueError):
    """An action that does not fit the case; the message is shown to the coordinator."""


def planned_of(step: NextStepState) -> PlannedIntervention:
    """An agreed next step as the plan's intervention."""
    return PlannedIntervention(
        track=step.track, kind=step.kind, owner=step.owner, due_on=step.due_on
    )


class CaseChecks:
    """The refusals, over one case's state. `check_<name>(action, now)` per declared action."""

    def __init__(self, input: CaseInput, state: CaseState) -> None:
        self.input = input
        self.policy: Policy = input.policy
        self.state = state

    # ------------------------------------------------------------------ per action

    def check_record_consent(self, action: RecordConsent, now: datetime) -> None:
        self.require_open()
        if self.state.consents.get(action.party) == action.given:
            word = "given" if action.given else "withdrawn"
            raise Rejected(f"consent for {action.party.value} is already {word}")

    def check_book_joint_meeting(self, action: BookJointMeeting, now: datetime) -> None:
        self.require_stage((Stage.IDENTIFIED, Stage.JOINT_MEETING), "a joint meeting can be booked")
        back = self.policy.joint_meeting_back_registration_days
        if back == 0 and action.starts_at <= now:
            raise Rejected("a joint meeting must be booked for a time in the future")
        if action.starts_at < now - timedelta(days=back):
            raise Rejected(
                f"a joint meeting can be registered at most {back} days after it took place"
            )
        for party in action.invite:
            if not self.state.consents.get(party, False):
                raise Rejected(
                    f"{party.value} may be invited only with the employee's consent; "
                    "record the consent first"
                )

    def check_record_meeting_outcome(self, action: RecordMeetingOutcome, now: datetime) -> None:
        self.require_stage((Stage.JOINT_MEETING,), "a meeting outcome can be recorded")
        s = self.state
        if s.meeting is None:
            raise Rejected("no joint meeting is booked; book one before recording its outcome")
        if s.meeting_held:
            raise Rejected("the outcome of this joint meeting is already recorded")
        if now < s.meeting.starts_at:
            raise Rejected(
                "the joint meeting has not started yet; record its outcome after "
                f"{s.meeting.starts_at.isoformat()}"
            )
        self.check_attendance(action.attended, action.held_by, action.violence_screening)
        for step in action.next_steps:
            if step.due_on < local_date(now):
                raise Rejected("an agreed next step's due date cannot lie in the past")

    def check_record_follow_up_meeting(self, action: RecordFollowUpMeeting, now: datetime) -> None:
        self.require_stage(OPEN_STAGES_AFTER_PLAN, "a follow-up meeting can be recorded")
        if action.starts_at > now:
            raise Rejected("a follow-up meeting is recorded once it has started")
        self.check_attendance(action.attended, action.held_by, action.violence_screening)

    def check_record_screening_result(self, action: RecordScreeningResult, now: datetime) -> None:
        self.require_stage((Stage.SCREENING,), "a screening result can be recorded")
        ids = [score.instrument_id for score in action.scores]
        if len(ids) != len(set(ids)):
            raise Rejected("each instrument may be scored once per screening")

    def check_set_plan(self, action: SetPlan, now: datetime) -> None:
        self.require_stage(
            (Stage.PLANNING, *OPEN_STAGES_AFTER_PLAN), "a return-to-work plan can be set"
        )
        known = {iv.intervention_id: iv for iv in self.state.interventions}
        for planned in action.interventions:
            existing = known.get(planned.intervention_id) if planned.intervention_id else None
            if existing is not None and not existing.is_open:
                raise Rejected(
                    f"intervention {planned.intervention_id} is already {existing.status.value}"
                )
            if existing is None:
                self.check_new_intervention(planned, now)
        ids = [p.intervention_id for p in action.interventions if p.intervention_id]
        if len(ids) != len(set(ids)):
            raise Rejected("an intervention is listed twice in the plan")
        if len(action.adopt_next_steps) != len(set(action.adopt_next_steps)):
            raise Rejected("an agreed next step is listed twice in the plan")
        for step_id in action.adopt_next_steps:
            step = self.next_step(step_id)
            if step.intervention_id is not None:
                raise Rejected(f"agreed next step {step_id} is already part of the plan")
            self.check_new_intervention(planned_of(step), now)

    def check_add_intervention(self, action: AddIntervention, now: datetime) -> None:
        self.require_stage(OPEN_STAGES_AFTER_PLAN, "an intervention can be added")
        planned = action.intervention
        if planned.intervention_id and any(
            iv.intervention_id == planned.intervention_id for iv in self.state.interventions
        ):
            raise Rejected(f"intervention {planned.intervention_id} already exists")
        self.check_new_intervention(planned, now)

    def check_complete_intervention(self, action: CompleteIntervention, now: datetime) -> None:
        self.require_open_intervention(action.intervention_id)

    def check_cancel_intervention(self, action: CancelIntervention, now: datetime) -> None:
        self.require_open_intervention(action.intervention_id)

    def check_request_information(self, action: RequestInformation, now: datetime) -> None:
        self.require_stage(INFORMATION_STAGES, "information can be requested")
        party = action.party.value
        consent = self.state.consents.get(action.party)
        if consent is None:
            raise Rejected(
                f"information may be requested from {party} only with the employee's consent; "
                "record the consent first"
            )
        if not consent:
            raise Rejected(
                f"the employee has withdrawn consent for {party}; information may not be "
                "requested from it"
            )
        if action.due_on < local_date(now):
            raise Rejected("an information request's due date cannot lie in the past")

    def check_record_information_response(
        self, action: RecordInformationResponse, now: datetime
    ) -> None:
        request = self.require_open_information_request(action.request_id)
        today = local_date(now)
        received_on = action.received_on or today
        if received_on > today:
            raise Rejected("a response is recorded once it has been received")
        if received_on < request.requested_on:
            raise Rejected("a response cannot have been received before it was requested")

    def check_cancel_information_request(
        self, action: CancelInformationRequest, now: datetime
    ) -> None:
        self.require_open_information_request(action.request_id)

    def check_record_return_to_work_step(
        self, action: RecordReturnToWorkStep, now: datetime
    ) -> None:
        self.require_stage(OPEN_STAGES_AFTER_PLAN, "a return-to-work step can be recorded")
        s = self.state
        if not s.sick_spells:
            raise Rejected("no sick leave is recorded for this case; record it first")
        if s.returned_on is not None:
            raise Rejected("the full return to work is already recorded")
        if action.from_date > local_date(now):
            raise Rejected("a return-to-work step is recorded once it has begun")
        if action.from_date <= s.sick_spells[-1].start:
            raise Rejected("a return-to-work step must begin after the sick leave started")
        if s.return_steps:
            last = s.return_steps[-1]
            if action.extent <= last.extent:
                raise Rejected(
                    f"the employee already works {last.extent}%; a step must increase it "
                    "(new sick leave is reported with report_sick_leave)"
                )
            if action.from_date < last.from_date:
                raise Rejected("a return-to-work step cannot begin before the previous one")

    def check_report_sick_leave(self, action: ReportSickLeave, now: datetime) -> None:
        self.require_open()
        s = self.state
        if s.returned_on is None:
            raise Rejected(
                "the employee has not returned to work in full; correct the current sick leave "
                "with set_sick_leave"
            )
        if action.start < s.returned_on:
            raise Rejected("new sick leave cannot start before the return to work")
        if action.start > local_date(now):
            raise Rejected("new sick leave is reported once it has begun")
        window_end = planning.follow_up_window_end(s, self.policy)
        if action.start > window_end:
            raise Rejected(
                f"the follow-up window ended on {window_end.isoformat()}; new sick leave after "
                "it opens a new case"
            )

    def check_set_sick_leave(self, action: SetSickLeave, now: datetime) -> None:
        self.require_open()
        s = self.state
        if s.returned_on is not None:
            raise Rejected(
                "the employee has returned to work; new sick leave is reported with "
                "report_sick_leave"
            )
        if not s.sick_spells and action.start is None:
            raise Rejected("no sick leave is recorded yet; give its start")
        start = action.start or s.sick_spells[-1].start
        if start > local_date(now):
            raise Rejected("sick leave is recorded once it has begun")
        if len(s.sick_spells) > 1:
            before = s.sick_spells[-2].end
            if before is not None and start <= before:
                raise Rejected("the sick leave cannot start before the previous spell ended")
        expected_end = action.expected_end or s.expected_end
        if expected_end is not None and expected_end < start:
            raise Rejected("the expected end is before the sick leave's start")
        if s.sick_spells and start == s.sick_spells[-1].start and expected_end == s.expected_end:
            raise Rejected("nothing changes: the sick leave already has these dates")

    def check_record_deadline_met(self, action: RecordDeadlineMet, now: datetime) -> None:
        self.require_open()
        deadline = self.deadline(action.kind)
        if deadline is None:
            raise Rejected(f"the case has no deadline {action.kind!r}")
        if deadline.met_on is not None:
            raise Rejected(f"deadline {action.kind} is already met")
        if action.met_on is not None and action.met_on > local_date(now):
            raise Rejected("a deadline is met on a day that has come")

    def check_close_case(self, action: CloseCase, now: datetime) -> None:
        self.require_open()
        if action.outcome in RETURNED_OUTCOMES and self.state.returned_on is None:
            raise Rejected(
                f"outcome {action.outcome.value} needs the full return to work; record a 100% "
                "return-to-work step first"
            )

    def check_reschedule_meeting(self, action: RescheduleMeeting, now: datetime) -> None:
        meeting = self.require_unheld_meeting("rescheduled")
        booking = self.state.team_booking
        if booking is None or not booking.assigned:
            raise Rejected(
                "this joint meeting was booked by hand; book the new time with book_joint_meeting"
            )
        if now >= meeting.starts_at:
            raise Rejected(
                "the joint meeting has started; record its outcome or that the employee "
                "did not come"
            )

    def check_cancel_meeting(self, action: CancelMeeting, now: datetime) -> None:
        if planning.waiting_for_team(self.state):
            self.require_open()
            return
        self.require_unheld_meeting("cancelled")

    def check_record_no_show(self, action: RecordNoShow, now: datetime) -> None:
        meeting = self.require_unheld_meeting("marked as missed")
        if now < meeting.starts_at:
            raise Rejected(
                "the joint meeting has not started yet; a no-show is recorded after "
                f"{meeting.starts_at.isoformat()}"
            )

    def check_choose_fhv(self, action: ChooseFhv, now: datetime) -> None:
        self.require_open()
        s = self.state
        if s.fhv_chosen == action.chosen:
            raise Rejected(
                "occupational health is already "
                + ("chosen" if action.chosen else "not chosen")
                + " for this case"
            )
        if action.chosen and not s.consents.get(ConsentParty.FHV, False):
            raise Rejected(
                "occupational health may take part only with the employee's consent; "
                "record the consent first"
            )

    # ------------------------------------------------------------------ shared rules

    def require_open(self) -> None:
        if self.state.stage == Stage.CLOSED:
            raise Rejected("the case is closed")

    def require_stage(self, stages: tuple[Stage, ...], what: str) -> None:
        self.require_open()
        stage = self.state.stage
        if stage not in stages:
            allowed = ", ".join(s.value for s in stages)
            raise Rejected(f"{what} only in stage {allowed}; the case is in stage {stage.value}")

    def require_unheld_meeting(self, what: str) -> MeetingBooking:
        self.require_stage((Stage.JOINT_MEETING,), f"a joint meeting can be {what}")
        s = self.state
        if s.meeting is None:
            raise Rejected("no joint meeting is booked")
        if s.meeting_held:
            raise Rejected("the outcome of this joint meeting is already recorded")
        return s.meeting

    def check_attendance(
        self,
        attended: tuple[str, ...],
        held_by: str | None,
        violence_screening: ScreeningScore | None,
    ) -> None:
        for party in ("fk", "fhv"):
            if party in attended and not self.state.consents.get(ConsentParty(party), False):
                raise Rejected(f"{party} cannot have attended without the employee's consent")
        if held_by is not None and held_by not in attended:
            raise Rejected("the party that held the meeting must have attended it")
        if violence_screening is not None:
            if "employee" not in attended:
                raise Rejected("the questions are asked only of an employee who attended")
            if not violence_screening.protected:
                raise Rejected("the questions asked at a meeting must be a protected set")

    def check_new_intervention(self, planned: PlannedIntervention, now: datetime) -> None:
        if planned.due_on < local_date(now):
            raise Rejected("an intervention's due date cannot lie in the past")

    def intervention(self, intervention_id: UUID) -> InterventionState:
        for iv in self.state.interventions:
            if iv.intervention_id == intervention_id:
                return iv
        raise Rejected(f"the case has no intervention {intervention_id}")

    def require_open_intervention(self, intervention_id: UUID) -> None:
        self.require_open()
        iv = self.intervention(intervention_id)
        if not iv.is_open:
            raise Rejected(f"intervention {intervention_id} is already {iv.status.value}")

    def information_request(self, request_id: UUID) -> InformationRequestState:
        for request in self.state.information_requests:
            if request.request_id == request_id:
                return request
        raise Rejected(f"the case has no information request {request_id}")

    def require_open_information_request(self, request_id: UUID) -> InformationRequestState:
        self.require_open()
        request = self.information_request(request_id)
        if not request.is_open:
            raise Rejected(f"information request {request_id} is already {request.status.value}")
        return request

    def next_step(self, step_id: UUID) -> NextStepState:
        for step in self.state.next_steps:
            if step.step_id == step_id:
                return step
        raise Rejected(f"the case has no agreed next step {step_id}")

    def deadline(self, kind: str) -> TrackedDeadline | None:
        return next((d for d in self.state.deadlines if d.kind == kind), None)

    def today(self, now: datetime) -> date:
        return local_date(now)

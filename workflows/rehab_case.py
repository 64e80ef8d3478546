"""RehabCaseWorkflow: one employee's rehabilitation case, from identification to closure.

The run loop sleeps until the next deadline instant (models.deadlines) or until an action
changes the state, fires whatever is due, and continues as new at stage boundaries or when
Temporal suggests it. Coordinator actions are updates: a validator rejects an action that
does not fit the case (history and state unchanged), the handler changes the state and
records the change, with its notifications, through one idempotent activity.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, ChildWorkflowError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.meetings import MeetingTeamDirectory
    from activities.records import CaseRecords
    from channels.message import NotificationType, RecipientRole
    from models.actions import (
        SAFETY_SUPPORT_KIND,
        AbsenceNews,
        AddIntervention,
        AgreedNextStep,
        BookJointMeeting,
        CancelIntervention,
        CaseActionResult,
        CloseCase,
        CompleteIntervention,
        InterventionFinish,
        InterventionInput,
        InterventionOverdueNotice,
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
        PARTY_RECIPIENT,
        RETURNED_OUTCOMES,
        CancelReason,
        CaseChange,
        CaseInput,
        CaseProjection,
        CaseResult,
        CaseState,
        CaseView,
        ConsentParty,
        ConsentRecord,
        DeadlinesView,
        ErasureRequest,
        InformationRequestState,
        InformationRequestStatus,
        InterventionOwner,
        InterventionState,
        InterventionStatus,
        MeetingBooking,
        MeetingRecord,
        NextStepRecord,
        NextStepState,
        NotificationRequest,
        OpenAction,
        OpenActionsView,
        OpenCaseRecord,
        ProtectedTrackView,
        ReturnStep,
        ScreeningRecord,
        Stage,
        Track,
        information_request_workflow_id,
        intervention_workflow_id,
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
    from models.information_requests import (
        CancelInformationRequest,
        InformationRequestFinish,
        InformationRequestInput,
        InformationRequestOverdueNotice,
        RecordInformationResponse,
        RequestInformation,
    )
    from models.instruments import ScreeningScore
    from models.meetings import (
        CancelMeeting,
        ChooseFhv,
        MeetingRelease,
        MeetingRequest,
        RecordNoShow,
        RescheduleMeeting,
        SlotAssignment,
        TeamBooking,
        TeamLookup,
        team_workflow_id,
    )
    from models.search_attributes import REHAB_OVERDUE, REHAB_STAGE, REHAB_UNIT
    from models.sick_leave import (
        SickPeriod,
        SickSpell,
        date_of_sick_day,
        deadline_dates,
        expected_sick_days,
    )
    from workflows.information_request import InformationRequestWorkflow
    from workflows.intervention import InterventionWorkflow
    from workflows.meeting_team import MeetingTeamWorkflow

# Record-store writes: retried with backoff for as long as the database is away,
# because a case must never stop just because PostgreSQL restarted.
RECORD_STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
)
RECORD_STORE_TIMEOUT = timedelta(seconds=30)
# Rejections raised by a handler that re-checks its validator's rule (two actions in one
# workflow task can both pass validation; the second then fails here, state unchanged).
INVALID_ACTION = "InvalidCaseAction"
# Cases opened by the first version (which only recorded the case and waited) keep that path.
LIFECYCLE_PATCH = "case-lifecycle"
# Cases opened before joint-meeting teams existed book their meetings by hand only.
TEAM_MEETINGS_PATCH = "team-meetings"

# Absence news keys remembered against resends; a monitor resends only its latest news.
_NEWS_KEPT = 20

_OPEN_STAGES_AFTER_PLAN = (Stage.INTERVENTIONS, Stage.RETURN_TO_WORK)
# Information is gathered from the joint meeting on (DESIGN.md: planning, Falun).
_INFORMATION_STAGES = (
    Stage.JOINT_MEETING,
    Stage.SCREENING,
    Stage.PLANNING,
    *_OPEN_STAGES_AFTER_PLAN,
)

# The safety support a violence disclosure starts: due within a week, reminded three days
# before. The coordinator owns it; nobody else learns that it exists.
SAFETY_SUPPORT_DUE_DAYS = 7
SAFETY_SUPPORT_REMIND_DAYS_BEFORE = 3

_STEP_NOTICE: dict[DeadlineStep, tuple[tuple[NotificationType, RecipientRole], ...]] = {
    DeadlineStep.DUE: ((NotificationType.DEADLINE_DUE, RecipientRole.COORDINATOR),),
    DeadlineStep.OVERDUE: ((NotificationType.DEADLINE_OVERDUE, RecipientRole.COORDINATOR),),
    DeadlineStep.REMINDER: ((NotificationType.DEADLINE_OVERDUE, RecipientRole.COORDINATOR),),
    DeadlineStep.ESCALATION: (
        (NotificationType.DEADLINE_ESCALATION, RecipientRole.COORDINATOR),
        (NotificationType.DEADLINE_ESCALATION, RecipientRole.MANAGER),
    ),
}


class _Rejected(ValueError):
    """An action that does not fit the case; the message is shown to the coordinator."""


def _planned(step: NextStepState) -> PlannedIntervention:
    """An agreed next step as the plan's intervention."""
    return PlannedIntervention(
        track=step.track, kind=step.kind, owner=step.owner, due_on=step.due_on
    )


@workflow.defn
class RehabCaseWorkflow:
    @workflow.init
    def __init__(self, input: CaseInput) -> None:
        self._input = input
        self._policy = input.policy
        self._record_lock = asyncio.Lock()
        self._wake = False
        # What this run last upserted; each run publishes once, then only on change.
        self._published: tuple[Stage, bool] | None = None
        # Interventions this run started and that are still running (see _may_continue_as_new).
        self._running_children: set[UUID] = set()
        if input.carried is not None:
            self._state = input.carried.model_copy(deep=True)
        else:
            self._state = CaseState()
            if input.sick_start is not None:
                self._state.sick_spells = [SickSpell(start=input.sick_start)]
                self._state.period_no = 1
                self._state.expected_end = input.expected_end
                if self._conditional_kinds(self._state.expected_end):
                    self._state.expectation_recorded_on = local_date(input.opened_at)
                self._replan()
        self._stage_at_start = self._state.stage

    # ------------------------------------------------------------------ the run loop

    @workflow.run
    async def run(self, input: CaseInput) -> CaseResult:
        s = self._state
        if not s.recorded:
            await workflow.execute_activity_method(
                CaseRecords.open_case,
                OpenCaseRecord(
                    case_id=input.case_id,
                    workflow_id=workflow.info().workflow_id,
                    employee_pseudonym=input.employee_pseudonym,
                    unit_code=input.unit_code,
                    trigger=input.trigger,
                    opened_at=input.opened_at,
                    policy_id=self._policy.policy_id,
                    policy_version=self._policy.version,
                ),
                start_to_close_timeout=RECORD_STORE_TIMEOUT,
                retry_policy=RECORD_STORE_RETRY,
            )
            workflow.upsert_search_attributes(
                [REHAB_STAGE.value_set(s.stage.value), REHAB_UNIT.value_set(input.unit_code)]
            )
            if not workflow.patched(LIFECYCLE_PATCH):
                # A case opened by the first, stub version only waits to be closed.
                s.recorded = True
                await workflow.wait_condition(lambda: s.stage == Stage.CLOSED)
                return CaseResult(case_id=input.case_id, stage=s.stage, outcome=s.outcome)
            await self._record("case_planned", self._sick_leave_detail())
            # Recorded means the API finds the case with its sick leave and deadlines.
            s.recorded = True
        self._publish()
        if (
            s.stage == Stage.IDENTIFIED
            and s.meeting is None
            and not s.team_looked_up
            and workflow.patched(TEAM_MEETINGS_PATCH)
        ):
            await self._ask_team_for_meeting("identified")
        while not s.erased:
            await self._fire_due()
            if s.erased:
                break
            if self._may_continue_as_new():
                # Every handler finishes (and records) before the state is handed over; a
                # finishing handler may have started interventions, so ask again after.
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._may_continue_as_new():
                    workflow.continue_as_new(input.model_copy(update={"carried": s}))
            self._wake = False
            next_at = self._next_instant()
            timeout = None if next_at is None else next_at - workflow.now()
            if timeout is not None and timeout <= timedelta(0):
                continue
            try:
                await workflow.wait_condition(lambda: self._wake, timeout=timeout)
            except TimeoutError:
                pass
        await workflow.wait_condition(workflow.all_handlers_finished)
        return CaseResult(case_id=input.case_id, stage=s.stage, outcome=s.outcome)

    def _may_continue_as_new(self) -> bool:
        """At a stage boundary, or whenever Temporal suggests it.

        A stage boundary waits until the interventions this run started have finished, so
        each child reports its completion to the run that started it (the time-skipping
        test server also stops skipping time when a child outlives its parent's run:
        temporalio/sdk-java#1540). A suggestion does not wait: history size comes first,
        and the interventions, started with ABANDON, run on.
        """
        if workflow.info().is_continue_as_new_suggested():
            return True
        return self._state.stage != self._stage_at_start and not self._running_children

    async def _fire_due(self) -> None:
        """Record every deadline step, milestone and the erasure whose instant has come."""
        s = self._state
        while s.stage != Stage.CLOSED:
            fired = self._next_due_step(workflow.now())
            if fired is None:
                break
            deadline, step = fired
            deadline.fired.append(step)
            self._refresh_overdue()
            notice_type = (
                NotificationType.FOLLOW_UP_DUE
                if step == DeadlineStep.DUE and deadline.source == "follow_up"
                else None
            )
            await self._record(
                f"deadline_{step.value}",
                {"deadline": deadline.kind, "due_on": deadline.due_on.isoformat()},
                occurred_at=deadline.instant(step, self._policy),
                notifications=tuple(
                    NotificationRequest(
                        notification_type=notice_type or notification_type,
                        recipient_role=role,
                        due_on=deadline.due_on,
                        deadline_kind=deadline.kind,
                    )
                    for notification_type, role in _STEP_NOTICE[step]
                ),
            )
        long_term_at = self._long_term_instant()
        if long_term_at is not None and long_term_at <= workflow.now():
            s.long_term = True
            await self._record(
                "long_term_track_entered",
                {"sick_day": self._policy.long_term_trigger_day},
                occurred_at=long_term_at,
            )
        erase_at = self._erase_instant()
        if erase_at is not None and erase_at <= workflow.now():
            await workflow.execute_activity_method(
                CaseRecords.erase_personal_data,
                ErasureRequest(
                    case_id=self._input.case_id,
                    workflow_id=workflow.info().workflow_id,
                    employee_pseudonym=self._input.employee_pseudonym,
                    step_key=self._next_step_key("personal_data_erased"),
                    occurred_at=erase_at,
                ),
                start_to_close_timeout=RECORD_STORE_TIMEOUT,
                retry_policy=RECORD_STORE_RETRY,
            )
            s.erased = True
            self._publish()

    def _next_due_step(self, now: datetime) -> tuple[TrackedDeadline, DeadlineStep] | None:
        for deadline in sorted(self._state.deadlines, key=lambda d: d.due_on):
            steps = deadline.steps_to_fire(self._policy, now)
            if steps:
                return deadline, steps[0]
        return None

    def _next_instant(self) -> datetime | None:
        s = self._state
        if s.stage == Stage.CLOSED:
            return self._erase_instant()
        instants = [
            step[1]
            for deadline in s.deadlines
            if (step := deadline.next_step(self._policy)) is not None
        ]
        if (long_term_at := self._long_term_instant()) is not None:
            instants.append(long_term_at)
        return min(instants, default=None)

    def _long_term_instant(self) -> datetime | None:
        s = self._state
        if s.long_term or s.stage == Stage.CLOSED or not s.sick_spells:
            return None
        day = date_of_sick_day(self._period(), self._policy.long_term_trigger_day)
        return None if day is None else start_of_day(day)

    def _erase_instant(self) -> datetime | None:
        s = self._state
        if s.closed_at is None or s.erased:
            return None
        # Kept through the last day of the retention period, erased when it ends.
        return end_of_day(self._policy.retention_after_closure.after(local_date(s.closed_at)))

    # ------------------------------------------------------------------ queries

    @workflow.query
    def state(self) -> CaseView:
        s = self._state
        next_deadline = self._next_deadline()
        return CaseView(
            case_id=self._input.case_id,
            unit_code=self._input.unit_code,
            trigger=self._input.trigger,
            stage=s.stage,
            recorded=s.recorded,
            policy_id=self._policy.policy_id,
            policy_version=self._policy.version,
            sick_start=s.sick_spells[0].start if s.sick_spells else None,
            expected_end=s.expected_end,
            returned_on=s.returned_on,
            overdue=s.overdue,
            next_deadline=None if next_deadline is None else view_of(next_deadline),
            meeting=s.meeting.slot if s.meeting else None,
            consents=dict(s.consents),
            # Operations staff see this view: the protected track is not in it.
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
            meeting_requested=self._waiting_for_team(),
            fhv_chosen=s.fhv_chosen,
            no_shows=s.no_shows,
        )

    @workflow.query
    def deadlines(self) -> DeadlinesView:
        return DeadlinesView(deadlines=self._deadline_views())

    @workflow.query
    def open_actions(self) -> OpenActionsView:
        """The coordinator's tasks, including the protected track's."""
        return OpenActionsView(actions=tuple(self._open_actions(include_protected=True)))

    @workflow.query
    def protected_track(self) -> ProtectedTrackView:
        """For the coordinator: whether a disclosure opened the track, and its interventions."""
        s = self._state
        return ProtectedTrackView(
            disclosed=s.violence_disclosed,
            interventions=tuple(iv.model_copy() for iv in s.interventions if iv.protected),
        )

    @workflow.update
    async def wait_until_recorded(self) -> CaseView:
        """Returns once the case is in the record store, so the API can answer consistently."""
        await workflow.wait_condition(lambda: self._state.recorded)
        return self.state()

    # ------------------------------------------------------------------ updates

    @workflow.update
    async def record_consent(self, action: RecordConsent) -> CaseActionResult:
        self._recheck(self._validate_record_consent, action)
        s = self._state
        s.consents[action.party] = action.given
        notifications: tuple[NotificationRequest, ...] = ()
        if action.given:
            notifications = self._invite_to_team_meeting(action.party)
        meeting = s.meeting
        withdrawn_from_meeting = (
            not action.given
            and meeting is not None
            and not s.meeting_held
            and action.party in meeting.invited
        )
        if withdrawn_from_meeting and meeting is not None:
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
        withdrawn_requests = [
            r
            for r in s.information_requests
            if not action.given and r.party == action.party and r.is_open
        ]
        detail: dict[str, Any] = {"party": action.party.value}
        if withdrawn_requests:
            for request in withdrawn_requests:
                request.status = InformationRequestStatus.CANCELLED
                request.cancel_reason = CancelReason.CONSENT_WITHDRAWN
            self._refresh_overdue()
            detail["information_requests_cancelled"] = [
                str(r.request_id) for r in withdrawn_requests
            ]
        await self._record(
            "consent_given" if action.given else "consent_withdrawn",
            detail,
            consent=ConsentRecord(party=action.party, given=action.given),
            notifications=notifications,
        )
        await self._finish_information_requests(
            withdrawn_requests,
            InformationRequestFinish(
                status=InformationRequestStatus.CANCELLED,
                cancel_reason=CancelReason.CONSENT_WITHDRAWN,
            ),
        )
        return self._result()

    @record_consent.validator
    def _validate_record_consent(self, action: RecordConsent) -> None:
        self._require_open()
        if self._state.consents.get(action.party) == action.given:
            word = "given" if action.given else "withdrawn"
            raise _Rejected(f"consent for {action.party.value} is already {word}")

    @workflow.update
    async def book_joint_meeting(self, action: BookJointMeeting) -> CaseActionResult:
        self._recheck(self._validate_book_joint_meeting, action)
        s = self._state
        previous = s.meeting
        meeting_id = (
            action.meeting_id or (previous.meeting_id if previous else None) or workflow.uuid4()
        )
        s.meeting = MeetingBooking(
            meeting_id=meeting_id,
            starts_at=action.starts_at,
            ends_at=action.ends_at,
            slot_id=action.slot_id,
            invited=list(dict.fromkeys(action.invite)),
            sequence=0 if previous is None else previous.sequence + 1,
        )
        s.stage = Stage.JOINT_MEETING
        notification_type = (
            NotificationType.MEETING_INVITATION
            if previous is None
            else NotificationType.MEETING_RESCHEDULED
        )
        roles = [RecipientRole.EMPLOYEE, RecipientRole.MANAGER, RecipientRole.COORDINATOR]
        roles += [PARTY_RECIPIENT[p] for p in s.meeting.invited if p in PARTY_RECIPIENT]
        await self._record(
            "joint_meeting_booked" if previous is None else "joint_meeting_rebooked",
            {
                "meeting_id": str(meeting_id),
                "starts_at": action.starts_at.isoformat(),
                "invited": [p.value for p in s.meeting.invited],
            },
            meeting=self._meeting_record("booked"),
            notifications=tuple(
                NotificationRequest(
                    notification_type=notification_type, recipient_role=r, meeting=s.meeting.slot
                )
                for r in roles
            ),
        )
        # Booked by hand: the team's seat (or place in its queue) is given up.
        await self._leave_team()
        return self._result(meeting_id)

    @book_joint_meeting.validator
    def _validate_book_joint_meeting(self, action: BookJointMeeting) -> None:
        self._require_stage(
            (Stage.IDENTIFIED, Stage.JOINT_MEETING), "a joint meeting can be booked"
        )
        if action.starts_at <= workflow.now():
            raise _Rejected("a joint meeting must be booked for a time in the future")
        for party in action.invite:
            if not self._state.consents.get(party, False):
                raise _Rejected(
                    f"{party.value} may be invited only with the employee's consent; "
                    "record the consent first"
                )

    @workflow.update
    async def record_meeting_outcome(self, action: RecordMeetingOutcome) -> CaseActionResult:
        self._recheck(self._validate_record_meeting_outcome, action)
        s = self._state
        meeting = s.meeting
        assert meeting is not None
        s.meeting_held = True
        s.meetings_held += 1
        s.reinforced_support = action.reinforced_support
        s.stage = Stage.SCREENING
        self._action_done("record_meeting_outcome")
        steps = self._agree_next_steps(action.next_steps, meeting.meeting_id)
        safety_support = self._open_protected_track(action.violence_screening)
        detail: dict[str, Any] = {
            "attended": sorted(set(action.attended)),
            "needs": sorted({t.value for t in action.needs}),
            "reinforced_support": action.reinforced_support,
        }
        if action.held_by is not None:
            detail["held_by"] = action.held_by
        if steps:
            detail["next_steps"] = len(steps)
        await self._record(
            "joint_meeting_held",
            detail,
            meeting=self._meeting_record(
                "held",
                attended=tuple(sorted(set(action.attended))),
                reinforced_support=action.reinforced_support,
                held_by=action.held_by,
            ),
            screenings=self._questions_asked(
                action.violence_screening, meeting.meeting_id, action.held_by
            ),
            next_steps=tuple(self._next_step_record(step) for step in steps),
        )
        await self._start_interventions(safety_support)
        # Never the safety support's id: whoever recorded the meeting learns nothing of it.
        return self._result(*(step.step_id for step in steps))

    @record_meeting_outcome.validator
    def _validate_record_meeting_outcome(self, action: RecordMeetingOutcome) -> None:
        self._require_stage((Stage.JOINT_MEETING,), "a meeting outcome can be recorded")
        s = self._state
        if s.meeting is None:
            raise _Rejected("no joint meeting is booked; book one before recording its outcome")
        if s.meeting_held:
            raise _Rejected("the outcome of this joint meeting is already recorded")
        if workflow.now() < s.meeting.starts_at:
            raise _Rejected(
                "the joint meeting has not started yet; record its outcome after "
                f"{s.meeting.starts_at.isoformat()}"
            )
        self._check_attendance(action.attended, action.held_by, action.violence_screening)
        for step in action.next_steps:
            if step.due_on < self._today():
                raise _Rejected("an agreed next step's due date cannot lie in the past")

    @workflow.update
    async def record_follow_up_meeting(self, action: RecordFollowUpMeeting) -> CaseActionResult:
        """A follow-up meeting: attendance, who held it, and the violence-exposure questions
        asked again — at every meeting, by whichever party holds it."""
        self._recheck(self._validate_record_follow_up_meeting, action)
        s = self._state
        s.meetings_held += 1
        meeting_id = workflow.uuid4()
        attended = tuple(sorted(set(action.attended)))
        safety_support = self._open_protected_track(action.violence_screening)
        await self._record(
            "meeting_follow_up_held",
            {
                "meeting_id": str(meeting_id),
                "attended": list(attended),
                "held_by": action.held_by,
            },
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
            screenings=self._questions_asked(action.violence_screening, meeting_id, action.held_by),
        )
        await self._start_interventions(safety_support)
        return self._result(meeting_id)

    @record_follow_up_meeting.validator
    def _validate_record_follow_up_meeting(self, action: RecordFollowUpMeeting) -> None:
        self._require_stage(_OPEN_STAGES_AFTER_PLAN, "a follow-up meeting can be recorded")
        if action.starts_at > workflow.now():
            raise _Rejected("a follow-up meeting is recorded once it has started")
        self._check_attendance(action.attended, action.held_by, action.violence_screening)

    @workflow.update
    async def record_screening_result(self, action: RecordScreeningResult) -> CaseActionResult:
        self._recheck(self._validate_record_screening_result, action)
        s = self._state
        s.screened = True
        s.stage = Stage.PLANNING
        # Reinforced support is recorded with the meeting, which FK and the manager share; a
        # disclosure gets its support from the protected track instead, so it cannot be
        # inferred from the flag.
        if any(score.suggests_reinforced_support for score in action.scores if not score.protected):
            s.reinforced_support = True
        safety_support: list[InterventionState] = []
        for score in action.scores:
            safety_support += self._open_protected_track(score)
        # The timeline says which instruments were used, never scores or disclosures; it is
        # append-only and outlives erasure, so the protected set (always asked) is left out.
        await self._record(
            "screening_recorded",
            {
                "instruments": sorted(
                    {score.instrument_id for score in action.scores if not score.protected}
                )
            },
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
        await self._start_interventions(safety_support)
        return self._result()

    @record_screening_result.validator
    def _validate_record_screening_result(self, action: RecordScreeningResult) -> None:
        self._require_stage((Stage.SCREENING,), "a screening result can be recorded")
        ids = [score.instrument_id for score in action.scores]
        if len(ids) != len(set(ids)):
            raise _Rejected("each instrument may be scored once per screening")

    @workflow.update
    async def set_plan(self, action: SetPlan) -> CaseActionResult:
        self._recheck(self._validate_set_plan, action)
        s = self._state
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
        adopted = [self._next_step(step_id) for step_id in action.adopt_next_steps]
        s.plan_set = True
        if s.stage == Stage.PLANNING:
            s.stage = Stage.INTERVENTIONS
        self._action_done("set_plan")
        started = self._add_interventions(new)
        for step, iv in zip(
            adopted, self._add_interventions(list(map(_planned, adopted))), strict=True
        ):
            step.intervention_id = iv.intervention_id
            started.append(iv)
        for iv in to_cancel:
            iv.status = InterventionStatus.CANCELLED
        planned = [iv for iv in s.interventions if iv.is_open and not iv.protected]
        await self._record(
            "plan_revised" if revision else "plan_set",
            {
                "interventions": len(planned),
                "tracks": sorted({iv.track.value for iv in planned}),
            },
            next_steps=tuple(self._next_step_record(step) for step in adopted),
        )
        await self._start_interventions(started)
        await self._finish_interventions(
            to_cancel,
            InterventionFinish(
                status=InterventionStatus.CANCELLED, cancel_reason=CancelReason.REPLACED
            ),
        )
        return self._result(*(iv.intervention_id for iv in started))

    @set_plan.validator
    def _validate_set_plan(self, action: SetPlan) -> None:
        self._require_stage(
            (Stage.PLANNING, *_OPEN_STAGES_AFTER_PLAN), "a return-to-work plan can be set"
        )
        known = {iv.intervention_id: iv for iv in self._state.interventions}
        for planned in action.interventions:
            existing = known.get(planned.intervention_id) if planned.intervention_id else None
            if existing is not None and not existing.is_open:
                raise _Rejected(
                    f"intervention {planned.intervention_id} is already {existing.status.value}"
                )
            if existing is None:
                self._check_new_intervention(planned)
        ids = [p.intervention_id for p in action.interventions if p.intervention_id]
        if len(ids) != len(set(ids)):
            raise _Rejected("an intervention is listed twice in the plan")
        if len(action.adopt_next_steps) != len(set(action.adopt_next_steps)):
            raise _Rejected("an agreed next step is listed twice in the plan")
        for step_id in action.adopt_next_steps:
            step = self._next_step(step_id)
            if step.intervention_id is not None:
                raise _Rejected(f"agreed next step {step_id} is already part of the plan")
            self._check_new_intervention(_planned(step))

    @workflow.update
    async def add_intervention(self, action: AddIntervention) -> CaseActionResult:
        self._recheck(self._validate_add_intervention, action)
        started = self._add_interventions([action.intervention])
        await self._record(
            "intervention_added",
            {
                "intervention_id": str(started[0].intervention_id),
                "track": started[0].track.value,
            },
        )
        await self._start_interventions(started)
        return self._result(started[0].intervention_id)

    @add_intervention.validator
    def _validate_add_intervention(self, action: AddIntervention) -> None:
        self._require_stage(_OPEN_STAGES_AFTER_PLAN, "an intervention can be added")
        planned = action.intervention
        if planned.intervention_id and any(
            iv.intervention_id == planned.intervention_id for iv in self._state.interventions
        ):
            raise _Rejected(f"intervention {planned.intervention_id} already exists")
        self._check_new_intervention(planned)

    @workflow.update
    async def complete_intervention(self, action: CompleteIntervention) -> CaseActionResult:
        self._recheck(self._validate_complete_intervention, action)
        iv = self._intervention(action.intervention_id)
        iv.status = InterventionStatus.COMPLETED
        iv.outcome = action.outcome
        self._refresh_overdue()
        await self._record(
            "intervention_outcome_recorded",
            {"intervention_id": str(iv.intervention_id), "outcome": action.outcome.value},
        )
        await self._finish_interventions(
            [iv], InterventionFinish(status=InterventionStatus.COMPLETED, outcome=action.outcome)
        )
        return self._result()

    @complete_intervention.validator
    def _validate_complete_intervention(self, action: CompleteIntervention) -> None:
        self._require_open_intervention(action.intervention_id)

    @workflow.update
    async def cancel_intervention(self, action: CancelIntervention) -> CaseActionResult:
        self._recheck(self._validate_cancel_intervention, action)
        iv = self._intervention(action.intervention_id)
        iv.status = InterventionStatus.CANCELLED
        self._refresh_overdue()
        await self._record(
            "intervention_withdrawn",
            {"intervention_id": str(iv.intervention_id), "reason": action.reason.value},
        )
        await self._finish_interventions(
            [iv],
            InterventionFinish(status=InterventionStatus.CANCELLED, cancel_reason=action.reason),
        )
        return self._result()

    @cancel_intervention.validator
    def _validate_cancel_intervention(self, action: CancelIntervention) -> None:
        self._require_open_intervention(action.intervention_id)

    @workflow.update
    async def request_information(self, action: RequestInformation) -> CaseActionResult:
        self._recheck(self._validate_request_information, action)
        request = InformationRequestState(
            request_id=workflow.uuid4(),
            party=action.party,
            due_on=action.due_on,
            remind_days_before=action.remind_days_before,
            requested_on=self._today(),
        )
        self._state.information_requests.append(request)
        await self._record(
            "information_requested",
            {
                "request_id": str(request.request_id),
                "party": request.party.value,
                "due_on": request.due_on.isoformat(),
            },
        )
        await self._start_information_request(request)
        return self._result(request.request_id)

    @request_information.validator
    def _validate_request_information(self, action: RequestInformation) -> None:
        self._require_stage(_INFORMATION_STAGES, "information can be requested")
        party = action.party.value
        consent = self._state.consents.get(action.party)
        if consent is None:
            raise _Rejected(
                f"information may be requested from {party} only with the employee's consent; "
                "record the consent first"
            )
        if not consent:
            raise _Rejected(
                f"the employee has withdrawn consent for {party}; information may not be "
                "requested from it"
            )
        if action.due_on < self._today():
            raise _Rejected("an information request's due date cannot lie in the past")

    @workflow.update
    async def record_information_response(
        self, action: RecordInformationResponse
    ) -> CaseActionResult:
        self._recheck(self._validate_record_information_response, action)
        request = self._information_request(action.request_id)
        request.status = InformationRequestStatus.ANSWERED
        request.received_on = action.received_on or self._today()
        self._refresh_overdue()
        await self._record(
            "information_response_recorded",
            {
                "request_id": str(request.request_id),
                "party": request.party.value,
                "received_on": request.received_on.isoformat(),
                "late": request.received_on > request.due_on,
            },
        )
        await self._finish_information_requests(
            [request],
            InformationRequestFinish(
                status=InformationRequestStatus.ANSWERED, received_on=request.received_on
            ),
        )
        return self._result()

    @record_information_response.validator
    def _validate_record_information_response(self, action: RecordInformationResponse) -> None:
        request = self._require_open_information_request(action.request_id)
        received_on = action.received_on or self._today()
        if received_on > self._today():
            raise _Rejected("a response is recorded once it has been received")
        if received_on < request.requested_on:
            raise _Rejected("a response cannot have been received before it was requested")

    @workflow.update
    async def cancel_information_request(
        self, action: CancelInformationRequest
    ) -> CaseActionResult:
        self._recheck(self._validate_cancel_information_request, action)
        request = self._information_request(action.request_id)
        request.status = InformationRequestStatus.CANCELLED
        request.cancel_reason = action.reason
        self._refresh_overdue()
        await self._record(
            "information_request_withdrawn",
            {
                "request_id": str(request.request_id),
                "party": request.party.value,
                "reason": action.reason.value,
            },
        )
        await self._finish_information_requests(
            [request],
            InformationRequestFinish(
                status=InformationRequestStatus.CANCELLED, cancel_reason=action.reason
            ),
        )
        return self._result()

    @cancel_information_request.validator
    def _validate_cancel_information_request(self, action: CancelInformationRequest) -> None:
        self._require_open_information_request(action.request_id)

    @workflow.update
    async def record_return_to_work_step(self, action: RecordReturnToWorkStep) -> CaseActionResult:
        self._recheck(self._validate_record_return_to_work_step, action)
        s = self._state
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
            self._replan()
            for number, offset in enumerate(self._policy.follow_ups_after_return, start=1):
                s.deadlines.append(
                    TrackedDeadline(
                        kind=f"follow_up_{number}",
                        source="follow_up",
                        description=f"Follow-up {number} after the return to work",
                        due_on=offset.after(action.from_date),
                    )
                )
            self._refresh_overdue()
        await self._record(
            "return_to_work_step",
            {"extent": action.extent, "from_date": action.from_date.isoformat()},
        )
        return self._result()

    @record_return_to_work_step.validator
    def _validate_record_return_to_work_step(self, action: RecordReturnToWorkStep) -> None:
        self._require_stage(_OPEN_STAGES_AFTER_PLAN, "a return-to-work step can be recorded")
        s = self._state
        if not s.sick_spells:
            raise _Rejected("no sick leave is recorded for this case; record it first")
        if s.returned_on is not None:
            raise _Rejected("the full return to work is already recorded")
        if action.from_date > self._today():
            raise _Rejected("a return-to-work step is recorded once it has begun")
        if action.from_date <= s.sick_spells[-1].start:
            raise _Rejected("a return-to-work step must begin after the sick leave started")
        if s.return_steps:
            last = s.return_steps[-1]
            if action.extent <= last.extent:
                raise _Rejected(
                    f"the employee already works {last.extent}%; a step must increase it "
                    "(new sick leave is reported with report_sick_leave)"
                )
            if action.from_date < last.from_date:
                raise _Rejected("a return-to-work step cannot begin before the previous one")

    @workflow.update
    async def report_sick_leave(self, action: ReportSickLeave) -> CaseActionResult:
        self._recheck(self._validate_report_sick_leave, action)
        return await self._report_sick_leave(action)

    async def _report_sick_leave(self, action: ReportSickLeave) -> CaseActionResult:
        s = self._state
        previous_end = s.sick_spells[-1].end
        assert previous_end is not None
        continues = (action.start - previous_end).days <= self._policy.relapse_gap_days
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
            self._today() if self._conditional_kinds(action.expected_end) else None
        )
        self._replan()
        await self._record(
            "relapse_reported",
            {
                "relapse_count": s.relapse_count,
                "continues_period": continues,
                **self._sick_leave_detail(),
            },
        )
        # The held meeting's seat is long past; the relapse needs a new meeting.
        s.team_booking = None
        if workflow.patched(TEAM_MEETINGS_PATCH):
            await self._ask_team_for_meeting("relapse")
        return self._result()

    @report_sick_leave.validator
    def _validate_report_sick_leave(self, action: ReportSickLeave) -> None:
        self._require_open()
        s = self._state
        if s.returned_on is None:
            raise _Rejected(
                "the employee has not returned to work in full; correct the current sick leave "
                "with set_sick_leave"
            )
        if action.start < s.returned_on:
            raise _Rejected("new sick leave cannot start before the return to work")
        if action.start > self._today():
            raise _Rejected("new sick leave is reported once it has begun")
        window_end = self._follow_up_window_end()
        if action.start > window_end:
            raise _Rejected(
                f"the follow-up window ended on {window_end.isoformat()}; new sick leave after "
                "it opens a new case"
            )

    @workflow.update
    async def set_sick_leave(self, action: SetSickLeave) -> CaseActionResult:
        self._recheck(self._validate_set_sick_leave, action)
        return await self._set_sick_leave(action)

    async def _set_sick_leave(self, action: SetSickLeave) -> CaseActionResult:
        s = self._state
        had_rules = self._conditional_kinds(s.expected_end)
        if not s.sick_spells:
            assert action.start is not None
            s.sick_spells = [SickSpell(start=action.start)]
            s.period_no += 1
        elif action.start is not None:
            s.sick_spells[-1] = s.sick_spells[-1].model_copy(update={"start": action.start})
        if action.expected_end is not None:
            s.expected_end = action.expected_end
        if self._conditional_kinds(s.expected_end) - had_rules:
            # The expectation that makes e.g. the RTW plan apply arose today.
            s.expectation_recorded_on = self._today()
        self._replan()
        self._refresh_overdue()
        await self._record("sick_leave_set", self._sick_leave_detail())
        return self._result()

    @set_sick_leave.validator
    def _validate_set_sick_leave(self, action: SetSickLeave) -> None:
        self._require_open()
        s = self._state
        if s.returned_on is not None:
            raise _Rejected(
                "the employee has returned to work; new sick leave is reported with "
                "report_sick_leave"
            )
        if not s.sick_spells and action.start is None:
            raise _Rejected("no sick leave is recorded yet; give its start")
        start = action.start or s.sick_spells[-1].start
        if start > self._today():
            raise _Rejected("sick leave is recorded once it has begun")
        if len(s.sick_spells) > 1:
            before = s.sick_spells[-2].end
            if before is not None and start <= before:
                raise _Rejected("the sick leave cannot start before the previous spell ended")
        expected_end = action.expected_end or s.expected_end
        if expected_end is not None and expected_end < start:
            raise _Rejected("the expected end is before the sick leave's start")
        if s.sick_spells and start == s.sick_spells[-1].start and expected_end == s.expected_end:
            raise _Rejected("nothing changes: the sick leave already has these dates")

    @workflow.update
    async def record_deadline_met(self, action: RecordDeadlineMet) -> CaseActionResult:
        self._recheck(self._validate_record_deadline_met, action)
        deadline = self._deadline(action.kind)
        assert deadline is not None
        deadline.met_on = action.met_on or self._today()
        self._refresh_overdue()
        await self._record(
            "deadline_met",
            {
                "deadline": deadline.kind,
                "due_on": deadline.due_on.isoformat(),
                "met_on": deadline.met_on.isoformat(),
                "late": deadline.met_on > deadline.due_on,
            },
        )
        return self._result()

    @record_deadline_met.validator
    def _validate_record_deadline_met(self, action: RecordDeadlineMet) -> None:
        self._require_open()
        deadline = self._deadline(action.kind)
        if deadline is None:
            raise _Rejected(f"the case has no deadline {action.kind!r}")
        if deadline.met_on is not None:
            raise _Rejected(f"deadline {action.kind} is already met")
        if action.met_on is not None and action.met_on > self._today():
            raise _Rejected("a deadline is met on a day that has come")

    @workflow.update
    async def close_case(self, action: CloseCase) -> CaseActionResult:
        self._recheck(self._validate_close_case, action)
        s = self._state
        open_interventions = [iv for iv in s.interventions if iv.is_open]
        for iv in open_interventions:
            iv.status = InterventionStatus.CANCELLED
        open_requests = [r for r in s.information_requests if r.is_open]
        for request in open_requests:
            request.status = InformationRequestStatus.CANCELLED
            request.cancel_reason = CancelReason.CASE_CLOSED
        s.stage = Stage.CLOSED
        s.outcome = action.outcome
        s.closed_at = workflow.now()
        self._refresh_overdue()
        await self._record(
            "case_closed",
            {"outcome": action.outcome.value, "relapse_count": s.relapse_count},
            notifications=tuple(
                NotificationRequest(
                    notification_type=NotificationType.CASE_CLOSED, recipient_role=r
                )
                for r in (RecipientRole.COORDINATOR, RecipientRole.MANAGER, RecipientRole.EMPLOYEE)
            ),
        )
        await self._finish_interventions(
            open_interventions,
            InterventionFinish(
                status=InterventionStatus.CANCELLED, cancel_reason=CancelReason.CASE_CLOSED
            ),
        )
        await self._finish_information_requests(
            open_requests,
            InformationRequestFinish(
                status=InformationRequestStatus.CANCELLED, cancel_reason=CancelReason.CASE_CLOSED
            ),
        )
        await self._leave_team()
        return self._result()

    @close_case.validator
    def _validate_close_case(self, action: CloseCase) -> None:
        self._require_open()
        if action.outcome in RETURNED_OUTCOMES and self._state.returned_on is None:
            raise _Rejected(
                f"outcome {action.outcome.value} needs the full return to work; record a 100% "
                "return-to-work step first"
            )

    # ------------------------------------------------------------------ signals

    @workflow.signal(name="absence_news")
    async def absence_news(self, news: AbsenceNews) -> None:
        """Sick leave from payroll data, applied as the action a coordinator would take.

        A signal, so the monitor never waits on this case. News that the action's validator
        refuses (the case already has it, or it does not fit the stage) changes nothing.
        """
        s = self._state
        if news.key in s.absence_news_seen or s.stage == Stage.CLOSED:
            return
        s.absence_news_seen = [*s.absence_news_seen[-(_NEWS_KEPT - 1) :], news.key]
        start = news.spell_start if s.returned_on is not None else news.sick_start
        # An expected end from before this sick leave belongs to an earlier one.
        expected_end = news.expected_end if (news.expected_end or start) >= start else None
        try:
            if s.returned_on is not None:
                relapse = ReportSickLeave(start=start, expected_end=expected_end)
                self._validate_report_sick_leave(relapse)
            else:
                current = SetSickLeave(start=start, expected_end=expected_end)
                self._validate_set_sick_leave(current)
        except (_Rejected, ValueError):
            # A signal handler must not raise: the news is simply not applied.
            workflow.logger.info("absence news not applied")
            return
        if s.returned_on is not None:
            await self._report_sick_leave(relapse)
        else:
            await self._set_sick_leave(current)

    @workflow.signal(name="intervention_overdue")
    async def intervention_overdue(self, notice: InterventionOverdueNotice) -> None:
        """An intervention's due date passed; it records its own event, the case its flag."""
        for iv in self._state.interventions:
            if (
                iv.intervention_id == notice.intervention_id
                and iv.status == InterventionStatus.OPEN
            ):
                iv.status = InterventionStatus.OVERDUE
                # A protected intervention never makes the case (which managers see) overdue;
                # it recorded its own step, which only the coordinator sees.
                if self._state.stage != Stage.CLOSED and not iv.protected:
                    self._refresh_overdue()
                    await self._record(
                        "intervention_overdue_flagged",
                        {"intervention_id": str(iv.intervention_id)},
                    )

    @workflow.signal(name="information_request_overdue")
    async def information_request_overdue(self, notice: InformationRequestOverdueNotice) -> None:
        """A request's due date passed unanswered; it records its own event, the case its flag."""
        for request in self._state.information_requests:
            if (
                request.request_id == notice.request_id
                and request.status == InformationRequestStatus.OPEN
            ):
                request.status = InformationRequestStatus.OVERDUE
                if self._state.stage != Stage.CLOSED:
                    self._refresh_overdue()
                    await self._record(
                        "information_request_overdue_flagged",
                        {"request_id": str(request.request_id), "party": request.party.value},
                    )

    # ------------------------------------------------------------------ joint meetings by team

    @workflow.signal(name="meeting_slot_assigned")
    async def meeting_slot_assigned(self, assignment: SlotAssignment) -> None:
        """The team's answer: a seat in a slot. A stale answer gives the seat back."""
        s = self._state
        booking = s.team_booking
        if booking is None or booking.request_id != assignment.request_id:
            await self._release_seat(assignment.team_code, assignment.request_id)
            return
        if booking.assigned:
            return  # the same answer twice
        booking.assigned = True
        rebooked = booking.continues_meeting is not None
        s.meeting = MeetingBooking(
            meeting_id=booking.continues_meeting or workflow.uuid4(),
            starts_at=assignment.starts_at,
            ends_at=assignment.ends_at,
            slot_id=assignment.slot_id,
            invited=self._team_invitees(),
            sequence=booking.continues_sequence + 1 if rebooked else 0,
        )
        s.meeting_held = False
        s.stage = Stage.JOINT_MEETING
        meeting = s.meeting
        await self._record(
            "joint_meeting_rebooked" if rebooked else "joint_meeting_booked",
            {
                "meeting_id": str(meeting.meeting_id),
                "starts_at": meeting.starts_at.isoformat(),
                "invited": [p.value for p in meeting.invited],
                "team": assignment.team_code,
                "slot_id": str(assignment.slot_id),
            },
            meeting=self._meeting_record("booked"),
            notifications=self._meeting_notices(
                NotificationType.MEETING_RESCHEDULED
                if rebooked
                else NotificationType.MEETING_INVITATION,
                meeting,
            ),
        )

    @workflow.update
    async def reschedule_meeting(self, action: RescheduleMeeting) -> CaseActionResult:
        """Give the team's slot back and take the next slot with room after it; the
        invitations are updated (same calendar event, higher sequence) once it is assigned."""
        self._recheck(self._validate_reschedule_meeting, action)
        s = self._state
        meeting, booking = s.meeting, s.team_booking
        assert meeting is not None and booking is not None
        s.meeting = None
        await self._request_seat(
            booking.team_code,
            "reschedule",
            after=meeting.starts_at,
            releases=booking.request_id,
            continues=meeting,
        )
        return self._result()

    @reschedule_meeting.validator
    def _validate_reschedule_meeting(self, action: RescheduleMeeting) -> None:
        meeting = self._require_unheld_meeting("rescheduled")
        booking = self._state.team_booking
        if booking is None or not booking.assigned:
            raise _Rejected(
                "this joint meeting was booked by hand; book the new time with book_joint_meeting"
            )
        if workflow.now() >= meeting.starts_at:
            raise _Rejected(
                "the joint meeting has started; record its outcome or that the employee "
                "did not come"
            )

    @workflow.update
    async def cancel_meeting(self, action: CancelMeeting) -> CaseActionResult:
        self._recheck(self._validate_cancel_meeting, action)
        s = self._state
        meeting = s.meeting
        detail: dict[str, Any] = {}
        notifications: tuple[NotificationRequest, ...] = ()
        row = None
        if meeting is not None:
            # A cancellation updates the calendar event: same UID, higher sequence.
            meeting.sequence += 1
            row = self._meeting_row(meeting, "cancelled")
            notifications = self._meeting_notices(NotificationType.MEETING_CANCELLED, meeting)
            detail = {
                "meeting_id": str(meeting.meeting_id),
                "starts_at": meeting.starts_at.isoformat(),
            }
        s.meeting = None
        await self._record(
            "joint_meeting_cancelled", detail, meeting=row, notifications=notifications
        )
        await self._leave_team()
        return self._result()

    @cancel_meeting.validator
    def _validate_cancel_meeting(self, action: CancelMeeting) -> None:
        if self._waiting_for_team():
            self._require_open()
            return
        self._require_unheld_meeting("cancelled")

    @workflow.update
    async def record_no_show(self, action: RecordNoShow) -> CaseActionResult:
        """The employee did not come: counted; a team meeting goes to the next slot with room."""
        self._recheck(self._validate_record_no_show, action)
        s = self._state
        meeting, booking = s.meeting, s.team_booking
        assert meeting is not None
        s.no_shows += 1
        s.meeting = None
        await self._record(
            "joint_meeting_no_show",
            {"meeting_id": str(meeting.meeting_id), "no_shows": s.no_shows},
            meeting=self._meeting_row(meeting, "no_show"),
        )
        if booking is not None and booking.assigned:
            await self._request_seat(
                booking.team_code, "no_show", after=meeting.starts_at, releases=booking.request_id
            )
        return self._result()

    @record_no_show.validator
    def _validate_record_no_show(self, action: RecordNoShow) -> None:
        meeting = self._require_unheld_meeting("marked as missed")
        if workflow.now() < meeting.starts_at:
            raise _Rejected(
                "the joint meeting has not started yet; a no-show is recorded after "
                f"{meeting.starts_at.isoformat()}"
            )

    @workflow.update
    async def choose_fhv(self, action: ChooseFhv) -> CaseActionResult:
        """The employer decides whether occupational health takes part in the joint meeting."""
        self._recheck(self._validate_choose_fhv, action)
        s = self._state
        s.fhv_chosen = action.chosen
        meeting = s.meeting
        notifications: tuple[NotificationRequest, ...] = ()
        row = None
        if meeting is not None and not s.meeting_held:
            if action.chosen and ConsentParty.FHV not in meeting.invited:
                meeting.invited.append(ConsentParty.FHV)
                row = self._meeting_record("booked")
                notifications = (
                    NotificationRequest(
                        notification_type=NotificationType.MEETING_INVITATION,
                        recipient_role=RecipientRole.FHV,
                        meeting=meeting.slot,
                    ),
                )
            elif not action.chosen and ConsentParty.FHV in meeting.invited:
                meeting.invited.remove(ConsentParty.FHV)
                notifications = (
                    NotificationRequest(
                        notification_type=NotificationType.MEETING_CANCELLED,
                        recipient_role=RecipientRole.FHV,
                        meeting=meeting.slot,
                    ),
                )
        await self._record(
            "joint_meeting_fhv_chosen" if action.chosen else "joint_meeting_fhv_not_chosen",
            {"fhv": action.chosen},
            meeting=row,
            notifications=notifications,
        )
        return self._result()

    @choose_fhv.validator
    def _validate_choose_fhv(self, action: ChooseFhv) -> None:
        self._require_open()
        s = self._state
        if s.fhv_chosen == action.chosen:
            raise _Rejected(
                "occupational health is already "
                + ("chosen" if action.chosen else "not chosen")
                + " for this case"
            )
        if action.chosen and not s.consents.get(ConsentParty.FHV, False):
            raise _Rejected(
                "occupational health may take part only with the employee's consent; "
                "record the consent first"
            )

    async def _ask_team_for_meeting(self, reason: str) -> None:
        """Find the unit's team; if it has one, join the queue for its next slot with room."""
        team = await workflow.execute_activity_method(
            MeetingTeamDirectory.team_of_unit,
            TeamLookup(unit_code=self._input.unit_code),
            start_to_close_timeout=RECORD_STORE_TIMEOUT,
            retry_policy=RECORD_STORE_RETRY,
        )
        s = self._state
        s.team_looked_up = True
        # A meeting booked by hand while the team was looked up stands.
        if team is not None and s.meeting is None and s.stage != Stage.CLOSED:
            await self._request_seat(team.code, reason)

    async def _request_seat(
        self,
        team_code: str,
        reason: str,
        *,
        after: datetime | None = None,
        releases: UUID | None = None,
        continues: MeetingBooking | None = None,
    ) -> None:
        """Ask the team for a seat (a rebooking also gives up the seat it `releases`).

        The request carries the case's earliest open deadline, by which the team orders
        its queue. If the team's workflow is not running, the coordinator books by hand.
        """
        s = self._state
        next_deadline = self._next_deadline()
        request = MeetingRequest(
            request_id=workflow.uuid4(),
            case_id=self._input.case_id,
            case_workflow_id=workflow.info().workflow_id,
            earliest_deadline_on=next_deadline.due_on if next_deadline else None,
            requested_at=workflow.now(),
            after=after,
            releases=releases,
        )
        s.team_booking = TeamBooking(
            team_code=team_code,
            request_id=request.request_id,
            requested_at=request.requested_at,
            continues_meeting=continues.meeting_id if continues else None,
            continues_sequence=continues.sequence if continues else 0,
        )
        await self._record("joint_meeting_requested", {"team": team_code, "reason": reason})
        try:
            await workflow.get_external_workflow_handle_for(
                MeetingTeamWorkflow.run, team_workflow_id(team_code)
            ).signal(MeetingTeamWorkflow.request_meeting, request)
        except FailureError:
            s.team_booking = None
            await self._record("meeting_team_unreachable", {"team": team_code})

    async def _release_seat(self, team_code: str, request_id: UUID) -> None:
        try:
            await workflow.get_external_workflow_handle_for(
                MeetingTeamWorkflow.run, team_workflow_id(team_code)
            ).signal(MeetingTeamWorkflow.release_meeting, MeetingRelease(request_id=request_id))
        except FailureError:
            workflow.logger.warning("the meeting team could not be told of a released seat")

    async def _leave_team(self) -> None:
        """Give up the team's seat or queue place (only cases of a team have one)."""
        booking = self._state.team_booking
        if booking is not None:
            self._state.team_booking = None
            await self._release_seat(booking.team_code, booking.request_id)

    def _waiting_for_team(self) -> bool:
        booking = self._state.team_booking
        return booking is not None and not booking.assigned

    def _team_invitees(self) -> list[ConsentParty]:
        """FK takes part whenever the employee consents, before any benefit case exists;
        FHV when the employer chose it for this case and the employee consents."""
        consents = self._state.consents
        invited = [ConsentParty.FK] if consents.get(ConsentParty.FK, False) else []
        if self._state.fhv_chosen and consents.get(ConsentParty.FHV, False):
            invited.append(ConsentParty.FHV)
        return invited

    def _invite_to_team_meeting(self, party: ConsentParty) -> tuple[NotificationRequest, ...]:
        """Consent given after a team booking: the party joins the meeting if it should."""
        s = self._state
        meeting, booking = s.meeting, s.team_booking
        if meeting is None or s.meeting_held or booking is None or not booking.assigned:
            return ()
        role = PARTY_RECIPIENT.get(party)
        if role is None or party in meeting.invited or party not in self._team_invitees():
            return ()
        meeting.invited.append(party)
        return (
            NotificationRequest(
                notification_type=NotificationType.MEETING_INVITATION,
                recipient_role=role,
                meeting=meeting.slot,
            ),
        )

    def _require_unheld_meeting(self, what: str) -> MeetingBooking:
        self._require_stage((Stage.JOINT_MEETING,), f"a joint meeting can be {what}")
        s = self._state
        if s.meeting is None:
            raise _Rejected("no joint meeting is booked")
        if s.meeting_held:
            raise _Rejected("the outcome of this joint meeting is already recorded")
        return s.meeting

    def _meeting_notices(
        self, notification_type: NotificationType, meeting: MeetingBooking
    ) -> tuple[NotificationRequest, ...]:
        roles = [RecipientRole.EMPLOYEE, RecipientRole.MANAGER, RecipientRole.COORDINATOR]
        roles += [PARTY_RECIPIENT[p] for p in meeting.invited if p in PARTY_RECIPIENT]
        return tuple(
            NotificationRequest(
                notification_type=notification_type, recipient_role=r, meeting=meeting.slot
            )
            for r in roles
        )

    def _meeting_row(
        self, meeting: MeetingBooking, status: Literal["cancelled", "no_show"]
    ) -> MeetingRecord:
        """The `meetings` row of a meeting that was called off or missed."""
        return MeetingRecord(
            meeting_id=meeting.meeting_id,
            starts_at=meeting.starts_at,
            ends_at=meeting.ends_at,
            sequence=meeting.sequence,
            status=status,
            invited=("employee", "manager", "coordinator", *(p.value for p in meeting.invited)),
        )

    # ------------------------------------------------------------------ planning

    def _period(self) -> SickPeriod:
        return SickPeriod(spells=tuple(self._state.sick_spells))

    def _conditional_kinds(self, expected_end: date | None) -> set[str]:
        """The expectation-dependent rules that the expected end makes apply."""
        s = self._state
        if expected_end is None or not s.sick_spells:
            return set()
        try:
            expected = expected_sick_days(self._period(), expected_end)
        except ValueError:
            return set()
        return {
            rule.kind
            for rule in self._policy.deadlines
            if rule.expected_sick_days_at_least is not None
            and expected >= rule.expected_sick_days_at_least
        }

    def _replan(self) -> None:
        """Date the policy's deadlines for the current period; keep what is already known.

        A deadline whose date did not move keeps its fired steps; a moved one starts over
        (and, if its new date has passed, is recorded overdue at once). Met stays met.
        """
        s = self._state
        if not s.sick_spells:
            return
        rules = {rule.kind: rule for rule in self._policy.deadlines}
        known = {d.kind: d for d in s.deadlines if d.source == "policy"}
        planned: list[TrackedDeadline] = []
        expected_end = s.expected_end
        if expected_end is not None and expected_end < s.sick_spells[-1].start:
            expected_end = None
        for dated in deadline_dates(
            self._period(), self._policy, expected_end, s.expectation_recorded_on
        ):
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

    def _action_done(self, action: str) -> None:
        s = self._state
        today = self._today()
        s.actions_done.setdefault(action, today)
        for deadline in s.deadlines:
            if deadline.met_by_action == action and deadline.met_on is None:
                deadline.met_on = today
        self._refresh_overdue()

    def _refresh_overdue(self) -> None:
        s = self._state
        s.overdue = s.stage != Stage.CLOSED and (
            any(d.overdue for d in s.deadlines)
            or any(
                iv.status == InterventionStatus.OVERDUE
                for iv in s.interventions
                if not iv.protected  # the overdue flag is seen by managers
            )
            or any(r.status == InformationRequestStatus.OVERDUE for r in s.information_requests)
        )

    def _follow_up_window_end(self) -> date:
        s = self._state
        assert s.returned_on is not None
        return max(
            (offset.after(s.returned_on) for offset in self._policy.follow_ups_after_return),
            default=s.returned_on,
        )

    # ------------------------------------------------------------------ interventions

    def _check_new_intervention(self, planned: PlannedIntervention) -> None:
        if planned.due_on < self._today():
            raise _Rejected("an intervention's due date cannot lie in the past")

    def _add_interventions(self, planned: list[PlannedIntervention]) -> list[InterventionState]:
        added = [
            InterventionState(
                intervention_id=p.intervention_id or workflow.uuid4(),
                track=p.track,
                kind=p.kind,
                owner=p.owner,
                due_on=p.due_on,
                remind_days_before=p.remind_days_before,
            )
            for p in planned
        ]
        self._state.interventions.extend(added)
        return added

    async def _start_interventions(self, started: list[InterventionState]) -> None:
        for iv in started:
            handle = await workflow.start_child_workflow(
                InterventionWorkflow.run,
                InterventionInput(
                    intervention_id=iv.intervention_id,
                    case_id=self._input.case_id,
                    case_workflow_id=workflow.info().workflow_id,
                    unit_code=self._input.unit_code,
                    track=iv.track,
                    kind=iv.kind,
                    owner=iv.owner,
                    due_on=iv.due_on,
                    remind_days_before=iv.remind_days_before,
                    escalate_after_days=self._policy.overdue_escalation_after_days,
                    assigned_at=workflow.now(),
                    protected=iv.protected,
                ),
                id=intervention_workflow_id(iv.intervention_id),
                # The case continues as new at stage boundaries; its interventions go on.
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                # Operations staff read summaries: the protected track's names no kind.
                static_summary=(
                    f"Intervention · {iv.track.value}"
                    if iv.protected
                    else f"Intervention · {iv.track.value} · {iv.kind}"
                ),
            )
            self._running_children.add(iv.intervention_id)
            asyncio.create_task(self._follow_child(iv.intervention_id, handle))  # noqa: RUF006

    async def _follow_child(
        self, intervention_id: UUID, handle: workflow.ChildWorkflowHandle[Any, Any]
    ) -> None:
        try:
            await handle
        except ChildWorkflowError:
            workflow.logger.warning("a child workflow ended without a result")
        finally:
            self._running_children.discard(intervention_id)
            self._wake = True

    async def _finish_interventions(
        self, interventions: list[InterventionState], finish: InterventionFinish
    ) -> None:
        for iv in interventions:
            await workflow.get_external_workflow_handle_for(
                InterventionWorkflow.run, intervention_workflow_id(iv.intervention_id)
            ).signal(InterventionWorkflow.finish, finish)

    def _intervention(self, intervention_id: UUID) -> InterventionState:
        for iv in self._state.interventions:
            if iv.intervention_id == intervention_id:
                return iv
        raise _Rejected(f"the case has no intervention {intervention_id}")

    def _require_open_intervention(self, intervention_id: UUID) -> None:
        self._require_open()
        iv = self._intervention(intervention_id)
        if not iv.is_open:
            raise _Rejected(f"intervention {intervention_id} is already {iv.status.value}")

    # ------------------------------------------------------------------ information requests

    async def _start_information_request(self, request: InformationRequestState) -> None:
        handle = await workflow.start_child_workflow(
            InformationRequestWorkflow.run,
            InformationRequestInput(
                request_id=request.request_id,
                case_id=self._input.case_id,
                case_workflow_id=workflow.info().workflow_id,
                unit_code=self._input.unit_code,
                party=request.party,
                due_on=request.due_on,
                remind_days_before=request.remind_days_before,
                remind_again_after_days=self._policy.overdue_reminder_after_days,
                requested_at=workflow.now(),
            ),
            id=information_request_workflow_id(request.request_id),
            # The case continues as new at stage boundaries; its requests go on.
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            # The party is left out: a request to healthcare or social services says too much.
            static_summary=f"Information request · due {request.due_on.isoformat()}",
        )
        self._running_children.add(request.request_id)
        asyncio.create_task(self._follow_child(request.request_id, handle))  # noqa: RUF006

    async def _finish_information_requests(
        self, requests: list[InformationRequestState], finish: InformationRequestFinish
    ) -> None:
        for request in requests:
            await workflow.get_external_workflow_handle_for(
                InformationRequestWorkflow.run, information_request_workflow_id(request.request_id)
            ).signal(InformationRequestWorkflow.finish, finish)

    def _information_request(self, request_id: UUID) -> InformationRequestState:
        for request in self._state.information_requests:
            if request.request_id == request_id:
                return request
        raise _Rejected(f"the case has no information request {request_id}")

    def _require_open_information_request(self, request_id: UUID) -> InformationRequestState:
        self._require_open()
        request = self._information_request(request_id)
        if not request.is_open:
            raise _Rejected(f"information request {request_id} is already {request.status.value}")
        return request

    # ------------------------------------------------------ meetings and the protected track

    def _check_attendance(
        self,
        attended: tuple[str, ...],
        held_by: str | None,
        violence_screening: ScreeningScore | None,
    ) -> None:
        s = self._state
        for party in ("fk", "fhv"):
            if party in attended and not s.consents.get(ConsentParty(party), False):
                raise _Rejected(f"{party} cannot have attended without the employee's consent")
        if held_by is not None and held_by not in attended:
            raise _Rejected("the party that held the meeting must have attended it")
        if violence_screening is not None:
            if "employee" not in attended:
                raise _Rejected("the questions are asked only of an employee who attended")
            if not violence_screening.protected:
                raise _Rejected("the questions asked at a meeting must be a protected set")

    def _agree_next_steps(
        self, agreed: tuple[AgreedNextStep, ...], meeting_id: UUID
    ) -> list[NextStepState]:
        steps = [
            NextStepState(
                step_id=workflow.uuid4(),
                meeting_id=meeting_id,
                track=step.track,
                kind=step.kind,
                owner=step.owner,
                due_on=step.due_on,
            )
            for step in agreed
        ]
        self._state.next_steps.extend(steps)
        return steps

    def _next_step(self, step_id: UUID) -> NextStepState:
        for step in self._state.next_steps:
            if step.step_id == step_id:
                return step
        raise _Rejected(f"the case has no agreed next step {step_id}")

    @staticmethod
    def _next_step_record(step: NextStepState) -> NextStepRecord:
        return NextStepRecord(**step.model_dump())

    def _open_protected_track(self, score: ScreeningScore | None) -> list[InterventionState]:
        """A disclosure opens the protected track: a safety-support intervention in the social
        track, owned by the coordinator, unless one is still open. Returns what to start."""
        s = self._state
        if score is None or not score.disclosure:
            return []
        s.violence_disclosed = True
        if any(iv.protected and iv.is_open for iv in s.interventions):
            return []
        safety_support = InterventionState(
            intervention_id=workflow.uuid4(),
            track=Track.SOCIAL,
            kind=SAFETY_SUPPORT_KIND,
            owner=InterventionOwner.COORDINATOR,
            due_on=self._today() + timedelta(days=SAFETY_SUPPORT_DUE_DAYS),
            remind_days_before=SAFETY_SUPPORT_REMIND_DAYS_BEFORE,
            protected=True,
        )
        s.interventions.append(safety_support)
        return [safety_support]

    @staticmethod
    def _questions_asked(
        score: ScreeningScore | None, meeting_id: UUID, asked_by: str | None
    ) -> tuple[ScreeningRecord, ...]:
        """The meeting's violence-exposure result for the record store: a disclosure row in
        the restricted table if there was one, nothing anywhere else."""
        if score is None:
            return ()
        return (
            ScreeningRecord(
                instrument_id=score.instrument_id,
                instrument_version=score.instrument_version,
                total=score.total,
                band=score.band,
                risk_level=score.risk_level,
                disclosure=bool(score.disclosure),
                protected=True,
                meeting_id=meeting_id,
                asked_by=asked_by,
            ),
        )

    # ------------------------------------------------------------------ validation helpers

    def _require_open(self) -> None:
        if self._state.stage == Stage.CLOSED:
            raise _Rejected("the case is closed")

    def _require_stage(self, stages: tuple[Stage, ...], what: str) -> None:
        self._require_open()
        stage = self._state.stage
        if stage not in stages:
            allowed = ", ".join(s.value for s in stages)
            raise _Rejected(f"{what} only in stage {allowed}; the case is in stage {stage.value}")

    def _recheck(self, validator: Any, action: Any) -> None:
        """Run the validator again in the handler, before the first await.

        Two updates delivered in one workflow task are both validated before either
        handler runs; the second handler sees the first one's changes here and is refused
        without touching the state.
        """
        try:
            validator(action)
        except _Rejected as rejected:
            raise ApplicationError(str(rejected), type=INVALID_ACTION, non_retryable=True) from None

    def _today(self) -> date:
        return local_date(workflow.now())

    def _deadline(self, kind: str) -> TrackedDeadline | None:
        return next((d for d in self._state.deadlines if d.kind == kind), None)

    # ------------------------------------------------------------------ recording

    def _next_step_key(self, kind: str) -> str:
        self._state.event_seq += 1
        return f"{self._state.event_seq:05d}-{kind}"

    async def _record(
        self,
        kind: str,
        detail: dict[str, Any],
        *,
        notifications: tuple[NotificationRequest, ...] = (),
        consent: ConsentRecord | None = None,
        meeting: MeetingRecord | None = None,
        screenings: tuple[ScreeningRecord, ...] = (),
        next_steps: tuple[NextStepRecord, ...] = (),
        occurred_at: datetime | None = None,
    ) -> None:
        """Record one change: its event now, the projection as it is when written.

        A timer-driven change occurred at its scheduled instant, even when the worker gets to
        it later (a late import, a worker that was down); an action occurred now. Writes are
        serialized by a lock, so the projection a later write carries is never older than an
        earlier one's.
        """
        step_key = self._next_step_key(kind)
        stage = self._state.stage
        occurred_at = occurred_at or workflow.now()
        self._publish()
        self._wake = True
        async with self._record_lock:
            await workflow.execute_activity_method(
                CaseRecords.record_change,
                CaseChange(
                    case_id=self._input.case_id,
                    workflow_id=workflow.info().workflow_id,
                    unit_code=self._input.unit_code,
                    step_key=step_key,
                    kind=kind,
                    stage=stage,
                    occurred_at=occurred_at,
                    detail=detail,
                    projection=self._projection(),
                    deadlines=self._deadline_views(),
                    consent=consent,
                    meeting=meeting,
                    screenings=screenings,
                    next_steps=next_steps,
                    notifications=notifications,
                ),
                start_to_close_timeout=RECORD_STORE_TIMEOUT,
                retry_policy=RECORD_STORE_RETRY,
            )

    def _meeting_record(
        self,
        status: str,
        attended: tuple[str, ...] | None = None,
        reinforced_support: bool | None = None,
        held_by: str | None = None,
    ) -> MeetingRecord:
        meeting = self._state.meeting
        assert meeting is not None
        return MeetingRecord(
            meeting_id=meeting.meeting_id,
            starts_at=meeting.starts_at,
            ends_at=meeting.ends_at,
            sequence=meeting.sequence,
            status="held" if status == "held" else "booked",
            invited=("employee", "manager", "coordinator", *(p.value for p in meeting.invited)),
            attended=attended,
            reinforced_support=reinforced_support,
            held_by=held_by,
        )

    def _sick_leave_detail(self) -> dict[str, Any]:
        s = self._state
        return {
            "sick_start": s.sick_spells[0].start.isoformat() if s.sick_spells else None,
            "expected_end": s.expected_end.isoformat() if s.expected_end else None,
            "deadlines": len(s.deadlines),
        }

    def _next_deadline(self) -> TrackedDeadline | None:
        s = self._state
        if s.stage == Stage.CLOSED:
            return None
        unmet = [d for d in s.deadlines if d.met_on is None]
        return min(unmet, key=lambda d: (d.due_on, d.kind), default=None)

    def _deadline_views(self) -> tuple[DeadlineView, ...]:
        return tuple(view_of(d) for d in sorted(self._state.deadlines, key=lambda d: d.due_on))

    def _projection(self) -> CaseProjection:
        s = self._state
        next_deadline = self._next_deadline()
        return CaseProjection(
            stage=s.stage,
            policy_id=self._policy.policy_id,
            policy_version=self._policy.version,
            sick_start=s.sick_spells[0].start if s.sick_spells else None,
            expected_end=s.expected_end,
            overdue=s.overdue,
            next_deadline_kind=next_deadline.kind if next_deadline else None,
            next_deadline_on=next_deadline.due_on if next_deadline else None,
            next_meeting_at=(s.meeting.starts_at if s.meeting and not s.meeting_held else None),
            long_term=s.long_term,
            relapse_count=s.relapse_count,
            outcome=s.outcome,
            closed_at=s.closed_at,
        )

    def _open_actions(self, *, include_protected: bool) -> list[OpenAction]:
        """What the coordinator can or should do; the protected track's task only on request
        (the `open_actions` query), never in the details operations staff read."""
        s = self._state
        actions: list[OpenAction] = []
        if s.stage == Stage.CLOSED:
            return actions
        for party in (ConsentParty.FK, ConsentParty.FHV):
            if party not in s.consents:
                actions.append(OpenAction(action="record_consent", reason=f"ask for {party.value}"))
        if not s.sick_spells:
            actions.append(OpenAction(action="set_sick_leave", reason="no sick leave recorded"))
        match s.stage:
            case Stage.IDENTIFIED | Stage.JOINT_MEETING if self._waiting_for_team():
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
                actions.append(
                    OpenAction(action="record_deadline_met", reason=d.kind, due_on=d.due_on)
                )
        return actions

    def _publish(self) -> None:
        """Search attributes and the UI's current details: stage, dates, codes; no person."""
        s = self._state
        if self._published != (s.stage, s.overdue):
            self._published = (s.stage, s.overdue)
            workflow.upsert_search_attributes(
                [REHAB_STAGE.value_set(s.stage.value), REHAB_OVERDUE.value_set(s.overdue)]
            )
        next_deadline = self._next_deadline()
        lines = [
            f"**Stage:** {s.stage.value}",
            "**Next deadline:** "
            + (
                f"{next_deadline.kind} on {next_deadline.due_on.isoformat()}"
                if next_deadline
                else "none"
            ),
            f"**Overdue:** {'yes' if s.overdue else 'no'}",
            "**Open actions:**",
            *(f"- {a.action} ({a.reason})" for a in self._open_actions(include_protected=False)),
        ]
        workflow.set_current_details("\n".join(lines))

    def _result(self, *created: UUID) -> CaseActionResult:
        return CaseActionResult(stage=self._state.stage, created_ids=created, case=self.state())

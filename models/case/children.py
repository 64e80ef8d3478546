"""The case's children and the protected track: interventions, information requests,
agreed next steps and the safety support a violence disclosure starts."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from models.actions import (
    SAFETY_SUPPORT_KIND,
    AgreedNextStep,
    InterventionFinish,
    InterventionInput,
    PlannedIntervention,
)
from models.case import (
    InformationRequestState,
    InterventionOwner,
    InterventionState,
    NextStepState,
    ScreeningRecord,
    Track,
    information_request_workflow_id,
    intervention_workflow_id,
)
from models.deadlines import local_date
from models.information_requests import InformationRequestFinish, InformationRequestInput
from models.instruments import ScreeningScore

from .effects import FinishChild, StartChild
from .recording import Recorder

# The safety support a violence disclosure starts: due within a week, reminded three days
# before. The coordinator owns it; nobody else learns that it exists.
SAFETY_SUPPORT_DUE_DAYS = 7
SAFETY_SUPPORT_REMIND_DAYS_BEFORE = 3


class ChildRules(Recorder):
    def add_interventions(self, planned: list[PlannedIntervention]) -> list[InterventionState]:
        added = [
            InterventionState(
                intervention_id=p.intervention_id or self.new_id(),
                track=p.track,
                kind=p.kind,
                owner=p.owner,
                due_on=p.due_on,
                remind_days_before=p.remind_days_before,
            )
            for p in planned
        ]
        self.state.interventions.extend(added)
        return added

    def start_intervention(self, iv: InterventionState, now: datetime) -> StartChild:
        return StartChild(
            "intervention",
            iv.intervention_id,
            intervention_workflow_id(iv.intervention_id),
            InterventionInput(
                intervention_id=iv.intervention_id,
                case_id=self.input.case_id,
                case_workflow_id=self.workflow_id,
                unit_code=self.input.unit_code,
                track=iv.track,
                kind=iv.kind,
                owner=iv.owner,
                due_on=iv.due_on,
                remind_days_before=iv.remind_days_before,
                escalate_after_days=self.policy.overdue_escalation_after_days,
                assigned_at=now,
                protected=iv.protected,
                records_locally=self.input.records_locally,
            ),
            # Operations staff read summaries: the protected track's names no kind.
            f"Intervention · {iv.track.value}"
            if iv.protected
            else f"Intervention · {iv.track.value} · {iv.kind}",
        )

    def start_request(self, request: InformationRequestState, now: datetime) -> StartChild:
        return StartChild(
            "information_request",
            request.request_id,
            information_request_workflow_id(request.request_id),
            InformationRequestInput(
                request_id=request.request_id,
                case_id=self.input.case_id,
                case_workflow_id=self.workflow_id,
                unit_code=self.input.unit_code,
                party=request.party,
                due_on=request.due_on,
                remind_days_before=request.remind_days_before,
                remind_again_after_days=self.policy.overdue_reminder_after_days,
                requested_at=now,
            ),
            # The party is left out: a request to healthcare or social services says too much.
            f"Information request · due {request.due_on.isoformat()}",
        )

    @staticmethod
    def finish_intervention(iv: InterventionState, finish: InterventionFinish) -> FinishChild:
        return FinishChild("intervention", intervention_workflow_id(iv.intervention_id), finish)

    @staticmethod
    def finish_request(
        request: InformationRequestState, finish: InformationRequestFinish
    ) -> FinishChild:
        return FinishChild(
            "information_request", information_request_workflow_id(request.request_id), finish
        )

    def agree_next_steps(
        self, agreed: tuple[AgreedNextStep, ...], meeting_id: UUID
    ) -> list[NextStepState]:
        steps = [
            NextStepState(
                step_id=self.new_id(),
                meeting_id=meeting_id,
                track=step.track,
                kind=step.kind,
                owner=step.owner,
                due_on=step.due_on,
            )
            for step in agreed
        ]
        self.state.next_steps.extend(steps)
        return steps

    def open_protected_track(
        self, score: ScreeningScore | None, now: datetime
    ) -> list[InterventionState]:
        """A disclosure opens the protected track: a safety-support intervention in the social
        track, owned by the coordinator, unless one is still open. Returns what to start."""
        s = self.state
        if score is None or not score.disclosure:
            return []
        s.violence_disclosed = True
        if any(iv.protected and iv.is_open for iv in s.interventions):
            return []
        safety_support = InterventionState(
            intervention_id=self.new_id(),
            track=Track.SOCIAL,
            kind=SAFETY_SUPPORT_KIND,
            owner=InterventionOwner.COORDINATOR,
            due_on=local_date(now) + timedelta(days=SAFETY_SUPPORT_DUE_DAYS),
            remind_days_before=SAFETY_SUPPORT_REMIND_DAYS_BEFORE,
            protected=True,
        )
        s.interventions.append(safety_support)
        return [safety_support]

    @staticmethod
    def questions_asked(
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

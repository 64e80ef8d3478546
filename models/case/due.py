"""What falls due without a person's action: deadline steps, the long-term track, erasure,
and the overdue notices of the case's children."""

from __future__ import annotations

from datetime import datetime

from channels.message import NotificationType, RecipientRole
from models.actions import InterventionOverdueNotice
from models.case import (
    ErasureRequest,
    InformationRequestStatus,
    InterventionStatus,
    NotificationRequest,
    Stage,
)
from models.deadlines import DeadlineStep
from models.information_requests import InformationRequestOverdueNotice

from . import planning
from .effects import Effect, Erase, Record
from .meetings import MeetingRules

_STEP_NOTICE: dict[DeadlineStep, tuple[tuple[NotificationType, RecipientRole], ...]] = {
    DeadlineStep.DUE: ((NotificationType.DEADLINE_DUE, RecipientRole.COORDINATOR),),
    DeadlineStep.OVERDUE: ((NotificationType.DEADLINE_OVERDUE, RecipientRole.COORDINATOR),),
    DeadlineStep.REMINDER: ((NotificationType.DEADLINE_OVERDUE, RecipientRole.COORDINATOR),),
    DeadlineStep.ESCALATION: (
        (NotificationType.DEADLINE_ESCALATION, RecipientRole.COORDINATOR),
        (NotificationType.DEADLINE_ESCALATION, RecipientRole.MANAGER),
    ),
}


class DueRules(MeetingRules):
    def fire_due(self, now: datetime) -> list[Effect]:
        """Every deadline step, milestone and the erasure whose instant has come."""
        s, policy = self.state, self.policy
        effects: list[Effect] = []
        while s.stage != Stage.CLOSED:
            fired = planning.next_due_step(s, policy, now)
            if fired is None:
                break
            deadline, step = fired
            deadline.fired.append(step)
            planning.refresh_overdue(s)
            notice_type = (
                NotificationType.FOLLOW_UP_DUE
                if step == DeadlineStep.DUE and deadline.source == "follow_up"
                else None
            )
            effects.append(
                self.record(
                    f"deadline_{step.value}",
                    {"deadline": deadline.kind, "due_on": deadline.due_on.isoformat()},
                    now,
                    occurred_at=deadline.instant(step, policy),
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
            )
        long_term_at = planning.long_term_instant(s, policy)
        if long_term_at is not None and long_term_at <= now:
            s.long_term = True
            effects.append(
                self.record(
                    "long_term_track_entered",
                    {"sick_day": policy.long_term_trigger_day},
                    now,
                    occurred_at=long_term_at,
                )
            )
        erase_at = planning.erase_instant(s, policy)
        if erase_at is not None and erase_at <= now:
            effects.append(
                Erase(
                    ErasureRequest(
                        case_id=self.input.case_id,
                        workflow_id=self.workflow_id,
                        employee_pseudonym=self.input.employee_pseudonym,
                        step_key=self.next_step_key("personal_data_erased"),
                        occurred_at=erase_at,
                    )
                )
            )
        return effects

    def erased(self) -> None:
        self.state.erased = True

    def opened(self, now: datetime) -> Record:
        """The first change of a new case: its sick leave and deadlines are planned."""
        return self.record("case_planned", self.sick_leave_detail(), now)

    def intervention_overdue(
        self, notice: InterventionOverdueNotice, now: datetime
    ) -> list[Effect]:
        """An intervention's due date passed; it records its own event, the case its flag."""
        effects: list[Effect] = []
        for iv in self.state.interventions:
            if (
                iv.intervention_id == notice.intervention_id
                and iv.status == InterventionStatus.OPEN
            ):
                iv.status = InterventionStatus.OVERDUE
                # A protected intervention never makes the case (which managers see) overdue;
                # it recorded its own step, which only the coordinator sees.
                if self.state.stage != Stage.CLOSED and not iv.protected:
                    planning.refresh_overdue(self.state)
                    detail = {"intervention_id": str(iv.intervention_id), "track": iv.track.value}
                    effects.append(self.record("intervention_overdue_flagged", detail, now))
        return effects

    def information_request_overdue(
        self, notice: InformationRequestOverdueNotice, now: datetime
    ) -> list[Effect]:
        """A request's due date passed unanswered; it records its own event, the case its flag."""
        effects: list[Effect] = []
        for request in self.state.information_requests:
            if (
                request.request_id == notice.request_id
                and request.status == InformationRequestStatus.OPEN
            ):
                request.status = InformationRequestStatus.OVERDUE
                if self.state.stage != Stage.CLOSED:
                    planning.refresh_overdue(self.state)
                    detail = {"request_id": str(request.request_id), "party": request.party.value}
                    effects.append(self.record("information_request_overdue_flagged", detail, now))
        return effects

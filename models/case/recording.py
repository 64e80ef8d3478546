"""Building one recorded change of a case: its step key, event, projection and views."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from models.case import (
    CaseChange,
    CaseInput,
    CaseState,
    ConsentRecord,
    MeetingRecord,
    NextStepRecord,
    NotificationRequest,
    ScreeningRecord,
)

from . import planning
from .checks import CaseChecks
from .effects import Record


class Recorder(CaseChecks):
    """The checks plus what every rule needs to record a change and to make ids."""

    def __init__(
        self, input: CaseInput, state: CaseState, workflow_id: str, new_id: Callable[[], UUID]
    ) -> None:
        super().__init__(input, state)
        self.workflow_id = workflow_id
        self.new_id = new_id

    def next_step_key(self, kind: str) -> str:
        self.state.event_seq += 1
        return f"{self.state.event_seq:05d}-{kind}"

    def record(
        self,
        kind: str,
        detail: dict[str, Any],
        now: datetime,
        *,
        notifications: tuple[NotificationRequest, ...] = (),
        consent: ConsentRecord | None = None,
        meeting: MeetingRecord | None = None,
        screenings: tuple[ScreeningRecord, ...] = (),
        next_steps: tuple[NextStepRecord, ...] = (),
        occurred_at: datetime | None = None,
    ) -> Record:
        """One change, as the case is now. A timer-driven change occurred at its scheduled
        instant, even when the worker gets to it later; an action occurred now."""
        s = self.state
        change = CaseChange(
            case_id=self.input.case_id,
            workflow_id=self.workflow_id,
            unit_code=self.input.unit_code,
            step_key=self.next_step_key(kind),
            kind=kind,
            stage=s.stage,
            occurred_at=occurred_at or now,
            detail=detail,
            projection=planning.projection(s, self.policy),
            deadlines=planning.deadline_views(s),
            consent=consent,
            meeting=meeting,
            screenings=screenings,
            next_steps=next_steps,
            notifications=notifications,
        )
        return Record(change, (s.stage, s.overdue))

    def sick_leave_detail(self) -> dict[str, Any]:
        s = self.state
        return {
            "sick_start": s.sick_spells[0].start.isoformat() if s.sick_spells else None,
            "expected_end": s.expected_end.isoformat() if s.expected_end else None,
            "deadlines": len(s.deadlines),
        }

"""Building one recorded change of a case: its step key and event, and, as it is sent, the
columns and deadlines that changed since the change before it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from models.case import (
    CaseChange,
    CaseColumns,
    CaseInput,
    CaseProjection,
    CaseState,
    ConsentRecord,
    DeadlineRow,
    MeetingRecord,
    NextStepRecord,
    NotificationRequest,
    ScreeningRecord,
)
from models.deadlines import DeadlineView

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
        # What this run last sent to the record store: the columns and deadlines by kind.
        self._sent: tuple[CaseProjection, dict[str, DeadlineRow]] | None = None

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
        instant, even when the worker gets to it later; an action occurred now. Its columns
        and deadlines are added when it is sent (`as_sent`)."""
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
            # Only what this change has: an unset field is not sent.
            **_given(
                consent=consent,
                meeting=meeting,
                screenings=screenings,
                next_steps=next_steps,
                notifications=notifications,
            ),
        )
        return Record(change, (s.stage, s.overdue))

    def as_sent(self, change: CaseChange) -> CaseChange:
        """`change` with the case's columns and deadlines as they are when it is written.

        Taken from the state at the time of writing, in the order the writes happen, so a
        write never puts older values back. The first write of a run carries everything;
        each later one only what changed since the write before it.
        """
        columns = planning.projection(self.state, self.policy)
        deadlines = {d.kind: _row(d) for d in planning.deadline_views(self.state)}
        sent, self._sent = self._sent, (columns, deadlines)
        if sent is None:
            return change.model_copy(
                update={
                    "columns": CaseColumns(**columns.model_dump()),
                    "deadline_rows": tuple(deadlines.values()),
                    "plan_replaced": True,
                }
            )
        before_columns, before = sent
        return change.model_copy(
            update=_given(
                columns=CaseColumns.between(before_columns, columns),
                deadline_rows=tuple(d for k, d in deadlines.items() if before.get(k) != d),
                deadlines_dropped=tuple(k for k in before if k not in deadlines),
            )
        )

    def sick_leave_detail(self) -> dict[str, Any]:
        s = self.state
        return {
            "sick_start": s.sick_spells[0].start.isoformat() if s.sick_spells else None,
            "expected_end": s.expected_end.isoformat() if s.expected_end else None,
            "deadlines": len(s.deadlines),
        }


def _row(view: DeadlineView) -> DeadlineRow:
    if view.met_on is None:
        return DeadlineRow(kind=view.kind, due_on=view.due_on, status=view.status)
    return DeadlineRow(kind=view.kind, due_on=view.due_on, status=view.status, met_on=view.met_on)


def _given(**fields: Any) -> dict[str, Any]:
    """The fields that hold something (an empty tuple or None is the default)."""
    return {name: value for name, value in fields.items() if value not in (None, ())}

"""Absence events from HR/payroll: batches in, counts of accepted, duplicate and rejected out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ContextDep, require_roles
from ingestion.absences import MAX_BATCH, AbsenceIngestion
from models.absence import IngestResult
from models.api import Role
from models.deadlines import STOCKHOLM

router = APIRouter(
    prefix="/api/v1/absence-events",
    tags=["absence events"],
    # The HR/payroll system account only (issue 5's roles).
    dependencies=[Depends(require_roles("absence.report", Role.HR_SYSTEM))],
)


class AbsenceEventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Each event is validated on its own, so one bad event does not sink the batch.
    events: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description="Up to 1,000 events `{event_id, employee_ref, unit_code, kind: sick|"
        "care_of_child|other, start, end?, extent: 25|50|75|100, expected_end?}`.",
    )


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IngestResult,
    summary="Report absences; each employee's monitor opens a case when a policy rule says so",
    description="Idempotent on `event_id`. Rejected events are listed by position with the "
    "field and the reason (never the value); the rest of the batch is taken.",
)
async def report_absences(body: AbsenceEventBatch, context: ContextDep) -> IngestResult:
    ingestion = AbsenceIngestion(
        context.sessionmaker,
        context.temporal,
        context.identity,
        context.settings.temporal.task_queue,
        today=lambda: datetime.now(STOCKHOLM).date(),
    )
    return await ingestion.ingest(body.events)

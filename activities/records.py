"""Activities that mirror case facts into the record store, each write idempotent."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from models.case import OpenCaseRecord, Stage
from store.schema import Case, CaseEvent, Unit

UNKNOWN_UNIT = "UnknownUnit"


class CaseRecords:
    """Writes the case projection and its timeline. Given its sessionmaker by the worker."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    @activity.defn
    async def open_case(self, record: OpenCaseRecord) -> None:
        async with self._sessionmaker.begin() as session:
            if await session.get(Unit, record.unit_code) is None:
                # Retrying cannot make a unit appear; the coordinator must fix the referral.
                raise ApplicationError(
                    "the case's unit is not registered", type=UNKNOWN_UNIT, non_retryable=True
                )
            await session.execute(
                insert(Case)
                .values(
                    id=record.case_id,
                    workflow_id=record.workflow_id,
                    employee_pseudonym=record.employee_pseudonym,
                    unit_code=record.unit_code,
                    trigger=record.trigger.value,
                    stage=Stage.IDENTIFIED.value,
                    opened_at=record.opened_at,
                )
                .on_conflict_do_nothing(index_elements=[Case.id])
            )
            await session.execute(
                insert(CaseEvent)
                .values(
                    case_id=record.case_id,
                    workflow_id=record.workflow_id,
                    step_key="case_opened",
                    kind="case_opened",
                    stage=Stage.IDENTIFIED.value,
                    occurred_at=record.opened_at,
                    detail={"trigger": record.trigger.value},
                )
                .on_conflict_do_nothing(constraint="uq_case_events_workflow_id")
            )
        activity.logger.info("case recorded")

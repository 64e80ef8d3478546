"""Activity that mirrors an information request into the record store, idempotently.

One transaction per change: the request's row in `case_information_requests`, its timeline
event and the notifications to the party or the coordinator. The row and the event name the
party, the dates and the status; what was asked and answered is never stored here.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.records import UNKNOWN_CASE, notification_key
from models.case import InformationRequestStatus
from models.information_requests import InformationRequestChange
from store.outbox import enqueue_notification
from store.schema import Case, CaseEvent, CaseInformationRequest

_FINISHED = (InformationRequestStatus.ANSWERED, InformationRequestStatus.CANCELLED)


class InformationRequestRecords:
    """Writes information requests and their timeline. Given its sessionmaker by the worker."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    @activity.defn
    async def record_information_request(self, change: InformationRequestChange) -> None:
        request = change.request
        async with self._sessionmaker.begin() as session:
            stage = await session.scalar(select(Case.stage).where(Case.id == request.case_id))
            if stage is None:
                raise ApplicationError(
                    "the information request's case is not recorded",
                    type=UNKNOWN_CASE,
                    non_retryable=True,
                )
            values = {
                "status": change.status.value,
                "received_on": change.received_on,
                "cancel_reason": change.cancel_reason.value if change.cancel_reason else None,
                "finished_at": change.occurred_at if change.status in _FINISHED else None,
            }
            await session.execute(
                insert(CaseInformationRequest)
                .values(
                    id=request.request_id,
                    case_id=request.case_id,
                    workflow_id=change.workflow_id,
                    party=request.party.value,
                    due_on=request.due_on,
                    requested_at=request.requested_at,
                    **values,
                )
                .on_conflict_do_update(index_elements=[CaseInformationRequest.id], set_=values)
            )
            await session.execute(
                insert(CaseEvent)
                .values(
                    case_id=request.case_id,
                    workflow_id=change.workflow_id,
                    step_key=change.step_key,
                    kind=change.kind,
                    stage=stage,
                    occurred_at=change.occurred_at,
                    detail={
                        "request_id": str(request.request_id),
                        "party": request.party.value,
                        "due_on": request.due_on.isoformat(),
                        **(
                            {"received_on": change.received_on.isoformat()}
                            if change.received_on
                            else {}
                        ),
                        **({"reason": change.cancel_reason.value} if change.cancel_reason else {}),
                    },
                )
                .on_conflict_do_nothing(constraint="uq_case_events_workflow_id")
            )
            for n in change.notifications:
                await enqueue_notification(
                    session,
                    idempotency_key=notification_key(
                        change.workflow_id, change.step_key, n.recipient_role
                    ),
                    notification_type=n.notification_type,
                    recipient_role=n.recipient_role,
                    case_id=request.case_id,
                    unit_code=request.unit_code,
                    due_on=n.due_on,
                )

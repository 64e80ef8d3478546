"""InformationRequestWorkflow: one request for information to an outside party, until answered.

Started by its case, only with the employee's consent for the party (parent close policy
ABANDON, because the case continues as new at stage boundaries); finished by the case's
`finish` signal when the response is recorded or the request is cancelled.
Timers (Europe/Stockholm): a reminder to the party `remind_days_before` the due date at
00:00; overdue when the due date ends (24:00), which tells the case and escalates to the
coordinator; the party is reminded again `remind_again_after_days` after the due date.
Notifications say only that a request waits, and by when: never the party or the question.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.information_requests import InformationRequestRecords
    from channels.message import NotificationType, RecipientRole
    from models.case import INFORMATION_RECIPIENT, InformationRequestStatus, NotificationRequest
    from models.information_requests import (
        InformationRequestChange,
        InformationRequestFinish,
        InformationRequestInput,
        InformationRequestOverdueNotice,
        InformationRequestResult,
    )
    from workflows.due_date_timers import OVERDUE, REMINDER, due_date_steps, finished_before

RECORD_STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
)
RECORD_STORE_TIMEOUT = timedelta(seconds=30)
# The case's signal, by name: importing the case workflow here would close an import cycle.
CASE_OVERDUE_SIGNAL = "information_request_overdue"
REMINDED_AGAIN = "reminded_again"

_Notices = tuple[tuple[NotificationType, RecipientRole], ...]


@workflow.defn
class InformationRequestWorkflow:
    @workflow.init
    def __init__(self, input: InformationRequestInput) -> None:
        self._input = input
        self._finish: InformationRequestFinish | None = None
        self._status = InformationRequestStatus.OPEN
        self._seq = 0

    @workflow.run
    async def run(self, input: InformationRequestInput) -> InformationRequestResult:
        party = INFORMATION_RECIPIENT[input.party]
        try:
            await self._record(
                "information_request_sent",
                ((NotificationType.INFORMATION_REQUEST, party),),
                occurred_at=input.requested_at,
            )
            steps = due_date_steps(
                input.due_on,
                remind_days_before=input.remind_days_before,
                since=input.requested_at,
                after_due=((REMINDED_AGAIN, input.remind_again_after_days),),
            )
            for step, at in steps:
                if await finished_before(lambda: self._finish is not None, at):
                    break
                await self._fire(step, at, party)
            await workflow.wait_condition(lambda: self._finish is not None)
        except asyncio.CancelledError:
            # Cancelled from outside (the case would signal instead): still leave a record.
            self._finish = InformationRequestFinish(status=InformationRequestStatus.CANCELLED)
            self._status = InformationRequestStatus.CANCELLED
            await self._record("information_request_cancelled", ())
            raise
        finish = self._finish
        assert finish is not None
        self._status = finish.status
        if finish.status == InformationRequestStatus.ANSWERED:
            await self._record("information_request_answered", ())
        else:
            # The party need not answer any more; the message does not say why.
            await self._record(
                "information_request_cancelled",
                ((NotificationType.INFORMATION_REQUEST_CANCELLED, party),),
            )
        return self.status()

    @workflow.signal
    def finish(self, finish: InformationRequestFinish) -> None:
        if self._finish is None:
            self._finish = finish

    @workflow.query
    def status(self) -> InformationRequestResult:
        finish = self._finish
        return InformationRequestResult(
            request_id=self._input.request_id,
            status=finish.status if finish else self._status,
            received_on=finish.received_on if finish else None,
        )

    async def _fire(self, step: str, at: datetime, party: RecipientRole) -> None:
        if step == REMINDER:
            await self._record(
                "information_request_reminder",
                ((NotificationType.INFORMATION_REQUEST_REMINDER, party),),
                occurred_at=at,
            )
        elif step == OVERDUE:
            self._status = InformationRequestStatus.OVERDUE
            await self._record(
                "information_request_overdue",
                ((NotificationType.INFORMATION_REQUEST_OVERDUE, RecipientRole.COORDINATOR),),
                occurred_at=at,
            )
            await workflow.get_external_workflow_handle(self._input.case_workflow_id).signal(
                CASE_OVERDUE_SIGNAL,
                InformationRequestOverdueNotice(request_id=self._input.request_id),
            )
        else:
            await self._record(
                "information_request_reminded_again",
                ((NotificationType.INFORMATION_REQUEST_OVERDUE, party),),
                occurred_at=at,
            )

    async def _record(
        self, kind: str, notifications: _Notices, *, occurred_at: datetime | None = None
    ) -> None:
        """The request's row, a timeline event and its notifications, in one activity.

        A timer step occurred at its scheduled instant, even when the worker gets to it later.
        """
        self._seq += 1
        finish = self._finish
        await workflow.execute_activity_method(
            InformationRequestRecords.record_information_request,
            InformationRequestChange(
                request=self._input,
                workflow_id=workflow.info().workflow_id,
                step_key=f"{self._seq:03d}-{kind}",
                kind=kind,
                occurred_at=occurred_at or workflow.now(),
                status=self._status,
                received_on=finish.received_on if finish else None,
                cancel_reason=finish.cancel_reason if finish else None,
                notifications=tuple(
                    NotificationRequest(
                        notification_type=notification_type,
                        recipient_role=role,
                        due_on=self._input.due_on,
                    )
                    for notification_type, role in notifications
                ),
            ),
            start_to_close_timeout=RECORD_STORE_TIMEOUT,
            retry_policy=RECORD_STORE_RETRY,
        )

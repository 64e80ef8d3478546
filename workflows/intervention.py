"""InterventionWorkflow: one planned intervention, from assignment to outcome, with its timers.

Started by its case (parent close policy ABANDON, because the case continues as new at
stage boundaries); finished by the case's `finish` signal, or cancelled with the case.
Timers: a reminder to the owner `remind_days_before` the due date (00:00 Europe/Stockholm),
overdue when the due date ends (24:00), an escalation `escalate_after_days` later (to the
coordinator and the manager; for the protected track's safety support, the coordinator only).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.records import CaseRecords
    from channels.message import NotificationType, RecipientRole
    from models.actions import (
        InterventionChange,
        InterventionFinish,
        InterventionInput,
        InterventionNotification,
        InterventionOverdueNotice,
        InterventionResult,
    )
    from models.case import OWNER_RECIPIENT, InterventionStatus
    from workflows.due_date_timers import due_date_steps, finished_before

RECORD_STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
)
RECORD_STORE_TIMEOUT = timedelta(seconds=30)
# The case's signal, by name: importing the case workflow here would close an import cycle.
CASE_OVERDUE_SIGNAL = "intervention_overdue"


@workflow.defn
class InterventionWorkflow:
    @workflow.init
    def __init__(self, input: InterventionInput) -> None:
        self._input = input
        self._finish: InterventionFinish | None = None
        self._status = InterventionStatus.OPEN
        self._seq = 0

    @workflow.run
    async def run(self, input: InterventionInput) -> InterventionResult:
        owner_role = OWNER_RECIPIENT[input.owner]
        try:
            await self._record(
                "intervention_assigned",
                InterventionStatus.OPEN,
                ((NotificationType.INTERVENTION_ASSIGNED, owner_role),),
            )
            for step, at in self._schedule():
                if await self._wait_for_finish_until(at):
                    break
                await self._fire(step, owner_role)
            await workflow.wait_condition(lambda: self._finish is not None)
        except asyncio.CancelledError:
            # Cancelled from outside (the case would signal instead): still leave a record.
            self._finish = InterventionFinish(status=InterventionStatus.CANCELLED)
            await self._record("intervention_cancelled", InterventionStatus.CANCELLED, ())
            raise
        finish = self._finish
        assert finish is not None
        kind = (
            "intervention_completed"
            if finish.status == InterventionStatus.COMPLETED
            else "intervention_cancelled"
        )
        await self._record(kind, finish.status, ())
        return InterventionResult(
            intervention_id=input.intervention_id, status=finish.status, outcome=finish.outcome
        )

    @workflow.signal
    def finish(self, finish: InterventionFinish) -> None:
        if self._finish is None:
            self._finish = finish

    @workflow.query
    def status(self) -> InterventionResult:
        return InterventionResult(
            intervention_id=self._input.intervention_id,
            status=self._finish.status if self._finish else self._status,
            outcome=self._finish.outcome if self._finish else None,
        )

    def _schedule(self) -> list[tuple[str, datetime]]:
        i = self._input
        return due_date_steps(
            i.due_on,
            remind_days_before=i.remind_days_before,
            since=i.assigned_at,
            after_due=(("escalation", i.escalate_after_days),),
        )

    async def _wait_for_finish_until(self, at: datetime) -> bool:
        """True when finished before `at`; False when `at` came first."""
        return await finished_before(lambda: self._finish is not None, at)

    async def _fire(self, step: str, owner_role: RecipientRole) -> None:
        if step == "reminder":
            await self._record(
                "intervention_reminder",
                self._status,
                ((NotificationType.INTERVENTION_REMINDER, owner_role),),
            )
            return
        if step == "overdue":
            self._status = InterventionStatus.OVERDUE
            await self._record(
                "intervention_overdue",
                self._status,
                (
                    (NotificationType.INTERVENTION_OVERDUE, owner_role),
                    (NotificationType.INTERVENTION_OVERDUE, RecipientRole.COORDINATOR),
                ),
            )
            await workflow.get_external_workflow_handle(self._input.case_workflow_id).signal(
                CASE_OVERDUE_SIGNAL,
                InterventionOverdueNotice(intervention_id=self._input.intervention_id),
            )
            return
        # A protected intervention escalates to the coordinator only: a manager told of an
        # overdue action they cannot see would learn that the case has a hidden track.
        escalated_to = (
            (RecipientRole.COORDINATOR,)
            if self._input.protected
            else (RecipientRole.MANAGER, RecipientRole.COORDINATOR)
        )
        await self._record(
            "intervention_escalated",
            self._status,
            tuple((NotificationType.INTERVENTION_OVERDUE, role) for role in escalated_to),
        )

    async def _record(
        self,
        kind: str,
        status: InterventionStatus,
        notifications: tuple[tuple[NotificationType, RecipientRole], ...],
    ) -> None:
        self._seq += 1
        finish = self._finish
        # One notification per role: the outbox key is per fact and role.
        roles: dict[RecipientRole, NotificationType] = {}
        for notification_type, role in notifications:
            roles.setdefault(role, notification_type)
        change = InterventionChange(
            intervention=self._input,
            workflow_id=workflow.info().workflow_id,
            step_key=f"{self._seq:03d}-{kind}",
            kind=kind,
            occurred_at=workflow.now(),
            status=status,
            outcome=finish.outcome if finish else None,
            cancel_reason=finish.cancel_reason if finish else None,
            notifications=tuple(
                InterventionNotification(notification_type=t, recipient_role=r)
                for r, t in roles.items()
            ),
        )
        if self._input.records_locally:
            # Children of cases that write locally do too (see CaseInput.records_locally).
            await workflow.execute_local_activity_method(
                CaseRecords.record_intervention,
                change,
                start_to_close_timeout=RECORD_STORE_TIMEOUT,
                retry_policy=RECORD_STORE_RETRY,
            )
            return
        await workflow.execute_activity_method(
            CaseRecords.record_intervention,
            change,
            start_to_close_timeout=RECORD_STORE_TIMEOUT,
            retry_policy=RECORD_STORE_RETRY,
        )

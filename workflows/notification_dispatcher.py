"""The singleton that keeps the notification outbox draining, one long activity at a time."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy, WorkflowIDConflictPolicy

with workflow.unsafe.imports_passed_through():
    from models.notification import (
        DISPATCH_DUE_ACTIVITY,
        DISPATCHER_WORKFLOW_ID,
        DispatcherInput,
        DispatchRequest,
        DispatchResult,
    )

# While PostgreSQL or a channel host is down, the activity fails and is retried with this
# backoff, for ever: the outbox keeps every row, so waiting loses nothing.
DISPATCH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)
# A worker that dies mid-run is noticed within this time and the run moves to another.
DISPATCH_HEARTBEAT = timedelta(seconds=30)


@workflow.defn
class NotificationDispatcherWorkflow:
    """Runs `dispatch_due` back to back; each run polls the outbox for `run_for_s`.

    Polling happens inside the activity, not as workflow timers, so the history grows by a
    handful of events per minute, not per poll; continue-as-new bounds it.
    """

    @workflow.run
    async def run(self, input: DispatcherInput) -> None:
        total = input.total
        for _ in range(input.runs_per_history):
            result = await workflow.execute_activity(
                DISPATCH_DUE_ACTIVITY,
                DispatchRequest(run_for_s=input.run_for_s),
                result_type=DispatchResult,
                start_to_close_timeout=timedelta(seconds=input.run_for_s) + timedelta(minutes=5),
                heartbeat_timeout=DISPATCH_HEARTBEAT,
                retry_policy=DISPATCH_RETRY,
            )
            total = DispatchResult(
                passes=total.passes + result.passes,
                delivered=total.delivered + result.delivered,
                retried=total.retried + result.retried,
                dead_lettered=total.dead_lettered + result.dead_lettered,
            )
            if workflow.info().is_continue_as_new_suggested():
                break
        workflow.continue_as_new(input.model_copy(update={"total": total}))


async def ensure_dispatcher_running(
    client: Client, task_queue: str, input: DispatcherInput | None = None
) -> None:
    """Start the singleton dispatcher, or leave the one that is already running alone."""
    await client.start_workflow(
        NotificationDispatcherWorkflow.run,
        input or DispatcherInput(),
        id=DISPATCHER_WORKFLOW_ID,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )

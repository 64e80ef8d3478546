"""Task-queue priority on the dev server as `make up` runs it: what ingestion relies on."""

from __future__ import annotations

import asyncio
import uuid

from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from ingestion.absences import CASE_DUE_PRIORITY
from tests.case_steps import backlog_reaches

_ran: dict[str, list[str]] = {}


@workflow.defn(name="PriorityProbe", sandboxed=False)
class PriorityProbe:
    @workflow.run
    async def run(self, queue: str, name: str) -> None:
        if not workflow.unsafe.is_replaying():
            _ran.setdefault(queue, []).append(name)


async def test_a_case_due_is_taken_before_a_backlog_of_history(
    dev_env: WorkflowEnvironment,
) -> None:
    """Thirty tasks wait at the default priority; one at priority 1 comes last and is taken
    first. With the dev server's default of four partitions per task queue this failed three
    runs of three: a poll takes the best task of the partition it reaches."""
    queue = f"priority-{uuid.uuid4().hex[:8]}"
    client = dev_env.client
    for n in range(30):
        await client.start_workflow(
            PriorityProbe.run, args=[queue, f"history-{n}"], id=f"{queue}-{n}", task_queue=queue
        )
    await client.start_workflow(
        PriorityProbe.run,
        args=[queue, "due"],
        id=f"{queue}-due",
        task_queue=queue,
        priority=CASE_DUE_PRIORITY,
    )
    # As in a burst of ingestion, the tasks wait in the server's backlog: a task only just
    # written may be handed out before the backlog is ordered.
    await backlog_reaches(client, queue, 31)
    # One task at a time (one slot, no cache), so the order taken is the order run: with two,
    # the second task taken could finish first on a busy machine.
    async with Worker(
        client,
        task_queue=queue,
        workflows=[PriorityProbe],
        max_concurrent_workflow_tasks=1,
        max_cached_workflows=0,
    ):
        for _ in range(600):
            if len(_ran.get(queue, [])) == 31:
                break
            await asyncio.sleep(0.05)
    assert _ran[queue][0] == "due"

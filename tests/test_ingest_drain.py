"""The ingestion benchmark's first sign of a drain, against the dev server it runs on."""

from __future__ import annotations

import asyncio
import uuid

from temporalio import workflow
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from benchmarks.ingest import backlog_cleared
from tests.case_steps import backlog_reaches


@workflow.defn(name="DrainProbe", sandboxed=False)
class DrainProbe:
    @workflow.run
    async def run(self) -> str:
        return "ran"


async def test_the_backlog_reads_cleared_only_once_a_worker_took_every_waiting_task(
    dev_env: WorkflowEnvironment,
) -> None:
    client = dev_env.client
    queue = f"drain-{uuid.uuid4().hex[:8]}"
    handles: list[WorkflowHandle[DrainProbe, str]] = [
        await client.start_workflow(DrainProbe.run, id=f"{queue}-{n}", task_queue=queue)
        for n in range(3)
    ]
    await backlog_reaches(client, queue, 3)

    waiting = asyncio.create_task(backlog_cleared(client, queue))
    # Several polls of a backlog that cannot clear: no worker polls this queue yet.
    await asyncio.sleep(1)
    assert not waiting.done()

    async with Worker(client, task_queue=queue, workflows=[DrainProbe]):
        await asyncio.wait_for(waiting, 60)
        assert [await h.result() for h in handles] == ["ran", "ran", "ran"]

"""The ingestion benchmark's first sign of a drain, against the dev server it runs on."""

from __future__ import annotations

import asyncio
import uuid

from temporalio import workflow
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from benchmarks.ingest import backlog_cleared


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
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        report_stats=True,
    )
    for _ in range(600):
        described = await client.workflow_service.describe_task_queue(request)
        if described.stats.approximate_backlog_count == 3:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the three tasks never showed in the backlog")

    waiting = asyncio.create_task(backlog_cleared(client, queue, pause_s=0.1))
    # Several polls of a backlog that cannot clear: no worker polls this queue yet.
    await asyncio.sleep(1)
    assert not waiting.done()

    async with Worker(client, task_queue=queue, workflows=[DrainProbe]):
        await asyncio.wait_for(waiting, 60)
        assert [await h.result() for h in handles] == ["ran", "ran", "ran"]

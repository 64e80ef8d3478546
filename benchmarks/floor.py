"""The plain-Temporal floor of the lifecycle benchmark: a minimal sandboxed workflow.

It takes the same ten steps a rehabflow case takes, each as one workflow update that runs
one activity doing one INSERT into the same PostgreSQL. Nothing else: no API, no codec, no
rules. `benchmarks.lifecycle` runs it as its own worker process so its CPU can be measured:

    python -m benchmarks.floor --address 127.0.0.1:7233 --task-queue floor --dsn postgresql://…

The module imports only the standard library and temporalio at the top, so the sandbox
re-imports next to nothing when it creates a workflow instance; asyncpg is imported by the
worker's `main` only. It runs in rehabflow's sandbox (core/sandbox.py), stock restrictions.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

FLOOR_TABLE = "bench_lifecycle_floor"
CREATE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {FLOOR_TABLE} ("
    "case_id text NOT NULL, step int NOT NULL, kind text NOT NULL, "
    "recorded_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (case_id, step))"
)


@dataclass
class FloorStep:
    case_id: str
    step: int
    kind: str


@workflow.defn(name="LifecycleFloor")
class LifecycleFloor:
    """Ten updates, one recorded activity each; done after the `close` step."""

    def __init__(self) -> None:
        self._steps = 0
        self._closed = False

    @workflow.run
    async def run(self, case_id: str) -> int:
        await workflow.wait_condition(lambda: self._closed and workflow.all_handlers_finished())
        return self._steps

    @workflow.update
    async def step(self, step: FloorStep) -> int:
        await workflow.execute_activity(
            "floor_record_step",
            step,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=5),
        )
        self._steps += 1
        if step.kind == "close":
            self._closed = True
        return self._steps


class FloorRecords:
    """The floor's one INSERT per step, on an asyncpg pool handed in by `main`."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    @activity.defn(name="floor_record_step")
    async def record_step(self, step: FloorStep) -> None:
        await self._pool.execute(
            f"INSERT INTO {FLOOR_TABLE} (case_id, step, kind) VALUES ($1, $2, $3) "  # noqa: S608 - a constant
            "ON CONFLICT DO NOTHING",
            step.case_id,
            step.step,
            step.kind,
        )


async def serve(address: str, namespace: str, task_queue: str, dsn: str) -> None:
    import asyncpg  # the worker's, not the sandbox's
    from temporalio.client import Client
    from temporalio.worker import Worker

    from core.process import freeze_start_up
    from core.sandbox import LeanSandboxedWorkflowRunner

    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=10)
    await pool.execute(CREATE_TABLE)
    client = await Client.connect(address, namespace=namespace)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[LifecycleFloor],
        activities=[FloorRecords(pool).record_step],
        # rehabflow's sandbox, which answers the worker's serialization-context questions
        # without re-entering it (core/sandbox.py): the floor gets every gain the engine does.
        workflow_runner=LeanSandboxedWorkflowRunner(),
    )
    freeze_start_up()  # as rehabflow's worker does (core/process.py)
    async with worker:
        await stop.wait()
    await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--dsn", required=True, help="a libpq URL of the PostgreSQL to write")
    args = parser.parse_args()
    from core.process import run_event_loop

    # The event loop of rehabflow's worker, too (core/process.py).
    run_event_loop(serve(args.address, args.namespace, args.task_queue, args.dsn))


if __name__ == "__main__":
    main()

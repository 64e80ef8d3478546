"""The worker's composition root: settings, logging, clients, activities, worker."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from activities.records import CaseRecords
from core.logging import LogContextInterceptor, configure_logging
from core.secrets import load_secrets
from core.settings import Settings
from core.temporal import connect
from store.db import create_engine, create_sessionmaker
from workflows import ALL_WORKFLOWS

log = structlog.get_logger(__name__)


def build_activities(sessionmaker: async_sessionmaker[AsyncSession]) -> Sequence[Any]:
    records = CaseRecords(sessionmaker)
    return [records.open_case]


def build_worker(
    client: Client, task_queue: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=ALL_WORKFLOWS,
        activities=build_activities(sessionmaker),
        interceptors=[LogContextInterceptor()],
    )


async def main() -> None:
    settings = Settings()
    configure_logging(settings)
    secrets = load_secrets(settings)
    engine = create_engine(settings)
    client = await connect(settings, secrets)
    worker = build_worker(client, settings.temporal.task_queue, create_sessionmaker(engine))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker started", task_queue=settings.temporal.task_queue)
    async with worker:
        await stop.wait()
        log.info("worker stopping")
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())

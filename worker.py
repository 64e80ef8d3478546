"""The worker's composition root: settings, logging, clients, activities, worker."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Any

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from activities.absences import CaseOpener
from activities.information_requests import InformationRequestRecords
from activities.meetings import MeetingTeamDirectory
from activities.notifications import NotificationDispatch, build_channels
from activities.programme import ProgrammeActivities
from activities.records import CaseRecords
from core.codec import KeyRing
from core.logging import LogContextInterceptor, configure_logging
from core.observability import Telemetry
from core.process import freeze_start_up, run_event_loop
from core.secrets import load_secrets
from core.settings import Settings
from core.temporal import connect, workflow_runner
from store.contacts import ContactProtector
from store.db import create_engine, create_sessionmaker
from store.meeting_teams import list_teams
from workflows import ALL_WORKFLOWS
from workflows.meeting_team import ensure_team_running
from workflows.notification_dispatcher import ensure_dispatcher_running
from workflows.programme_cycle import ensure_programme_running

log = structlog.get_logger(__name__)

# Workflows kept in memory between tasks. A cached case costs about 0.45 MB of worker RSS
# (measured with 2,000 idle cases, issue 12), so 500 bound the cache near 225 MB; an
# evicted case replays its (short, lean) history on its next task.
MAX_CACHED_WORKFLOWS = 500
# Workflow tasks one worker takes at once. Its activations share one interpreter lock, so
# more at once is no faster: the SDK's default of 100 only held tasks in this process,
# where task-queue priority no longer orders them, and let a burst of ingestion keep a
# new case's first task (which writes its opening) waiting over 5 s. Ten to twenty took
# the same throughput and half the wait (`benchmarks.ingest`, README "Benchmark").
MAX_CONCURRENT_WORKFLOW_TASKS = 20
# Pollers of the task queue itself, against those of this worker's sticky queue (tasks of
# workflows it caches), as a fraction of all pollers: 1.0 lets every poller take new
# work. The SDK's 0.2 kept one poller of five on new work, so a monitor first started by
# news of a case due (priority 1) waited up to 4 s behind tasks of cached workflows.
NONSTICKY_POLL_RATIO = 1.0


def build_activities(
    client: Client, task_queue: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> Sequence[Any]:
    records = CaseRecords(sessionmaker)
    case_opener = CaseOpener(sessionmaker, client, task_queue)
    information_requests = InformationRequestRecords(sessionmaker)
    teams = MeetingTeamDirectory(sessionmaker)
    programme = ProgrammeActivities(sessionmaker)
    return [
        records.open_case,
        records.record_change,
        records.record_changes,
        records.record_intervention,
        records.erase_personal_data,
        case_opener.open_or_deliver,
        case_opener.open_or_deliver_all,
        case_opener.open_for_referral,
        information_requests.record_information_request,
        teams.team_of_unit,
        programme.send_due_reminders,
        programme.schedule_course_round,
    ]


def build_worker(
    client: Client,
    task_queue: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    notifications: NotificationDispatch | None = None,
) -> Worker:
    activities = list(build_activities(client, task_queue, sessionmaker))
    if notifications is not None:
        activities.append(notifications.dispatch_due)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=ALL_WORKFLOWS,
        activities=activities,
        interceptors=[LogContextInterceptor()],
        max_cached_workflows=MAX_CACHED_WORKFLOWS,
        max_concurrent_workflow_tasks=MAX_CONCURRENT_WORKFLOW_TASKS,
        nonsticky_to_sticky_poll_ratio=NONSTICKY_POLL_RATIO,
        workflow_runner=workflow_runner(),
    )


async def main() -> None:
    settings = Settings()
    configure_logging(settings)
    secrets = load_secrets(settings)
    telemetry = Telemetry.from_settings(settings, "rehabflow-worker")
    engine = create_engine(settings)
    telemetry.instrument_engine(engine)
    # The client's tracing interceptor is the worker's too: workflow and activity spans.
    client = await connect(
        settings, secrets, interceptors=telemetry.interceptors(), runtime=telemetry.runtime
    )
    sessionmaker = create_sessionmaker(engine)
    http = httpx.AsyncClient(follow_redirects=False)
    notifications = NotificationDispatch(
        sessionmaker,
        build_channels(settings, http),
        ContactProtector(KeyRing.from_config(secrets.pin_encryption_keys)),
        settings.notifications,
    )
    worker = build_worker(
        client, settings.temporal.task_queue, sessionmaker, notifications=notifications
    )
    freeze_start_up()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker started", task_queue=settings.temporal.task_queue)

    async def ready() -> bool:
        # Polling, and the frontend answers: what the worker's readiness probe asks.
        try:
            return worker.is_running and await client.service_client.check_health()
        except Exception:
            return False

    async with AsyncExitStack() as stack, worker:
        await telemetry.run_in_background(settings, stack, ready=ready)
        # Every worker may try; the id-conflict policy keeps the one already running.
        await ensure_dispatcher_running(client, settings.temporal.task_queue)
        # Every registered team keeps its cadence, even on a fresh Temporal database.
        async with sessionmaker() as session:
            teams = await list_teams(session)
        for team in teams:
            await ensure_team_running(client, settings.temporal.task_queue, team.config)
        # The organisation's yearly cycle of manager courses and APT dialogues.
        await ensure_programme_running(
            client, settings.temporal.task_queue, settings.programme.organisation
        )
        await stop.wait()
        log.info("worker stopping")
    await http.aclose()
    await engine.dispose()
    telemetry.shutdown()


if __name__ == "__main__":
    # libuv's event loop under the same asyncio API (core/process.py says why it matters).
    # Workflow code never runs on it: the SDK runs each workflow on a deterministic loop of
    # its own.
    run_event_loop(main())

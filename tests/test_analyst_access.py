"""The analyst sees aggregates only: every path to a single case answers 403 or 404."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from api.auth import EmbeddedIssuer
from core.settings import Settings
from models.api import Role
from store.audit import audit_rows
from store.schema import Case, Employee
from tests.conftest import bearer

# The analyst's own endpoints, and those that hold no case at all.
_NOT_CASE_PATHS = re.compile(r"^/(healthz|readyz)$|^/api/v1/reports/|^/api/v1/programme/coverage$")
# Static pages: the codec sign-in form.
_STATIC = {("get", "/codec/session")}
_WELL_FORMED_ACTIONS = {
    "record-consent": {"party": "fk", "given": True},
    "close-case": {"outcome": "other"},
    "record-deadline-met": {"kind": "return_to_work_plan"},
}


async def test_an_analyst_token_reads_no_case_on_any_path(
    api: httpx.AsyncClient,
    issuer: EmbeddedIssuer,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    unit_code: str,
) -> None:
    case_id = uuid.uuid4()
    async with sessionmaker.begin() as session:
        session.add(Employee(pseudonym=(employee := uuid.uuid4()), unit_code=unit_code))
        await _flush(session)
        session.add(
            Case(
                id=case_id,
                workflow_id=f"case-{case_id}",
                employee_pseudonym=employee,
                unit_code=unit_code,
                trigger="manager_concern",
                stage="planning",
                sick_start=date(2026, 10, 1),
                opened_at=datetime(2026, 10, 15, tzinfo=UTC),
            )
        )
    # Even a token that names the unit (a misconfigured identity provider) gets nothing.
    headers = bearer(issuer.mint(Role.ANALYST, subject="analyst-1", units=[unit_code]))
    tried = 0
    # Every operation the API documents, so a new endpoint is covered the day it is added.
    for template, operations in create_app(settings).openapi()["paths"].items():
        if _NOT_CASE_PATHS.search(template):
            continue
        path = re.sub(r"\{[a-z_]+\}", str(case_id), template)
        for method in sorted(operations):
            if (method, template) in _STATIC:
                continue
            response = await api.request(method.upper(), path, headers=headers, json={})
            status = response.status_code
            if method != "get" and status == 422:
                # The empty body was refused for its shape before anything was looked up.
                continue
            assert status in (403, 404), (method, template, status)
            assert unit_code not in response.text and "planning" not in response.text
            tried += 1
    assert tried >= 15
    # Well-formed actions, so the refusal is about the role and not the body's shape.
    for action, body in _WELL_FORMED_ACTIONS.items():
        response = await api.post(f"/api/v1/cases/{case_id}/{action}", headers=headers, json=body)
        assert response.status_code in (403, 404), action
    async with sessionmaker() as session:
        refused = [row for row in await audit_rows(session) if not row.allowed]
    # Refusals are audited like every other role's.
    assert refused and all(row.role == "analyst" for row in refused)


async def _flush(session: AsyncSession) -> None:
    await session.flush()

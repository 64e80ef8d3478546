"""Who learns of an information request: the coordinator all, others only what they need.

That healthcare or social services were asked reveals a health or social matter, so the
manager sees only requests to Arbetsförmedlingen; occupational health only those to itself.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.auth import EmbeddedIssuer
from models.api import Role
from models.case import information_request_workflow_id
from store.audit import audit_rows
from store.schema import Case, CaseConsent, CaseEvent, CaseInformationRequest, Employee
from tests.conftest import bearer

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PARTIES = ("healthcare", "fhv", "social_services", "arbetsformedlingen")
# The parties whose requests (in the case view and the timeline) each audience sees.
SEES = {
    Role.COORDINATOR: set(PARTIES),
    Role.MANAGER: {"arbetsformedlingen"},
    Role.FHV: {"fhv"},
    Role.FK_OFFICER: set(),
    # The employee's timeline shows the work-oriented steps; the case view has no requests.
    Role.EMPLOYEE: {"arbetsformedlingen"},
}


@dataclass(frozen=True)
class CaseWithRequests:
    case_id: uuid.UUID
    tokens: dict[Role, dict[str, str]]


@pytest_asyncio.fixture
async def case(
    sessionmaker: async_sessionmaker[AsyncSession], unit_code: str, issuer: EmbeddedIssuer
) -> CaseWithRequests:
    """A case with FK and FHV consent and one request to each party, as the workflows write."""
    pseudonym, case_id = uuid.uuid4(), uuid.uuid4()
    async with sessionmaker.begin() as session:
        session.add(Employee(pseudonym=pseudonym, unit_code=unit_code))
        await session.flush()
        session.add(
            Case(
                id=case_id,
                workflow_id=f"case-{case_id}",
                employee_pseudonym=pseudonym,
                unit_code=unit_code,
                trigger="manager_concern",
                stage="planning",
                opened_at=NOW,
            )
        )
        await session.flush()
        for party in ("fk", *PARTIES):
            session.add(CaseConsent(case_id=case_id, party=party, given=True, recorded_at=NOW))
        for n, party in enumerate(PARTIES):
            request_id = uuid.uuid4()
            child = information_request_workflow_id(request_id)
            at = NOW + timedelta(minutes=n)
            session.add(
                CaseInformationRequest(
                    id=request_id,
                    case_id=case_id,
                    workflow_id=child,
                    party=party,
                    due_on=date(2026, 11, 20),
                    status="open",
                    requested_at=at,
                )
            )
            detail = {"request_id": str(request_id), "party": party, "due_on": "2026-11-20"}
            for workflow_id, kind in (
                (f"case-{case_id}", "information_requested"),
                (child, "information_request_sent"),
            ):
                session.add(
                    CaseEvent(
                        case_id=case_id,
                        workflow_id=workflow_id,
                        step_key=f"{n}-{kind}",
                        kind=kind,
                        stage="planning",
                        occurred_at=at,
                        detail=detail,
                    )
                )
    tokens = {
        role: bearer(
            issuer.mint(
                role,
                subject=f"{role.value}-1",
                units=[unit_code] if role in (Role.MANAGER, Role.COORDINATOR) else [],
                employee_pseudonym=pseudonym if role is Role.EMPLOYEE else None,
            )
        )
        for role in SEES
    }
    return CaseWithRequests(case_id, tokens)


@pytest.mark.parametrize("role", list(SEES))
async def test_each_role_sees_only_the_requests_it_needs_to_know_of(
    api: httpx.AsyncClient, case: CaseWithRequests, role: Role
) -> None:
    headers = case.tokens[role]
    view = (await api.get(f"/api/v1/cases/{case.case_id}", headers=headers)).json()
    if role in (Role.COORDINATOR, Role.MANAGER, Role.FHV):
        assert {r["party"] for r in view["information_requests"]} == SEES[role]
        assert {r["status"] for r in view["information_requests"]} == {"open"}
    else:
        assert "information_requests" not in view

    timeline = (await api.get(f"/api/v1/cases/{case.case_id}/timeline", headers=headers)).json()
    steps = [e for e in timeline["entries"] if e["kind"].startswith("information")]
    # Two steps per visible request: the case's "requested" and the request's "sent".
    assert len(steps) == 2 * len(SEES[role])
    if role is Role.COORDINATOR:
        assert {e["detail"]["party"] for e in steps} == set(PARTIES)
    else:
        assert all("detail" not in e for e in steps)


async def test_reads_of_requests_are_audited_and_only_the_coordinator_may_request(
    api: httpx.AsyncClient,
    case: CaseWithRequests,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    for role in (Role.COORDINATOR, Role.FHV, Role.MANAGER):
        response = await api.get(f"/api/v1/cases/{case.case_id}", headers=case.tokens[role])
        assert response.status_code == 200
    for role in (Role.MANAGER, Role.FHV, Role.EMPLOYEE):
        refused = await api.post(
            f"/api/v1/cases/{case.case_id}/request-information",
            json={"party": "arbetsformedlingen", "due_on": "2026-12-01"},
            headers=case.tokens[role],
        )
        assert refused.status_code == 403, role

    async with sessionmaker() as session:
        rows = [(r.role, r.what, r.allowed) for r in await audit_rows(session, case.case_id)]
    assert ("coordinator", "case.full", True) in rows
    assert ("fhv", "case.medical", True) in rows
    assert not [r for r in rows if r[0] == "manager" and r[2]]  # the manager's view is not
    assert {r[0] for r in rows if r[1] == "action.request_information"} == {
        "manager",
        "fhv",
        "employee",
    }

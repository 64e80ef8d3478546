"""Need-to-know: which role sees which case, which fields and which steps; and the audit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.auth import EmbeddedIssuer
from models.api import Role
from store.audit import audit_rows
from store.schema import (
    Case,
    CaseConsent,
    CaseEvent,
    CaseIntervention,
    Employee,
    Meeting,
    Screening,
    Unit,
    ViolenceDisclosure,
)
from tests.conftest import bearer

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

# Keys that must never reach an audience, not even as null.
RESTRICTED_KEYS = {"screenings", "violence_disclosed", "consents", "policy_id"}
FORBIDDEN_KEYS: dict[Role, set[str]] = {
    Role.MANAGER: RESTRICTED_KEYS,
    Role.FK_OFFICER: RESTRICTED_KEYS | {"interventions", "unit_code", "trigger", "outcome"},
    Role.FHV: RESTRICTED_KEYS | {"meetings", "sick_start", "expected_end", "unit_code"},
    Role.SOCIAL_SERVICES: RESTRICTED_KEYS
    | {"meetings", "sick_start", "expected_end", "unit_code", "trigger"},
    Role.EMPLOYEE: RESTRICTED_KEYS - {"consents"} | {"interventions", "unit_code"},
    Role.COORDINATOR: set(),
}
# Timeline steps, by track; which audience sees which is the point of the test.
EVENT_KINDS = {
    "case_opened": "general",
    "joint_meeting_booked": "meeting",
    "screening_recorded": "screening",
    "violence_disclosed": "violence",
    "intervention_added": "medical",
    "intervention_assigned": "work",
    "intervention_completed": "social",
    "mystery_step": "restricted",
}
# Intervention steps name their track in the detail, as the workflows record them.
EVENT_TRACK_DETAIL = {
    "intervention_added": {"track": "medical"},
    "intervention_assigned": {"track": "work_oriented"},
    "intervention_completed": {"track": "social"},
}
VISIBLE_EVENTS = {
    Role.COORDINATOR: set(EVENT_KINDS),
    Role.MANAGER: {"case_opened", "joint_meeting_booked", "intervention_assigned"},
    Role.FK_OFFICER: {"case_opened", "joint_meeting_booked"},
    Role.FHV: {"case_opened", "intervention_added"},
    Role.EMPLOYEE: {"case_opened", "joint_meeting_booked", "intervention_assigned"},
    Role.SOCIAL_SERVICES: {"case_opened", "intervention_completed"},
}
READERS = [
    Role.COORDINATOR,
    Role.MANAGER,
    Role.FK_OFFICER,
    Role.FHV,
    Role.EMPLOYEE,
    Role.SOCIAL_SERVICES,
]
NON_READERS = [Role.ADMIN, Role.HR_SYSTEM, Role.ANALYST]


@dataclass(frozen=True)
class World:
    own: uuid.UUID  # in the callers' unit, with FK and FHV consent, the employee's own
    foreign: uuid.UUID  # another unit, no consent, another employee
    unit: str
    other_unit: str
    employee: uuid.UUID
    tokens: dict[Role, dict[str, str]]


async def _add_case(
    session: AsyncSession, unit: str, *, consents: tuple[str, ...], stage: str = "planning"
) -> tuple[uuid.UUID, uuid.UUID]:
    pseudonym, case_id = uuid.uuid4(), uuid.uuid4()
    session.add(Employee(pseudonym=pseudonym, unit_code=unit))
    await session.flush()
    workflow_id = f"case-{case_id}"
    session.add(
        Case(
            id=case_id,
            workflow_id=workflow_id,
            employee_pseudonym=pseudonym,
            unit_code=unit,
            trigger="manager_concern",
            stage=stage,
            sick_start=date(2026, 10, 1),
            opened_at=NOW,
        )
    )
    await session.flush()
    for party in consents:
        session.add(CaseConsent(case_id=case_id, party=party, given=True, recorded_at=NOW))
    for n, kind in enumerate(EVENT_KINDS):
        session.add(
            CaseEvent(
                case_id=case_id,
                workflow_id=workflow_id,
                step_key=kind,
                kind=kind,
                stage=stage,
                occurred_at=NOW + timedelta(minutes=n),
                detail={"note_code": kind, **EVENT_TRACK_DETAIL.get(kind, {})},
            )
        )
    session.add(
        Meeting(
            id=uuid.uuid4(),
            case_id=case_id,
            workflow_id=workflow_id,
            step_key="meeting",
            starts_at=NOW,
            ends_at=NOW + timedelta(hours=1),
            reinforced_support=True,
        )
    )
    for track in ("medical", "social", "work_oriented"):
        session.add(
            CaseIntervention(
                id=uuid.uuid4(),
                case_id=case_id,
                workflow_id=f"iv-{uuid.uuid4()}",
                track=track,
                kind=f"{track}_support",
                owner="coordinator",
                due_on=date(2026, 12, 1),
                status="open",
                assigned_at=NOW,
            )
        )
    session.add(
        Screening(
            case_id=case_id,
            workflow_id=workflow_id,
            step_key="screening",
            instrument_id="phq9",
            instrument_version=1,
            total=17,
            band="moderately_severe",
            risk_level="high",
            administered_at=NOW,
        )
    )
    session.add(
        ViolenceDisclosure(
            case_id=case_id, workflow_id=workflow_id, step_key="violence", disclosed_at=NOW
        )
    )
    return case_id, pseudonym


@pytest_asyncio.fixture
async def world(
    sessionmaker: async_sessionmaker[AsyncSession], unit_code: str, issuer: EmbeddedIssuer
) -> World:
    other_unit = f"X{uuid.uuid4().hex[:6].upper()}"
    async with sessionmaker.begin() as session:
        session.add(Unit(code=other_unit, name="Another unit"))
        await session.flush()
        own, employee = await _add_case(
            session, unit_code, consents=("fk", "fhv", "social_services")
        )
        foreign, _ = await _add_case(session, other_unit, consents=())
    tokens = {
        role: bearer(
            issuer.mint(
                role,
                subject=f"{role.value}-1",
                units=[unit_code] if role in (Role.MANAGER, Role.COORDINATOR) else [],
                employee_pseudonym=employee if role is Role.EMPLOYEE else None,
            )
        )
        for role in Role
    }
    return World(own, foreign, unit_code, other_unit, employee, tokens)


@pytest.mark.parametrize("path", ["", "/timeline"])
@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("which", ["own", "foreign", "unknown"])
async def test_a_role_reads_a_case_only_where_it_may_and_never_learns_of_others(
    api: httpx.AsyncClient, world: World, role: Role, which: str, path: str
) -> None:
    case_id = {"own": world.own, "foreign": world.foreign, "unknown": uuid.uuid4()}[which]
    response = await api.get(f"/api/v1/cases/{case_id}{path}", headers=world.tokens[role])
    if role in NON_READERS:
        assert response.status_code == 403
    elif which == "own":
        assert response.status_code == 200, response.text
        assert response.json()["audience"] == role.value
    else:
        # A foreign case answers exactly like one that does not exist.
        assert response.status_code == 404
        assert response.json() == {"detail": "no such case"}


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("close-case", {"outcome": "other"}),
        ("record-consent", {"party": "fk", "given": True}),
        ("record-screening-result", None),
        ("set-sick-leave", {"start": "2026-10-01"}),
    ],
)
@pytest.mark.parametrize("role", list(Role))
async def test_no_role_acts_on_a_case_it_may_not_see(
    api: httpx.AsyncClient, world: World, role: Role, action: str, body: dict[str, object] | None
) -> None:
    body = body or {
        "answers": [
            {
                "instrument_id": "violence_exposure",
                "instrument_version": 1,
                "answers": dict.fromkeys(
                    ("physical", "psychological", "sexual", "threats", "at_work"), 0
                ),
            }
        ]
    }
    response = await api.post(
        f"/api/v1/cases/{world.foreign}/{action}", json=body, headers=world.tokens[role]
    )
    assert response.status_code in (403, 404), response.text


@pytest.mark.parametrize("role", READERS)
async def test_each_audience_gets_only_its_own_fields_and_tracks(
    api: httpx.AsyncClient, world: World, role: Role
) -> None:
    case = (await api.get(f"/api/v1/cases/{world.own}", headers=world.tokens[role])).json()
    assert not FORBIDDEN_KEYS[role] & set(case), case
    tracks = {iv["track"] for iv in case.get("interventions", [])}
    expected_tracks = {
        Role.COORDINATOR: {"medical", "social", "work_oriented"},
        Role.MANAGER: {"work_oriented"},
        Role.FHV: {"medical"},
        Role.SOCIAL_SERVICES: {"social"},
    }.get(role, set())
    assert tracks == expected_tracks
    if role is Role.COORDINATOR:
        assert case["violence_disclosed"] is True
        assert case["screenings"][0]["band"] == "moderately_severe"

    timeline = (
        await api.get(f"/api/v1/cases/{world.own}/timeline", headers=world.tokens[role])
    ).json()
    assert {e["kind"] for e in timeline["entries"]} == VISIBLE_EVENTS[role]
    has_detail = any("detail" in e for e in timeline["entries"])
    assert has_detail is (role is Role.COORDINATOR)
    body = str(case) + str(timeline)
    if role is not Role.COORDINATOR:
        assert "violence" not in body and "screening" not in body and "phq9" not in body


async def test_lists_are_scoped_filtered_and_paged(api: httpx.AsyncClient, world: World) -> None:
    async def ids(role: Role, query: str = "") -> list[str]:
        response = await api.get(f"/api/v1/cases{query}", headers=world.tokens[role])
        assert response.status_code == 200, response.text
        return [c["case_id"] for c in response.json()["items"]]

    own = str(world.own)
    for role in READERS:
        assert await ids(role) == [own], role
    for role in NON_READERS:
        assert (await api.get("/api/v1/cases", headers=world.tokens[role])).status_code == 403
    coordinator = Role.COORDINATOR
    assert await ids(coordinator, "?stage=planning&overdue=false") == [own]
    assert await ids(coordinator, "?stage=closed") == []
    assert await ids(coordinator, f"?unit={world.other_unit}") == []
    assert await ids(coordinator, "?trigger=self_referral") == []
    page = await api.get("/api/v1/cases?limit=1&offset=1", headers=world.tokens[coordinator])
    assert page.json() == {"items": [], "total": 1, "limit": 1, "offset": 1}


async def test_sensitive_reads_and_refusals_are_audited_and_the_audit_is_append_only(
    api: httpx.AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    t = world.tokens
    await api.get(f"/api/v1/cases/{world.own}", headers=t[Role.COORDINATOR])  # sensitive
    await api.get(f"/api/v1/cases/{world.own}/timeline", headers=t[Role.COORDINATOR])
    await api.get(f"/api/v1/cases/{world.own}", headers=t[Role.FHV])  # medical track
    await api.get(f"/api/v1/cases/{world.own}", headers=t[Role.MANAGER])  # not sensitive
    await api.get(f"/api/v1/cases/{world.foreign}", headers=t[Role.MANAGER])  # refused
    await api.get(f"/api/v1/cases/{world.own}", headers=t[Role.ADMIN])  # refused by role

    async with sessionmaker() as session:
        rows = [
            (r.subject, r.role, r.case_id, r.what, r.allowed) for r in await audit_rows(session)
        ]
    assert rows == [
        ("coordinator-1", "coordinator", world.own, "case.full", True),
        # The case has a disclosure: showing it to the coordinator is a read of its own.
        ("coordinator-1", "coordinator", world.own, "violence.read", True),
        ("coordinator-1", "coordinator", world.own, "timeline.read", True),
        ("fhv-1", "fhv", world.own, "case.medical", True),
        ("manager-1", "manager", world.foreign, "case.read", False),
        ("admin-1", "admin", world.own, "case.read", False),
    ]
    for statement in ("UPDATE access_audit SET allowed = true", "DELETE FROM access_audit"):
        async with sessionmaker() as session:
            with pytest.raises(DBAPIError, match="append-only"):
                await session.execute(text(statement))

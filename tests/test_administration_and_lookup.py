"""The API gaps: administration (units and their policy, contacts, teams), a case's
deadlines, finding a case from the identity number, and the employee's own contact."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.auth import EmbeddedIssuer
from models.api import Role
from store.audit import audit_rows
from store.schema import EmployeeContact
from tests.conftest import bearer

pytestmark = pytest.mark.own_temporal("module")

PIN = "19811218-9876"
OTHER_PIN = "19900101-0017"


def token(issuer: EmbeddedIssuer, role: Role, **claims: object) -> dict[str, str]:
    return bearer(issuer.mint(role, **claims))  # type: ignore[arg-type]


async def test_an_administrator_manages_units_and_contacts_and_only_an_administrator(
    api: httpx.AsyncClient, issuer: EmbeddedIssuer
) -> None:
    admin = token(issuer, Role.ADMIN)
    created = await api.post(
        "/api/v1/units",
        json={"code": "OSLO-1", "name": "Hjemmetjeneste", "policy_id": "no-nav"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    assert created.json() == {
        "code": "OSLO-1",
        "name": "Hjemmetjeneste",
        "policy_id": "no-nav",
        "active": True,
    }
    again = await api.post("/api/v1/units", json={"code": "OSLO-1", "name": "x"}, headers=admin)
    assert again.status_code == 409
    bad = await api.post(
        "/api/v1/units", json={"code": "X", "name": "x", "policy_id": "de-x"}, headers=admin
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "policy_id"

    changed = await api.patch(
        "/api/v1/units/OSLO-1",
        json={"name": "Hjemmetjeneste nord", "active": False},
        headers=admin,
    )
    assert changed.json()["name"] == "Hjemmetjeneste nord" and not changed.json()["active"]
    referral = await api.post(
        "/api/v1/cases",
        json={"employee_ref": PIN, "unit_code": "OSLO-1", "trigger": "manager_concern"},
        headers=token(issuer, Role.COORDINATOR, units=["OSLO-1"]),
    )
    assert referral.status_code == 422
    assert (
        referral.json()["detail"][0]["reason"] == "the unit is deactivated and takes no new cases"
    )
    listed = await api.get("/api/v1/units", headers=admin)
    assert [u["code"] for u in listed.json()] == ["OSLO-1"]

    contact = await api.post(
        "/api/v1/units/OSLO-1/contacts",
        json={"role": "manager", "address": "leder@example.org", "language": "en"},
        headers=admin,
    )
    assert contact.status_code == 201, contact.text
    contact_id = contact.json()["contact_id"]
    not_mail = await api.post(
        "/api/v1/units/OSLO-1/contacts",
        json={"role": "manager", "address": "not-an-address"},
        headers=admin,
    )
    assert not_mail.status_code == 422
    assert "not-an-address" not in not_mail.text
    off = await api.patch(
        f"/api/v1/units/OSLO-1/contacts/{contact_id}", json={"active": False}, headers=admin
    )
    assert off.json()["active"] is False
    contacts = await api.get("/api/v1/units/OSLO-1/contacts", headers=admin)
    assert [(c["role"], c["language"], c["active"]) for c in contacts.json()] == [
        ("manager", "en", False)
    ]
    assert (await api.get("/api/v1/units/NOPE/contacts", headers=admin)).status_code == 404

    for role in (Role.COORDINATOR, Role.MANAGER, Role.EMPLOYEE):
        refused = await api.get("/api/v1/units", headers=token(issuer, role))
        assert refused.status_code == 403, role


async def test_a_case_snapshots_its_units_policy_and_lists_every_deadline(
    api: httpx.AsyncClient,
    issuer: EmbeddedIssuer,
    worker: Worker,
    time_skipping_env: WorkflowEnvironment,
) -> None:
    admin = token(issuer, Role.ADMIN)
    await api.post(
        "/api/v1/units",
        json={"code": "NO-1", "name": "Oslo", "policy_id": "no-nav"},
        headers=admin,
    )
    coordinator = token(issuer, Role.COORDINATOR, units=["NO-1"])
    created = await api.post(
        "/api/v1/cases",
        json={"employee_ref": PIN, "unit_code": "NO-1", "trigger": "manager_concern"},
        headers=coordinator,
    )
    assert created.status_code == 201, created.text
    case_id = created.json()["case_id"]
    # A later change of the unit's policy does not touch the running case.
    await api.patch("/api/v1/units/NO-1", json={"policy_id": "se-default"}, headers=admin)
    start = (await time_skipping_env.get_current_time()).date() - timedelta(days=2)
    moved = await api.post(
        f"/api/v1/cases/{case_id}/set-sick-leave", json={"start": str(start)}, headers=coordinator
    )
    assert moved.status_code == 200, moved.text

    view = (await api.get(f"/api/v1/cases/{case_id}", headers=coordinator)).json()
    assert view["policy_id"] == "no-nav"
    deadlines = await api.get(f"/api/v1/cases/{case_id}/deadlines", headers=coordinator)
    assert deadlines.status_code == 200, deadlines.text
    items = deadlines.json()["items"]
    assert {"follow_up_plan", "dialogue_meeting_1", "benefit_end"} <= {d["kind"] for d in items}
    plan = next(d for d in items if d["kind"] == "follow_up_plan")
    assert plan == {
        "kind": "follow_up_plan",
        "due_on": str(start + timedelta(days=27)),
        "status": "pending",
        "met_on": None,
    }
    assert [d["due_on"] for d in items] == sorted(d["due_on"] for d in items)
    fk = await api.get(f"/api/v1/cases/{case_id}/deadlines", headers=token(issuer, Role.FK_OFFICER))
    assert fk.status_code == 403
    other_unit = token(issuer, Role.MANAGER, units=["ELSEWHERE"])
    hidden = await api.get(f"/api/v1/cases/{case_id}/deadlines", headers=other_unit)
    assert hidden.status_code == 404


async def test_a_case_is_found_from_the_identity_number_in_the_body_and_the_search_is_audited(
    api: httpx.AsyncClient,
    issuer: EmbeddedIssuer,
    worker: Worker,
    unit_code: str,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    coordinator = token(issuer, Role.COORDINATOR, subject="kim", units=[unit_code])
    created = await api.post(
        "/api/v1/cases",
        json={"employee_ref": PIN, "unit_code": unit_code, "trigger": "manager_concern"},
        headers=coordinator,
    )
    case_id = created.json()["case_id"]

    found = await api.post("/api/v1/cases/find", json={"employee_ref": PIN}, headers=coordinator)
    assert found.status_code == 200, found.text
    assert [c["case_id"] for c in found.json()["items"]] == [case_id]
    nobody = await api.post(
        "/api/v1/cases/find", json={"employee_ref": OTHER_PIN}, headers=coordinator
    )
    assert nobody.json()["items"] == []
    elsewhere = token(issuer, Role.MANAGER, units=["ELSEWHERE"])
    hidden = await api.post("/api/v1/cases/find", json={"employee_ref": PIN}, headers=elsewhere)
    assert hidden.json()["items"] == []
    invalid = await api.post(
        "/api/v1/cases/find", json={"employee_ref": "19811218-9875"}, headers=coordinator
    )
    assert invalid.status_code == 422 and "9875" not in invalid.text
    fk = await api.post(
        "/api/v1/cases/find", json={"employee_ref": PIN}, headers=token(issuer, Role.FK_OFFICER)
    )
    assert fk.status_code == 403

    async with sessionmaker() as session:
        searches = [r for r in await audit_rows(session) if r.what == "case.find"]
    assert [(r.subject, str(r.case_id) if r.case_id else None) for r in searches][:2] == [
        ("kim", case_id),
        ("kim", None),
    ]


async def test_the_employee_sets_an_own_contact_kept_encrypted(
    api: httpx.AsyncClient,
    issuer: EmbeddedIssuer,
    worker: Worker,
    unit_code: str,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    coordinator = token(issuer, Role.COORDINATOR, units=[unit_code])
    created = await api.post(
        "/api/v1/cases",
        json={"employee_ref": OTHER_PIN, "unit_code": unit_code, "trigger": "manager_concern"},
        headers=coordinator,
    )
    case_id = created.json()["case_id"]

    put = await api.put(
        f"/api/v1/cases/{case_id}/employee-contact",
        json={"address": "anna@example.org", "language": "en"},
        headers=coordinator,
    )
    assert put.status_code == 204, put.text
    bad = await api.put(
        f"/api/v1/cases/{case_id}/employee-contact",
        json={"address": "anna at home"},
        headers=coordinator,
    )
    assert bad.status_code == 422 and "anna at home" not in bad.text
    manager = await api.put(
        f"/api/v1/cases/{case_id}/employee-contact",
        json={"address": "x@example.org"},
        headers=token(issuer, Role.MANAGER, units=[unit_code]),
    )
    assert manager.status_code == 403
    async with sessionmaker() as session:
        (contact,) = list(await session.scalars(select(EmployeeContact)))
        assert b"anna@example.org" not in contact.address_encrypted
        assert contact.language == "en"


async def test_api_reasons_follow_the_clients_accept_language(
    api: httpx.AsyncClient, issuer: EmbeddedIssuer, unit_code: str
) -> None:
    coordinator = token(issuer, Role.COORDINATOR, units=[unit_code])
    body = {"employee_ref": "19811218-9875", "unit_code": unit_code, "trigger": "manager_concern"}
    swedish = await api.post(
        "/api/v1/cases", json=body, headers=coordinator | {"Accept-Language": "sv-SE,sv;q=0.9"}
    )
    assert swedish.json()["detail"] == [
        {"field": "employee_ref", "reason": "kontrollsiffran stämmer inte"}
    ]
    english = await api.post(
        "/api/v1/cases", json=body, headers=coordinator | {"Accept-Language": "en"}
    )
    assert english.json()["detail"][0]["reason"] == "check digit does not match"
    # A client that names no language of ours gets Swedish, the default (DESIGN).
    for named in ("", "de-DE"):
        plain = await api.post(
            "/api/v1/cases", json=body, headers=coordinator | {"Accept-Language": named}
        )
        assert plain.json()["detail"][0]["reason"] == "kontrollsiffran stämmer inte"

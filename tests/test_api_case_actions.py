"""Case actions through the API: the real workflow's updates, its rejections, and who may act."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.worker import Worker

from api.auth import EmbeddedIssuer
from models.api import Role
from models.deadlines import STOCKHOLM
from store.audit import audit_rows
from tests.conftest import bearer

PIN = "19811218-9876"


async def test_an_action_runs_the_workflow_update_and_a_rejection_is_409_with_the_reason(
    api: httpx.AsyncClient,
    worker: Worker,
    unit_code: str,
    issuer: EmbeddedIssuer,
    coordinator_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    created = await api.post(
        "/api/v1/cases",
        json={"employee_ref": PIN, "unit_code": unit_code, "trigger": "manager_concern"},
        headers=coordinator_headers,
    )
    case_id = created.json()["case_id"]
    fk = bearer(issuer.mint(Role.FK_OFFICER, subject="fk-1"))
    # Without the employee's consent, FK does not even learn that the case exists.
    assert (await api.get(f"/api/v1/cases/{case_id}", headers=fk)).status_code == 404

    consent = await api.post(
        f"/api/v1/cases/{case_id}/record-consent",
        json={"party": "fk", "given": True},
        headers=coordinator_headers,
    )
    assert consent.status_code == 200, consent.text
    assert consent.json()["action"] == "record_consent"
    assert (await api.get(f"/api/v1/cases/{case_id}", headers=fk)).status_code == 200

    again = await api.post(
        f"/api/v1/cases/{case_id}/record-consent",
        json={"party": "fk", "given": True},
        headers=coordinator_headers,
    )
    assert again.status_code == 409
    assert again.json() == {"detail": "consent for fk is already given"}

    manager = bearer(issuer.mint(Role.MANAGER, subject="manager-1", units=[unit_code]))
    closing = await api.post(
        f"/api/v1/cases/{case_id}/close-case", json={"outcome": "other"}, headers=manager
    )
    assert closing.status_code == 403
    medical = await api.post(
        f"/api/v1/cases/{case_id}/add-intervention",
        json={
            "intervention": {
                "track": "medical",
                "kind": "physiotherapy",
                "owner": "healthcare",
                "due_on": "2027-01-15",
            }
        },
        headers=manager,
    )
    assert medical.status_code == 403  # a manager acts only on the work-oriented track

    async with sessionmaker() as session:
        refused = [
            (r.subject, r.what)
            for r in await audit_rows(session, uuid.UUID(case_id))
            if not r.allowed
        ]
    assert ("fk-1", "case.read") in refused
    assert ("manager-1", "action.close_case") in refused
    assert ("manager-1", "action.add_intervention") in refused


async def test_dates_outside_the_policy_windows_are_422_naming_the_field_and_change_nothing(
    api: httpx.AsyncClient, worker: Worker, unit_code: str, coordinator_headers: dict[str, str]
) -> None:
    created = await api.post(
        "/api/v1/cases",
        json={"employee_ref": PIN, "unit_code": unit_code, "trigger": "manager_concern"},
        headers=coordinator_headers,
    )
    case_id = created.json()["case_id"]
    today = datetime.now(STOCKHOLM).date()
    far = "9999-12-31"
    refused = [
        ("set-sick-leave", {"start": "0001-01-01"}, "start"),
        ("set-sick-leave", {"start": today.isoformat(), "expected_end": far}, "expected_end"),
        (
            "book-joint-meeting",
            {"starts_at": f"{far}T09:00:00+01:00", "ends_at": f"{far}T10:00:00+01:00"},
            "starts_at",
        ),
        (
            "record-deadline-met",
            {"kind": "fk_sick_notice", "met_on": (today + timedelta(days=1)).isoformat()},
            "met_on",
        ),
        ("record-return-to-work-step", {"extent": 50, "from_date": "0001-01-01"}, "from_date"),
        (
            "add-intervention",
            {
                "intervention": {
                    "track": "work_oriented",
                    "kind": "work_training",
                    "owner": "manager",
                    "due_on": far,
                }
            },
            "intervention.due_on",
        ),
        ("request-information", {"party": "fhv", "due_on": far}, "due_on"),
    ]
    for action, body, field in refused:
        answer = await api.post(
            f"/api/v1/cases/{case_id}/{action}", json=body, headers=coordinator_headers
        )
        assert answer.status_code == 422, (action, answer.text)
        [problem] = answer.json()["detail"]
        assert problem["field"] == field
        assert problem["reason"].startswith("must lie between")
        assert "9999" not in answer.text and "0001" not in answer.text

    case = (await api.get(f"/api/v1/cases/{case_id}", headers=coordinator_headers)).json()
    assert case["stage"] == "identified"
    assert case["sick_start"] is None
    assert case["meetings"] == []
    # A date inside the window is taken.
    taken = await api.post(
        f"/api/v1/cases/{case_id}/set-sick-leave",
        json={"start": (today - timedelta(days=40)).isoformat()},
        headers=coordinator_headers,
    )
    assert taken.status_code == 200, taken.text


async def test_a_referral_an_action_and_a_read_take_no_worker_thread(
    api: httpx.AsyncClient,
    worker: Worker,
    unit_code: str,
    coordinator_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """FastAPI runs plain-function dependencies and endpoints in a worker thread, a thread hop
    each (six on this path before). Every one on this path is a coroutine."""
    import fastapi.dependencies.utils
    import fastapi.routing

    hops: list[str] = []
    for module in (fastapi.dependencies.utils, fastapi.routing):
        real = module.run_in_threadpool

        async def counted(func: Any, *args: Any, _real: Any = real, **kwargs: Any) -> Any:
            hops.append(getattr(func, "__name__", repr(func)))
            return await _real(func, *args, **kwargs)

        monkeypatch.setattr(module, "run_in_threadpool", counted)

    created = await api.post(
        "/api/v1/cases",
        json={"employee_ref": PIN, "unit_code": unit_code, "trigger": "manager_concern"},
        headers=coordinator_headers,
    )
    assert created.status_code == 201, created.text
    case_id = created.json()["case_id"]
    consent = await api.post(
        f"/api/v1/cases/{case_id}/record-consent",
        json={"party": "fk", "given": True},
        headers=coordinator_headers,
    )
    assert consent.status_code == 200, consent.text
    read = await api.get(f"/api/v1/cases/{case_id}", headers=coordinator_headers)
    assert read.status_code == 200, read.text
    assert hops == []

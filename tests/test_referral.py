"""The thin slice end to end: referral through the API, a real worker, Temporal and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.absences import CaseOpener
from models.absence import CaseReferralResult, CaseTriggerRequest
from models.case import CaseTrigger
from models.search_attributes import REHAB_STAGE, REHAB_UNIT
from store.schema import Case, CaseEvent, Employee, Notification
from tests.case_steps import eventually

# Valid by format, date and Luhn check digit (the textbook example numbers).
PIN = "19811218-9876"
OTHER_PIN = "19900101-0017"


async def _count(sessionmaker: async_sessionmaker[AsyncSession], model: type) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_referral_opens_a_case_that_api_temporal_and_record_store_all_show(
    api: httpx.AsyncClient,
    worker: Worker,
    unit_code: str,
    time_skipping_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
    coordinator_headers: dict[str, str],
) -> None:
    created = await api.post(
        "/api/v1/cases",
        json={"employee_ref": PIN, "unit_code": unit_code, "trigger": "manager_concern"},
        headers=coordinator_headers,
    )
    assert created.status_code == 201, created.text
    case_id = created.json()["case_id"]
    assert created.json()["stage"] == "identified"

    fetched = await api.get(f"/api/v1/cases/{case_id}", headers=coordinator_headers)
    assert fetched.status_code == 200
    assert fetched.json()["stage"] == "identified"
    assert fetched.json()["unit_code"] == unit_code
    assert fetched.json()["trigger"] == "manager_concern"

    handle = time_skipping_env.client.get_workflow_handle(f"case-{case_id}")
    described = await handle.describe()
    assert described.typed_search_attributes.get(REHAB_STAGE) == "identified"
    assert described.typed_search_attributes.get(REHAB_UNIT) == unit_code
    summary = await described.static_summary()
    assert summary is not None and unit_code in summary
    assert "19811218" not in summary and "9876" not in summary

    async with sessionmaker() as session:
        events = (
            await session.scalars(
                select(CaseEvent.kind).where(CaseEvent.case_id == uuid.UUID(case_id))
            )
        ).all()
        employee = (await session.scalars(select(Employee))).one()
    assert events[0] == "case_opened"
    # The number itself is kept only encrypted; neither form of it is readable in the row.
    stored = (employee.pin_encrypted or b"") + (employee.pin_lookup or "").encode()
    assert b"198112189876" not in stored and b"8112189876" not in stored


async def test_the_same_employee_keeps_one_pseudonym_and_one_open_case(
    api: httpx.AsyncClient,
    worker: Worker,
    unit_code: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    coordinator_headers: dict[str, str],
) -> None:
    body = {"employee_ref": PIN, "unit_code": unit_code, "trigger": "self_referral"}
    assert (
        await api.post("/api/v1/cases", json=body, headers=coordinator_headers)
    ).status_code == 201
    # The 10-digit form is the same person.
    again = await api.post(
        "/api/v1/cases", json={**body, "employee_ref": "811218-9876"}, headers=coordinator_headers
    )
    assert again.status_code == 409
    assert "open case" in again.json()["detail"]
    other = await api.post(
        "/api/v1/cases", json={**body, "employee_ref": OTHER_PIN}, headers=coordinator_headers
    )
    assert other.status_code == 201
    assert await _count(sessionmaker, Employee) == 2
    assert await _count(sessionmaker, Case) == 2


@pytest.mark.parametrize(
    ("body", "field", "reason_part"),
    [
        (
            {"employee_ref": "19811218-9875", "trigger": "manager_concern"},
            "employee_ref",
            "check digit",
        ),
        ({"employee_ref": "19810231-9876", "trigger": "manager_concern"}, "employee_ref", "date"),
        ({"employee_ref": "abcdefghijk", "trigger": "manager_concern"}, "employee_ref", "format"),
        ({"employee_ref": PIN, "trigger": "payroll_said_so"}, "trigger", "manager_concern"),
        (
            {"employee_ref": PIN, "trigger": "manager_concern", "unit_code": ""},
            "unit_code",
            "at least 1",
        ),
        (
            {"employee_ref": PIN, "trigger": "manager_concern", "unit_code": "U" * 200},
            "unit_code",
            "at most 32",
        ),
        ({"employee_ref": "1" * 5000, "trigger": "manager_concern"}, "employee_ref", "at most 13"),
        (
            {"employee_ref": PIN, "trigger": "manager_concern", "unit_code": "NOSUCHUNIT"},
            "unit_code",
            "no unit",
        ),
        (
            {"employee_ref": PIN, "trigger": "manager_concern", "note": "Anna has burnout"},
            "note",
            "not permitted",
        ),
        ({"trigger": "manager_concern"}, "employee_ref", "required"),
    ],
)
async def test_invalid_referral_is_422_naming_field_and_reason_without_echo_and_stores_nothing(
    api: httpx.AsyncClient,
    unit_code: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    body: dict[str, str],
    field: str,
    reason_part: str,
    coordinator_headers: dict[str, str],
) -> None:
    body = {"unit_code": unit_code, **body}
    response = await api.post("/api/v1/cases", json=body, headers=coordinator_headers)
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert any(e["field"] == field and reason_part in e["reason"] for e in errors), errors
    for value in body.values():
        if value not in (unit_code, "manager_concern", ""):
            assert value not in response.text
    assert await _count(sessionmaker, Employee) == 0
    assert await _count(sessionmaker, Case) == 0


async def test_a_body_that_is_not_json_is_422(
    api: httpx.AsyncClient, coordinator_headers: dict[str, str]
) -> None:
    response = await api.post(
        "/api/v1/cases",
        content=b"{not json",
        headers={"content-type": "application/json", **coordinator_headers},
    )
    assert response.status_code == 422


async def test_unknown_or_malformed_case_id_is_not_found_or_rejected(
    api: httpx.AsyncClient,
    coordinator_headers: dict[str, str],
) -> None:
    assert (
        await api.get(f"/api/v1/cases/{uuid.uuid4()}", headers=coordinator_headers)
    ).status_code == 404
    malformed = await api.get("/api/v1/cases/not-a-uuid", headers=coordinator_headers)
    assert malformed.status_code == 422
    assert "not-a-uuid" not in malformed.text


async def test_readiness_reports_ready_when_temporal_and_postgres_answer(
    api: httpx.AsyncClient,
) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    ready = await api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"postgres": "ok", "temporal": "ok"}}


async def test_a_referred_case_is_whole_when_the_api_answers_and_its_workflow_writes_none_of_it(
    api: httpx.AsyncClient,
    worker: Worker,
    unit_code: str,
    time_skipping_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
    coordinator_headers: dict[str, str],
) -> None:
    created = await api.post(
        "/api/v1/cases",
        json={"employee_ref": PIN, "unit_code": unit_code, "trigger": "manager_concern"},
        headers=coordinator_headers,
    )
    assert created.status_code == 201, created.text
    case_id = uuid.UUID(created.json()["case_id"])
    # At once, with no waiting: the opener wrote the case's first change with its row.
    async with sessionmaker() as session:
        kinds = (
            await session.scalars(
                select(CaseEvent.kind).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
            )
        ).all()
        told = set(
            (
                await session.execute(
                    select(Notification.notification_type, Notification.recipient_role).where(
                        Notification.case_id == case_id
                    )
                )
            ).all()
        )
        case = await session.get(Case, case_id)
    # (and, the test's unit having no contacts, that its notices could not be delivered)
    assert [k for k in kinds if k != "notification_undeliverable"] == [
        "case_opened",
        "case_planned",
    ]
    assert {role for _, role in told} == {"coordinator", "manager", "employee"}
    assert case is not None and case.policy_id is not None

    # Its workflow took that change into its state and wrote nothing; the API asked it
    # nothing either.
    handle = time_skipping_env.client.get_workflow_handle(f"case-{case_id}")

    async def first_task_done() -> list[Any]:
        return list((await handle.fetch_history()).events)

    events = await eventually(
        first_task_done,
        lambda es: any(e.HasField("workflow_task_completed_event_attributes") for e in es),
    )
    assert not [e for e in events if e.HasField("marker_recorded_event_attributes")]
    assert not [
        e for e in events if e.HasField("workflow_execution_update_accepted_event_attributes")
    ]
    # The next change is written on top of it, as the case's own first write would be.
    today = date.today()
    sick = await api.post(
        f"/api/v1/cases/{case_id}/set-sick-leave",
        json={"start": (today - timedelta(days=3)).isoformat()},
        headers=coordinator_headers,
    )
    assert sick.status_code == 200, sick.text
    async with sessionmaker() as session:
        case = await session.get(Case, case_id)
        kinds = (
            await session.scalars(select(CaseEvent.kind).where(CaseEvent.case_id == case_id))
        ).all()
    assert case is not None and case.sick_start == today - timedelta(days=3)
    assert case.next_deadline_kind is not None
    assert len([k for k in kinds if k != "notification_undeliverable"]) == 3


async def test_a_retried_opening_does_not_write_the_first_change_over_a_later_one(
    api: httpx.AsyncClient,
    worker: Worker,
    unit_code: str,
    time_skipping_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
    coordinator_headers: dict[str, str],
    task_queue: str,
) -> None:
    created = await api.post(
        "/api/v1/cases",
        json={"employee_ref": PIN, "unit_code": unit_code, "trigger": "manager_concern"},
        headers=coordinator_headers,
    )
    assert created.status_code == 201, created.text
    case_id = uuid.UUID(created.json()["case_id"])
    start = date.today() - timedelta(days=3)
    sick = await api.post(
        f"/api/v1/cases/{case_id}/set-sick-leave",
        json={"start": start.isoformat()},
        headers=coordinator_headers,
    )
    assert sick.status_code == 200, sick.text
    async with sessionmaker() as session:
        case = await session.get(Case, case_id)
    assert case is not None and case.sick_start == start

    # The monitor's question again, as after a crash that lost its answer: the case is
    # open, its row is there, and it has moved on since its opening.
    opener = CaseOpener(sessionmaker, time_skipping_env.client, task_queue)
    again = await ActivityEnvironment().run(
        opener.open_for_referral,
        CaseTriggerRequest(
            employee_pseudonym=case.employee_pseudonym,
            unit_code=unit_code,
            trigger=CaseTrigger.MANAGER_CONCERN,
            trigger_key=f"referral:{case_id}",
            observed_on=case.opened_at.date(),
            case_id=case_id,
            opened_at=case.opened_at,
        ),
    )
    assert again == CaseReferralResult(case_id=case_id, opened=True, recorded=False)
    async with sessionmaker() as session:
        case = await session.get(Case, case_id)
        planned = (
            await session.scalars(
                select(func.count())
                .select_from(CaseEvent)
                .where(CaseEvent.case_id == case_id, CaseEvent.kind == "case_planned")
            )
        ).one()
    assert case is not None and case.sick_start == start  # not put back to none
    assert planned == 1

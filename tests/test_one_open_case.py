"""Exactly one open case per employee, whatever the concurrency or the path that opens it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.auth import EmbeddedIssuer
from models.absence import MonitorView, monitor_workflow_id
from models.api import Role
from models.deadlines import STOCKHOLM
from store.schema import Case, CaseEvent, Employee
from tests.conftest import bearer

# Monitors are left waiting for their next rule day: keep them off the shared server.
pytestmark = pytest.mark.own_temporal("test")

PIN = "19811218-9876"


async def _monitor_idle(env: WorkflowEnvironment, pseudonym: uuid.UUID) -> MonitorView:
    handle = env.client.get_workflow_handle(monitor_workflow_id(pseudonym))
    for _ in range(600):
        try:
            view = await handle.query("summary", result_type=MonitorView)
        except Exception:  # the monitor may still be starting, or the worker busy
            view = None
        if view is not None and not view.busy:
            return view
        await asyncio.sleep(0.1)
    raise AssertionError("the monitor never became idle")


async def _open_cases(sessionmaker: async_sessionmaker[AsyncSession]) -> list[uuid.UUID]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(Case.id).where(Case.closed_at.is_(None)))).all())


def _absences(unit_code: str, today: date) -> list[dict[str, Any]]:
    """A long absence still going on (day 15 passed), after two dozen short ones."""
    events = [
        {
            "event_id": f"short-{i}",
            "employee_ref": PIN,
            "unit_code": unit_code,
            "kind": "sick",
            "start": (today - timedelta(days=20 + 7 * i)).isoformat(),
            "end": (today - timedelta(days=20 + 7 * i)).isoformat(),
        }
        for i in range(1, 25)
    ]
    events.append(
        {
            "event_id": "long",
            "employee_ref": PIN,
            "unit_code": unit_code,
            "kind": "sick",
            "start": (today - timedelta(days=20)).isoformat(),
        }
    )
    return events


async def test_fifty_concurrent_referrals_and_absence_events_give_one_open_case(
    api: httpx.AsyncClient,
    worker: Worker,
    time_skipping_env: WorkflowEnvironment,
    issuer: EmbeddedIssuer,
    unit_code: str,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    coordinator = bearer(issuer.mint(Role.COORDINATOR, units=[unit_code]))
    manager = bearer(issuer.mint(Role.MANAGER, units=[unit_code]))
    hr = bearer(issuer.mint(Role.HR_SYSTEM, subject="payroll"))
    today = datetime.now(STOCKHOLM).date()
    referrals = [
        api.post(
            "/api/v1/cases",
            json={
                "employee_ref": PIN,
                "unit_code": unit_code,
                "trigger": "manager_concern",
            },
            headers=coordinator if i % 2 else manager,
        )
        for i in range(25)
    ]
    absences = [
        api.post("/api/v1/absence-events", json={"events": [event]}, headers=hr)
        for event in _absences(unit_code, today)
    ]
    calls: list[Any] = [*referrals, *absences]
    # Interleave the two kinds of request, so both paths race from the first moment.
    calls[::2], calls[1::2] = referrals, absences
    answers = await asyncio.gather(*calls)

    referral_answers = [a for a in answers if a.request.url.path == "/api/v1/cases"]
    assert all(a.status_code in (201, 409) for a in referral_answers), [
        a.text for a in referral_answers if a.status_code not in (201, 409)
    ]
    assert all(a.status_code == 202 for a in answers if a.request.url.path != "/api/v1/cases")
    async with sessionmaker() as session:
        pseudonym = (await session.scalars(select(Employee.pseudonym))).one()
    await _monitor_idle(time_skipping_env, pseudonym)

    [open_case] = await _open_cases(sessionmaker)
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == 1
    created = [a.json()["case_id"] for a in referral_answers if a.status_code == 201]
    conflicts = [a.json() for a in referral_answers if a.status_code == 409]
    assert len(created) <= 1 and all(c == str(open_case) for c in created)
    # Every caller who lost the race is told which case is open (both may see it).
    assert conflicts and all(c["case_id"] == str(open_case) for c in conflicts)


async def test_a_retried_referral_with_its_idempotency_key_gets_the_same_case(
    api: httpx.AsyncClient,
    worker: Worker,
    coordinator_headers: dict[str, str],
    unit_code: str,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    body = {"employee_ref": PIN, "unit_code": unit_code, "trigger": "manager_concern"}
    key = {**coordinator_headers, "Idempotency-Key": f"referral-{uuid.uuid4()}"}

    first, retry = [await api.post("/api/v1/cases", json=body, headers=key) for _ in range(2)]
    other_request = await api.post(
        "/api/v1/cases",
        json=body,
        headers={**coordinator_headers, "Idempotency-Key": f"referral-{uuid.uuid4()}"},
    )

    assert first.status_code == retry.status_code == 201, (first.text, retry.text)
    assert first.json()["case_id"] == retry.json()["case_id"]
    assert other_request.status_code == 409
    assert other_request.json()["case_id"] == first.json()["case_id"]
    assert await _open_cases(sessionmaker) == [uuid.UUID(first.json()["case_id"])]
    bad_key = await api.post(
        "/api/v1/cases", json=body, headers={**coordinator_headers, "Idempotency-Key": "x y"}
    )
    assert bad_key.status_code == 422
    assert bad_key.json()["detail"][0]["field"] == "header.idempotency-key"


async def test_a_caller_who_may_not_see_the_open_case_is_not_given_its_id(
    api: httpx.AsyncClient,
    worker: Worker,
    coordinator_headers: dict[str, str],
    issuer: EmbeddedIssuer,
    unit_code: str,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    from store.schema import Unit

    async with sessionmaker.begin() as session:
        session.add(Unit(code="OTHER-1", name="Another unit"))
    body = {"employee_ref": PIN, "unit_code": unit_code, "trigger": "manager_concern"}
    assert (
        await api.post("/api/v1/cases", json=body, headers=coordinator_headers)
    ).status_code == 201
    elsewhere = bearer(issuer.mint(Role.MANAGER, units=["OTHER-1"]))

    refused = await api.post(
        "/api/v1/cases", json={**body, "unit_code": "OTHER-1"}, headers=elsewhere
    )

    assert refused.status_code == 409
    assert "case_id" not in refused.json()


async def test_the_record_store_refuses_a_second_open_case_for_one_employee(
    sessionmaker: async_sessionmaker[AsyncSession], unit_code: str
) -> None:
    pseudonym = uuid.uuid4()
    async with sessionmaker.begin() as session:
        session.add(Employee(pseudonym=pseudonym, unit_code=unit_code))

    def case(closed: bool) -> Case:
        case_id = uuid.uuid4()
        now = datetime.now(STOCKHOLM)
        return Case(
            id=case_id,
            workflow_id=f"case-{case_id}",
            employee_pseudonym=pseudonym,
            unit_code=unit_code,
            trigger="manager_concern",
            stage="closed" if closed else "identified",
            opened_at=now,
            closed_at=now if closed else None,
        )

    async with sessionmaker.begin() as session:
        session.add_all([case(closed=True), case(closed=True), case(closed=False)])
    with pytest.raises(IntegrityError, match="uq_cases_one_open_per_employee"):
        async with sessionmaker.begin() as session:
            session.add(case(closed=False))


async def test_an_opening_retried_after_its_row_went_in_starts_the_case_once(
    sessionmaker: async_sessionmaker[AsyncSession],
    unit_code: str,
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    task_queue: str,
) -> None:
    """The opener writes the case's row, then starts its workflow. A crash between the two
    leaves an open row with no workflow; the retried activity must start it, not take the
    row for somebody else's open case and tell it the news."""
    from temporalio.testing import ActivityEnvironment

    from activities.absences import CaseOpener, rule_case_id
    from models.absence import CaseTriggerRequest, CaseTriggerRequests
    from models.case import CaseTrigger, OpenCaseRecord
    from store.cases import insert_case

    pseudonym = uuid.uuid4()
    async with sessionmaker.begin() as session:
        session.add(Employee(pseudonym=pseudonym, unit_code=unit_code))
    today = datetime.now(STOCKHOLM).date()
    request = CaseTriggerRequest(
        employee_pseudonym=pseudonym,
        unit_code=unit_code,
        trigger=CaseTrigger.LONG_ABSENCE,
        trigger_key=f"long_absence:{today - timedelta(days=20)}",
        observed_on=today - timedelta(days=6),
        sick_start=today - timedelta(days=20),
    )
    # As if a first attempt had died after its row: the row is there, no workflow is.
    case_id = rule_case_id(pseudonym, request.trigger_key)
    async with sessionmaker.begin() as session:
        await insert_case(
            await session.connection(),
            OpenCaseRecord(
                case_id=case_id,
                workflow_id=f"case-{case_id}",
                employee_pseudonym=pseudonym,
                unit_code=unit_code,
                trigger=CaseTrigger.LONG_ABSENCE,
                opened_at=datetime.now(STOCKHOLM),
                policy_id="se-default",
                policy_version=1,
            ),
        )
    opener = CaseOpener(sessionmaker, time_skipping_env.client, task_queue)

    again = await ActivityEnvironment().run(
        opener.open_or_deliver_all, CaseTriggerRequests(requests=(request,))
    )

    assert (again.case_id, again.opened) == (case_id, True)
    handle = time_skipping_env.client.get_workflow_handle(f"case-{case_id}")
    assert (await handle.describe()).workflow_type == "RehabCaseWorkflow"  # started at last
    assert await _open_cases(sessionmaker) == [case_id]
    async with sessionmaker() as session:
        kinds = (
            await session.scalars(select(CaseEvent.kind).where(CaseEvent.case_id == case_id))
        ).all()
    assert "absence_observed" not in kinds  # not told its own opening as news

"""Information requests to outside parties: consent gating, timers, response, cancellation.

Run against the real worker, the time-skipping server (a private one: requests outlive the
updates that start them) and the real record store; the party's message goes out through
the real dispatcher to a local SMTP server.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from channels.smtp import SmtpChannel
from channels.templates import WEEKDAYS
from core.i18n import gettext
from models.actions import BookJointMeeting, CaseActionResult, CloseCase, RecordConsent
from models.case import (
    CaseOutcome,
    ConsentParty,
    InformationRequestStatus,
    information_request_workflow_id,
)
from models.deadlines import STOCKHOLM, end_of_day, start_of_day
from models.information_requests import (
    CancelInformationRequest,
    InformationRequestResult,
    RecordInformationResponse,
    RequestInformation,
)
from models.notification import DispatchRequest
from models.search_attributes import REHAB_OVERDUE
from store.contacts import add_unit_contact
from store.schema import CaseEvent, CaseInformationRequest, Notification
from tests.case_steps import (
    OpenedCase,
    days,
    eventually,
    kinds,
    open_case,
    sleep_until,
    today,
)
from tests.outbox_support import RecordingSmtpHandler, dispatcher
from workflows.information_request import InformationRequestWorkflow
from workflows.rehab_case import RehabCaseWorkflow

Sessions = async_sessionmaker[AsyncSession]
PIN = "19811218-9876"
HEALTHCARE_ADDRESS = "vardcentral@example.org"
# Words that would tell the recipient (or anyone reading over a shoulder) more than
# "a request waits": the party asked, the track, or what the case is about.
CANARIES = ("healthcare", "vård", "social", "medical", "medicin", "fhv", "arbetsförmedl")


pytestmark = pytest.mark.own_temporal("module")


async def _request_rows(sessionmaker: Sessions, case_id: uuid.UUID) -> list[CaseInformationRequest]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(CaseInformationRequest)
            .where(CaseInformationRequest.case_id == case_id)
            .order_by(CaseInformationRequest.requested_at, CaseInformationRequest.id)
        )
        return list(rows)


async def _request_events(sessionmaker: Sessions, request_id: uuid.UUID) -> list[CaseEvent]:
    """The events the request's own workflow wrote."""
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(CaseEvent)
            .where(CaseEvent.workflow_id == information_request_workflow_id(request_id))
            .order_by(CaseEvent.id)
        )
        return list(rows)


async def _notices(
    sessionmaker: Sessions, case_id: uuid.UUID
) -> list[tuple[str, str, date | None]]:
    """(type, role, due date) of the case's information-request notifications, in order."""
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Notification.notification_type, Notification.recipient_role, Notification.due_on)
            .where(
                Notification.case_id == case_id,
                Notification.notification_type.startswith("information_request"),
            )
            .order_by(Notification.id)
        )
        return [(t, r, d) for t, r, d in rows]


async def _child_starts(case: OpenedCase) -> int:
    history = await case.handle.fetch_history()
    return sum(
        1
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
    )


async def _in_joint_meeting(env: WorkflowEnvironment, case: OpenedCase) -> None:
    now = await env.get_current_time()
    await case.handle.execute_update(
        "book_joint_meeting",
        BookJointMeeting(starts_at=now + days(1), ends_at=now + days(1) + timedelta(hours=1)),
        result_type=CaseActionResult,
    )


def _everything_sent(message: Any) -> str:
    body = message.get_body(preferencelist=("plain",))
    return f"{message['Subject']}\n{body.get_content() if body else ''}".casefold()


def _dst_start_after(day: date) -> date:
    """The first Sunday on which Europe/Stockholm moves to summer time, a week after `day`."""
    year = day.year
    while True:
        last_sunday = date(year, 3, 31)
        while last_sunday.weekday() != 6:
            last_sunday -= days(1)
        if last_sunday > day + days(7):
            return last_sunday
        year += 1


# ---------------------------------------------------------------- through the API


async def test_a_request_needs_the_employees_consent_and_its_withdrawal_cancels_the_request(
    api: httpx.AsyncClient,
    worker: Worker,
    time_skipping_env: WorkflowEnvironment,
    unit_code: str,
    coordinator_headers: dict[str, str],
    sessionmaker: Sessions,
    smtp: tuple[RecordingSmtpHandler, SmtpChannel],
    started_cases: list[str],
) -> None:
    env = time_skipping_env
    handler, channel = smtp
    async with sessionmaker.begin() as session:
        await add_unit_contact(
            session,
            unit_code=unit_code,
            role="healthcare",
            channel="email",
            address=HEALTHCARE_ADDRESS,
        )
    created = await api.post(
        "/api/v1/cases",
        json={"employee_ref": PIN, "unit_code": unit_code, "trigger": "manager_concern"},
        headers=coordinator_headers,
    )
    case_id = uuid.UUID(created.json()["case_id"])
    started_cases.append(f"case-{case_id}")
    case = OpenedCase(
        case_id=case_id,
        handle=env.client.get_workflow_handle(f"case-{case_id}"),
        opened_on=await today(env),
    )
    await _in_joint_meeting(env, case)
    actions = f"/api/v1/cases/{case_id}"
    due_on = await today(env) + days(14)
    request = {"party": "healthcare", "due_on": due_on.isoformat(), "remind_days_before": 3}

    refused = await api.post(
        f"{actions}/request-information", json=request, headers=coordinator_headers
    )
    assert refused.status_code == 409
    assert refused.json() == {
        "detail": "information may be requested from healthcare only with the employee's "
        "consent; record the consent first"
    }
    unknown_party = await api.post(
        f"{actions}/request-information",
        json=request | {"party": "the-police"},
        headers=coordinator_headers,
    )
    assert unknown_party.status_code == 422
    (problem,) = unknown_party.json()["detail"]
    assert problem["field"] == "party" and "the-police" not in problem["reason"]
    # Nothing recorded, nothing started.
    assert await _request_rows(sessionmaker, case_id) == []
    assert not [k for k in await kinds(sessionmaker, case_id) if k.startswith("information")]
    assert await _child_starts(case) == 0
    assert (await case.handle.query(RehabCaseWorkflow.state)).information_requests == ()

    consent = await api.post(
        f"{actions}/record-consent",
        json={"party": "healthcare", "given": True},
        headers=coordinator_headers,
    )
    assert consent.status_code == 200, consent.text
    accepted = await api.post(
        f"{actions}/request-information", json=request, headers=coordinator_headers
    )
    assert accepted.status_code == 200, accepted.text
    (request_id,) = (uuid.UUID(i) for i in accepted.json()["created_ids"])
    (row,) = await eventually(lambda: _request_rows(sessionmaker, case_id), lambda rs: len(rs) == 1)
    assert (row.id, row.party, row.due_on, row.status) == (request_id, "healthcare", due_on, "open")
    assert await _child_starts(case) == 1
    opened = await case.handle.query(RehabCaseWorkflow.open_actions)
    assert [(a.action, a.due_on) for a in opened.actions if "information" in a.action] == [
        ("record_information_response", due_on)
    ]

    # The party's contact gets a neutral message through the real dispatcher and SMTP.
    dispatch = dispatcher(sessionmaker, email_channel=channel)
    await ActivityEnvironment().run(dispatch.dispatch_due, DispatchRequest(run_for_s=0))
    (sent,) = handler.received
    assert sent["To"] == HEALTHCARE_ADDRESS
    # In the recipient's language: Swedish unless the contact chose English.
    assert sent["Subject"] == f"rehabflow: begäran om uppgifter i ärende {case_id.hex[:8].upper()}"
    text = _everything_sent(sent)
    weekday = gettext("sv", WEEKDAYS[due_on.weekday()]).casefold()
    assert f"svara senast {weekday} {due_on.isoformat()}" in text
    assert [word for word in CANARIES if word in text] == []

    # Withdrawn consent: the open request ends, the party hears that no answer is needed.
    withdrawn = await api.post(
        f"{actions}/record-consent",
        json={"party": "healthcare", "given": False},
        headers=coordinator_headers,
    )
    assert withdrawn.status_code == 200, withdrawn.text
    child = env.client.get_workflow_handle_for(
        InformationRequestWorkflow.run, information_request_workflow_id(request_id)
    )
    assert await child.result() == InformationRequestResult(
        request_id=request_id, status=InformationRequestStatus.CANCELLED
    )
    (row,) = await _request_rows(sessionmaker, case_id)
    assert (row.status, row.cancel_reason) == ("cancelled", "consent_withdrawn")
    assert [n[:2] for n in await _notices(sessionmaker, case_id)] == [
        ("information_request", "healthcare"),
        ("information_request_cancelled", "healthcare"),
    ]
    await ActivityEnvironment().run(dispatch.dispatch_due, DispatchRequest(run_for_s=0))
    assert [m["Subject"] for m in handler.received][1:] == [
        f"rehabflow: begäran om uppgifter i ärende {case_id.hex[:8].upper()} är återkallad"
    ]
    assert [w for w in CANARIES if w in _everything_sent(handler.received[1])] == []
    opened = await case.handle.query(RehabCaseWorkflow.open_actions)
    assert not [a for a in opened.actions if a.action == "record_information_response"]

    again = await api.post(
        f"{actions}/request-information", json=request, headers=coordinator_headers
    )
    assert again.status_code == 409
    assert "withdrawn consent for healthcare" in again.json()["detail"]
    assert len(await _request_rows(sessionmaker, case_id)) == 1


# ---------------------------------------------------------------- timers


async def test_reminder_overdue_escalation_and_response_follow_stockholm_days_across_dst(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    unit_code: str,
    sessionmaker: Sessions,
    started_cases: list[str],
) -> None:
    env = time_skipping_env
    summer_time = _dst_start_after(await today(env))  # a Sunday: 02:00 CET becomes 03:00 CEST
    await sleep_until(env, start_of_day(summer_time - days(5)) + timedelta(hours=9))
    case = await open_case(
        env.client,
        worker.task_queue,
        unit_code,
        sessionmaker,
        opened_at=await env.get_current_time(),
        track=started_cases,
    )
    h = case.handle
    await _in_joint_meeting(env, case)
    await h.execute_update(
        "record_consent",
        RecordConsent(party=ConsentParty.FHV, given=True),
        result_type=CaseActionResult,
    )
    due_on = summer_time + days(1)  # Monday after the change
    result = await h.execute_update(
        "request_information",
        RequestInformation(party=ConsentParty.FHV, due_on=due_on, remind_days_before=3),
        result_type=CaseActionResult,
    )
    (request_id,) = result.created_ids

    async def events() -> list[tuple[str, datetime]]:
        return [(e.kind, e.occurred_at) for e in await _request_events(sessionmaker, request_id)]

    # Friday 00:00 (CET), three days before the due date: the party is reminded.
    remind_at = start_of_day(due_on - days(3))
    await sleep_until(env, remind_at - timedelta(minutes=1))
    assert [k for k, _ in await eventually(events, lambda es: len(es) == 1)] == [
        "information_request_sent"
    ]
    await sleep_until(env, remind_at + timedelta(hours=1))
    reminded = await eventually(events, lambda es: len(es) == 2)
    assert reminded[1] == ("information_request_reminder", remind_at)
    assert remind_at.astimezone(STOCKHOLM).time() == time(0, 0)

    # The due date is kept all through its last minute, 24:00 CEST.
    overdue_at = end_of_day(due_on)
    await sleep_until(env, overdue_at - timedelta(minutes=1))
    assert (await h.query(RehabCaseWorkflow.state)).overdue is False
    await sleep_until(env, overdue_at + timedelta(hours=1))
    view = await eventually(lambda: h.query(RehabCaseWorkflow.state), lambda v: v.overdue)
    assert view.information_requests[0].status == InformationRequestStatus.OVERDUE
    assert (await eventually(events, lambda es: len(es) == 3))[2] == (
        "information_request_overdue",
        overdue_at,
    )
    assert (overdue_at.astimezone(STOCKHOLM).date(), overdue_at.hour) == (due_on + days(1), 22)
    assert (await h.describe()).typed_search_attributes.get(REHAB_OVERDUE) is True
    opened = await h.query(RehabCaseWorkflow.open_actions)
    assert [(a.reason, a.due_on) for a in opened.actions if "information" in a.action] == [
        (f"information request {request_id} (overdue)", due_on)
    ]

    # Three days later the party is reminded again.
    again_at = end_of_day(due_on + days(3))
    await sleep_until(env, again_at + timedelta(hours=1))
    assert (await eventually(events, lambda es: len(es) == 4))[3] == (
        "information_request_reminded_again",
        again_at,
    )
    notices = await eventually(lambda: _notices(sessionmaker, case.case_id), lambda n: len(n) == 4)
    assert notices == [
        ("information_request", "fhv", due_on),
        ("information_request_reminder", "fhv", due_on),
        ("information_request_overdue", "coordinator", due_on),
        ("information_request_overdue", "fhv", due_on),
    ]

    # The response arrives: the request ends and the case is no longer overdue.
    received_on = await today(env)
    await h.execute_update(
        "record_information_response",
        RecordInformationResponse(request_id=request_id),
        result_type=CaseActionResult,
    )
    assert (await h.query(RehabCaseWorkflow.state)).overdue is False
    child = env.client.get_workflow_handle_for(
        InformationRequestWorkflow.run, information_request_workflow_id(request_id)
    )
    assert await child.result() == InformationRequestResult(
        request_id=request_id, status=InformationRequestStatus.ANSWERED, received_on=received_on
    )
    (row,) = await _request_rows(sessionmaker, case.case_id)
    assert (row.status, row.received_on) == ("answered", received_on)
    opened = await h.query(RehabCaseWorkflow.open_actions)
    assert not [a for a in opened.actions if a.action == "record_information_response"]
    (recorded,) = [
        e
        for e in await _case_events(sessionmaker, case.case_id)
        if e.kind == "information_response_recorded"
    ]
    assert recorded.detail["late"] is True
    assert [k for k in await kinds(sessionmaker, case.case_id) if k.startswith("information")] == [
        "information_requested",
        "information_request_overdue_flagged",
        "information_response_recorded",
    ]


async def _case_events(sessionmaker: Sessions, case_id: uuid.UUID) -> list[CaseEvent]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
        )
        return list(rows)


# ---------------------------------------------------------------- cancellation


async def test_a_cancelled_request_and_the_closing_of_the_case_end_the_open_requests(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    unit_code: str,
    sessionmaker: Sessions,
    started_cases: list[str],
) -> None:
    env = time_skipping_env
    case = await open_case(
        env.client,
        worker.task_queue,
        unit_code,
        sessionmaker,
        opened_at=await env.get_current_time(),
        track=started_cases,
    )
    h = case.handle
    await _in_joint_meeting(env, case)
    due_on = await today(env) + days(20)
    ids: dict[ConsentParty, uuid.UUID] = {}
    for party in (ConsentParty.SOCIAL_SERVICES, ConsentParty.ARBETSFORMEDLINGEN):
        await h.execute_update(
            "record_consent", RecordConsent(party=party, given=True), result_type=CaseActionResult
        )
        result = await h.execute_update(
            "request_information",
            RequestInformation(party=party, due_on=due_on),
            result_type=CaseActionResult,
        )
        ids[party] = result.created_ids[0]

    await h.execute_update(
        "cancel_information_request",
        CancelInformationRequest(request_id=ids[ConsentParty.SOCIAL_SERVICES]),
        result_type=CaseActionResult,
    )
    await h.execute_update(
        "close_case", CloseCase(outcome=CaseOutcome.NOT_RETURNED), result_type=CaseActionResult
    )
    assert {r.status for r in (await h.query(RehabCaseWorkflow.state)).information_requests} == {
        InformationRequestStatus.CANCELLED
    }
    for party, request_id in ids.items():
        child = env.client.get_workflow_handle_for(
            InformationRequestWorkflow.run, information_request_workflow_id(request_id)
        )
        assert (await child.result()).status == InformationRequestStatus.CANCELLED, party
    rows = await _request_rows(sessionmaker, case.case_id)
    assert {(r.party, r.status, r.cancel_reason) for r in rows} == {
        ("social_services", "cancelled", "no_longer_needed"),
        ("arbetsformedlingen", "cancelled", "case_closed"),
    }
    cancelled = [n[:2] for n in await _notices(sessionmaker, case.case_id) if "cancelled" in n[0]]
    assert sorted(cancelled) == [
        ("information_request_cancelled", "arbetsformedlingen"),
        ("information_request_cancelled", "social_services"),
    ]

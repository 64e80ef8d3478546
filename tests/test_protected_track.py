"""The protected violence-exposure track: a disclosure reaches the coordinator and no one else.

A disclosure is made through the real API; then every place it must not appear is searched:
each role's API responses on every case endpoint, the outbox and the delivered e-mails, the
log lines written during the test, the Temporal history read by a client without the codec,
and the search attributes. The coordinator sees the flag and the safety-support
intervention, and that read is audited.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import structlog
from google.protobuf.message import Message
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.common.v1 import Payload
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from api.auth import EmbeddedIssuer
from channels.smtp import SmtpChannel
from core.logging import configure_logging
from core.settings import LogSettings, Settings
from models.api import Role
from models.notification import DispatchRequest
from models.search_attributes import REHAB_OVERDUE
from store.audit import audit_rows
from store.contacts import add_unit_contact, set_employee_contact
from store.schema import (
    Case,
    CaseEvent,
    CaseIntervention,
    Notification,
    Screening,
    ViolenceDisclosure,
)
from tests.api_steps import case_at_joint_meeting, keds, meeting_outcome, ok, violence
from tests.case_steps import eventually, today
from tests.conftest import bearer
from tests.outbox_support import (
    RecordingSmtpHandler,
    contact_protector,
    dispatcher,
)
from workflows.rehab_case import (
    LEAN_PATCH,
    LIFECYCLE_PATCH,
    TEAM_MEETINGS_PATCH,
    RehabCaseWorkflow,
)

CASE_PATCHES = {LIFECYCLE_PATCH, TEAM_MEETINGS_PATCH, LEAN_PATCH}

PIN = "19811218-9876"
# What would betray a disclosure or the safety-support intervention, in any language we write.
MARKERS = ("violence", "våld", "safety", "säkerhet", "disclos", "protected", "skydd")
NOT_COORDINATOR = (Role.MANAGER, Role.FK_OFFICER, Role.FHV, Role.EMPLOYEE)


pytestmark = pytest.mark.own_temporal("test")


@pytest.fixture
def json_logs(settings: Settings) -> Iterator[io.StringIO]:
    """Every log line of the API, the worker and the libraries, as production writes them."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    configure_logging(settings.model_copy(update={"log": LogSettings(format="json")}), stream)
    yield stream
    root.handlers, root.level = saved
    structlog.reset_defaults()


def assert_no_trace(text: str, where: str, *also: str) -> None:
    lowered = text.lower()
    for marker in (*MARKERS, *also):
        assert marker.lower() not in lowered, f"{marker!r} found in {where}"


def tokens(issuer: EmbeddedIssuer, unit_code: str, employee: uuid.UUID) -> dict[Role, Any]:
    return {
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


async def protected_rows(
    sessionmaker: async_sessionmaker[AsyncSession], case_id: str
) -> list[CaseIntervention]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(CaseIntervention).where(
                CaseIntervention.case_id == uuid.UUID(case_id), CaseIntervention.protected
            )
        )
        return list(rows)


def _payloads(message: Message, path: str = "") -> Iterator[tuple[str, Payload]]:
    if isinstance(message, Payload):
        yield path, message
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            items = list(value.values())
        elif isinstance(value, Message):
            items = [value]
        else:
            items = list(value)
        for item in items:
            if isinstance(item, Message):
                yield from _payloads(item, f"{path}.{field.name}")


async def test_a_disclosure_reaches_the_coordinator_and_no_other_role_channel_log_or_history(
    json_logs: io.StringIO,
    api: httpx.AsyncClient,
    worker: Worker,
    time_skipping_env: WorkflowEnvironment,
    unit_code: str,
    issuer: EmbeddedIssuer,
    coordinator_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
    smtp: tuple[RecordingSmtpHandler, SmtpChannel],
) -> None:
    env = time_skipping_env
    c = coordinator_headers
    protector = contact_protector()
    async with sessionmaker.begin() as session:
        for role in ("manager", "coordinator", "fk_officer", "fhv"):
            await add_unit_contact(
                session, unit_code=unit_code, role=role, channel="email", address=f"{role}@ex.org"
            )
    case_id = await case_at_joint_meeting(api, env, unit_code, c, pin=PIN)
    async with sessionmaker.begin() as session:
        case_row = await session.get(Case, uuid.UUID(case_id))
        assert case_row is not None
        await set_employee_contact(
            session,
            protector,
            employee_pseudonym=case_row.employee_pseudonym,
            channel="email",
            address="employee@ex.org",
        )
    t = tokens(issuer, unit_code, case_row.employee_pseudonym)
    await ok(api, case_id, "record-meeting-outcome", meeting_outcome(questions=violence()), c)

    # The employee answers the intake screening and discloses.
    answered: list[str] = []
    screened = await ok(
        api,
        case_id,
        "record-screening-result",
        {"answers": [keds(2, 1), violence("physical")]},
        t[Role.EMPLOYEE],
    )
    assert screened["created_ids"] == []
    answered.append(json.dumps(screened))
    (safety,) = await eventually(
        lambda: protected_rows(sessionmaker, case_id), lambda rows: len(rows) == 1
    )
    safety_id = str(safety.id)
    assert (safety.track, safety.kind, safety.owner) == ("social", "safety_support", "coordinator")

    # The plan leaves the protected track alone; a follow-up meeting asks the questions again.
    day = await today(env)
    work = {
        "track": "work_oriented",
        "kind": "work_adaptation",
        "owner": "manager",
        "due_on": (day + timedelta(days=40)).isoformat(),
    }
    planned = await ok(api, case_id, "set-plan", {"interventions": [work]}, c)
    answered.append(json.dumps(planned))
    now = await env.get_current_time()
    follow_up = {
        "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": now.isoformat(),
        "attended": ["employee", "manager"],
        "held_by": "manager",
        "violence_questions": violence(),
    }
    answered.append(
        json.dumps(await ok(api, case_id, "record-follow-up-meeting", follow_up, t[Role.MANAGER]))
    )

    # The safety support is reminded, goes overdue and is escalated: to the coordinator only.
    await env.sleep(timedelta(days=16))

    async def safety_steps() -> list[str]:
        async with sessionmaker() as session:
            rows = await session.scalars(
                select(CaseEvent.kind).where(CaseEvent.workflow_id == f"intervention-{safety_id}")
            )
            return list(rows)

    await eventually(safety_steps, lambda kinds: "intervention_escalated" in kinds)
    # A plan revision recomputes the case's overdue flag (and must not cancel the track).
    kept = {"interventions": [work | {"intervention_id": planned["created_ids"][0]}]}
    answered.append(json.dumps(await ok(api, case_id, "set-plan", kept, c)))
    handle = env.client.get_workflow_handle(f"case-{case_id}")

    # ---- the coordinator sees it, and the read is audited
    coordinator_view = (await api.get(f"/api/v1/cases/{case_id}", headers=c)).json()
    assert coordinator_view["violence_disclosed"] is True
    assert [(d["at_meeting"], d["asked_by"]) for d in coordinator_view["violence_disclosures"]] == [
        (False, None)
    ]
    assert {
        (i["intervention_id"], i["kind"], i["status"], i["protected"])
        for i in coordinator_view["interventions"]
        if i["track"] == "social"
    } == {(safety_id, "safety_support", "overdue", True)}
    assert coordinator_view["overdue"] is False  # managers see this flag
    async with sessionmaker() as session:
        audit = [(r.subject, r.what) for r in await audit_rows(session, uuid.UUID(case_id))]
    assert ("coordinator-1", "violence.read") in audit
    assert ("employee-1", "action.record_screening_result") in audit
    tasks = await handle.query(RehabCaseWorkflow.open_actions)
    assert any(
        a.action == "complete_intervention" and safety_id in a.reason and "safety" in a.reason
        for a in tasks.actions
    )
    protected = await handle.query(RehabCaseWorkflow.protected_track)
    assert protected.disclosed and [str(i.intervention_id) for i in protected.interventions] == [
        safety_id
    ]
    # Operations staff read the `state` query: the protected track is not in it.
    ops_view = await handle.query(RehabCaseWorkflow.state)
    assert [iv.kind for iv in ops_view.interventions] == ["work_adaptation"]
    # (Every intervention there has `protected: false`; that key is a field name, not a fact.)
    without_flag = ops_view.model_dump_json(exclude={"interventions": {"__all__": {"protected"}}})
    assert_no_trace(without_flag, "the state query", safety_id)
    # ...and the current details the Temporal UI shows them.
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert "**Open actions:**" in metadata.current_details
    assert_no_trace(metadata.current_details, "the UI's current details", safety_id)
    async with sessionmaker() as session:
        (disclosure,) = (await session.scalars(select(ViolenceDisclosure))).all()
        assert disclosure.meeting_id is None
        stored = sorted(await session.scalars(select(Screening.instrument_id)))
        assert stored == ["keds"]  # the violence set's result is in the restricted table only

    # ---- no other role sees any trace, on any case endpoint
    for role in NOT_COORDINATOR:
        for path in (
            "/api/v1/cases",
            f"/api/v1/cases/{case_id}",
            f"/api/v1/cases/{case_id}/timeline",
        ):
            response = await api.get(path, headers=t[role])
            assert response.status_code == 200, (role, path, response.text)
            assert_no_trace(response.text, f"{role.value} GET {path}", safety_id, "social")
            assert '"overdue":true' not in response.text.replace(" ", "")
        for path in ("/api/v1/cases", f"/api/v1/cases/{case_id}"):
            response = await api.get(path, headers=t[Role.ADMIN])
            assert response.status_code == 403
    manager_view = (await api.get(f"/api/v1/cases/{case_id}", headers=t[Role.MANAGER])).json()
    assert [i["kind"] for i in manager_view["interventions"]] == ["work_adaptation"]
    for text in answered:
        assert_no_trace(text, "an action's answer", safety_id)

    # ---- notifications: the outbox and the delivered e-mails
    handler, channel = smtp
    dispatch = dispatcher(sessionmaker, email_channel=channel, protector=protector)
    await ActivityEnvironment().run(dispatch.dispatch_due, DispatchRequest(run_for_s=0))
    async with sessionmaker() as session:
        outbox = (await session.scalars(select(Notification).order_by(Notification.id))).all()
    # The employee's own address was registered after the case opened: those first rows
    # found no recipient. Everything else went out.
    delivered = [row for row in outbox if row.status == "delivered"]
    assert delivered and {row.status for row in outbox} <= {"delivered", "no_recipient"}
    safety_due = safety.due_on
    about_safety = {
        (row.recipient_role, row.notification_type)
        for row in outbox
        if row.notification_type.startswith("intervention_") and row.due_on == safety_due
    }
    assert about_safety == {
        ("coordinator", "intervention_assigned"),
        ("coordinator", "intervention_reminder"),
        ("coordinator", "intervention_overdue"),
    }
    for row in outbox:
        neutral = [row.notification_type, row.recipient_role, row.deadline_kind, row.last_error]
        assert_no_trace(json.dumps(neutral), f"outbox row {row.id}")
    assert len(handler.received) == len(delivered)
    for message in handler.received:
        assert_no_trace(message.as_string(), f"the e-mail to {message['To']}")

    # ---- the logs written while all this happened (delivery lines name a notification's
    # key, `intervention-<id>:<step>:<role>`, the same for every intervention: no nature)
    assert_no_trace(json_logs.getvalue(), "the logs", PIN, PIN.replace("-", ""))
    assert "delivered by smtp" in json_logs.getvalue()  # the capture did see the worker

    # ---- Temporal: the history as a client without the codec reads it, and search attributes
    raw = Client(env.client.service_client, namespace=env.client.namespace)
    checked = 0
    for workflow_id in (f"case-{case_id}", f"intervention-{safety_id}"):
        raw_handle = raw.get_workflow_handle(workflow_id)
        history = await raw_handle.fetch_history()
        for event in history.events:
            assert_no_trace(event.SerializeToString().decode("latin-1"), f"{workflow_id} history")
            for path, payload in _payloads(event):
                if ".search_attributes" in path or path.endswith(".header.fields"):
                    continue
                marker = event.marker_recorded_event_attributes.marker_name
                if marker == "core_patch":
                    # Patch markers are written by the SDK's core, unencoded, and hold only
                    # the patch id (a case that never continues as new keeps them in view).
                    assert set(json.loads(payload.data)) == {"id", "deprecated"}, path
                    assert json.loads(payload.data)["id"] in CASE_PATCHES, path
                    continue
                if marker == "core_local_activity" and payload.metadata["encoding"] == (
                    b"json/plain"
                ):
                    # A local activity's bookkeeping (type, attempt, times); its result is
                    # encrypted and checked below like every payload.
                    facts = json.loads(payload.data)
                    assert facts["activity_type"] in {"record_change", "record_intervention"}
                    continue
                assert payload.metadata["encoding"] == b"binary/encrypted", (workflow_id, path)
                checked += 1
        description = await raw_handle.describe()
        assert_no_trace(
            description.raw_description.SerializeToString().decode("latin-1"),
            f"describe({workflow_id})",
        )
        attributes = {pair.key.name: pair.value for pair in description.typed_search_attributes}
        # TemporalChangeVersion is the SDK's list of the patches this run took: patch ids only.
        assert set(attributes) <= {
            "RehabStage",
            "RehabUnit",
            "RehabOverdue",
            "TemporalChangeVersion",
        }
    case_attributes = (
        await raw.get_workflow_handle(f"case-{case_id}").describe()
    ).typed_search_attributes
    assert case_attributes.get(REHAB_OVERDUE) is False
    assert checked > 20


async def test_disclosures_at_meetings_name_the_asking_party_and_are_erased_with_the_case(
    api: httpx.AsyncClient,
    worker: Worker,
    time_skipping_env: WorkflowEnvironment,
    unit_code: str,
    issuer: EmbeddedIssuer,
    coordinator_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    env = time_skipping_env
    c = coordinator_headers
    case_id = await case_at_joint_meeting(api, env, unit_code, c, pin=PIN)
    async with sessionmaker() as session:
        case_row = await session.get(Case, uuid.UUID(case_id))
        assert case_row is not None
    t = tokens(issuer, unit_code, case_row.employee_pseudonym)
    fk = t[Role.FK_OFFICER]
    # Försäkringskassan holds the joint meeting, asks, and hears a disclosure.
    held = await ok(
        api,
        case_id,
        "record-meeting-outcome",
        meeting_outcome(
            questions=violence("threats"),
            held_by="fk",
            attended=("employee", "fk", "coordinator"),
        ),
        fk,
    )
    assert held["created_ids"] == []
    (safety,) = await eventually(
        lambda: protected_rows(sessionmaker, case_id), lambda rows: len(rows) == 1
    )
    for path in (f"/api/v1/cases/{case_id}", f"/api/v1/cases/{case_id}/timeline"):
        response = await api.get(path, headers=fk)
        assert_no_trace(response.text, f"fk GET {path}", str(safety.id))
    # A second disclosure while the safety support is open adds a disclosure, not a second one.
    await ok(api, case_id, "record-screening-result", {"answers": [violence("at_work")]}, c)
    view = (await api.get(f"/api/v1/cases/{case_id}", headers=c)).json()
    assert [(d["at_meeting"], d["asked_by"]) for d in view["violence_disclosures"]] == [
        (True, "fk"),
        (False, None),
    ]
    assert [i["intervention_id"] for i in view["interventions"] if i["protected"]] == [
        str(safety.id)
    ]

    # Closing cancels it; when the retention period ends, the protected track is erased.
    await ok(api, case_id, "close-case", {"outcome": "other"}, c)
    await env.sleep(timedelta(days=2 * 366 + 2))

    async def erased() -> bool:
        async with sessionmaker() as session:
            case = await session.get(Case, uuid.UUID(case_id))
            return case is not None and case.erased_at is not None

    await eventually(erased, bool)
    assert await protected_rows(sessionmaker, case_id) == []
    async with sessionmaker() as session:
        assert (await session.scalars(select(ViolenceDisclosure))).all() == []
        details = [
            e.detail
            for e in await session.scalars(
                select(CaseEvent).where(CaseEvent.case_id == uuid.UUID(case_id))
            )
        ]
    # The timeline stays (append-only) but never named the safety support.
    assert_no_trace(json.dumps(details), "the timeline after erasure")

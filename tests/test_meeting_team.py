"""Joint meetings every second week: a team's cadence books the cases of its units.

Real case workflows and the real MeetingTeamWorkflow on a time-skipping server of this
module's own (the team's timer loop never ends, so it is terminated after each test).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta
from email.message import EmailMessage

import httpx
import pytest
import pytest_asyncio
from icalendar import Calendar
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from api.auth import EmbeddedIssuer
from channels.ics import meeting_uid
from channels.smtp import SmtpChannel
from core.settings import Settings, TemporalSettings
from models.actions import (
    BookJointMeeting,
    CaseActionResult,
    RecordMeetingOutcome,
    RecordReturnToWorkStep,
    RecordScreeningResult,
    ReportSickLeave,
    SetPlan,
)
from models.api import Role
from models.case import Stage
from models.deadlines import STOCKHOLM, local_date
from models.instruments import ScreeningScore
from models.meetings import RecordNoShow, TeamConfig, TeamInput, TeamView, team_workflow_id
from models.notification import DispatchRequest
from store.contacts import add_unit_contact, set_employee_contact
from store.meeting_teams import add_team
from store.schema import Case, Meeting, MeetingTeam, UnitContact
from tests.case_steps import (
    OpenedCase,
    eventually,
    open_case,
    sleep_until,
    terminated_afterwards,
)
from tests.conftest import bearer
from tests.outbox_support import RecordingSmtpHandler, contact_protector, dispatcher
from workflows.meeting_team import MeetingTeamWorkflow
from workflows.rehab_case import RehabCaseWorkflow

Sessions = async_sessionmaker[AsyncSession]
ONCE = DispatchRequest(run_for_s=0)
KEDS_LOW = ScreeningScore(
    instrument_id="keds",
    instrument_version=1,
    total=8,
    band="low",
    risk_level="low",
    suggests_reinforced_support=False,
    protected=False,
)


pytestmark = pytest.mark.own_temporal("module")


@pytest_asyncio.fixture
async def cases(time_skipping_env: WorkflowEnvironment) -> AsyncIterator[list[str]]:
    async with terminated_afterwards(time_skipping_env) as ids:
        yield ids


@pytest_asyncio.fixture
async def teams(time_skipping_env: WorkflowEnvironment) -> AsyncIterator[list[str]]:
    ids: list[str] = []
    yield ids
    for workflow_id in ids:
        try:
            await time_skipping_env.client.get_workflow_handle(workflow_id).terminate("done")
        except RPCError:
            pass


async def start_team(
    env: WorkflowEnvironment,
    worker: Worker,
    sessionmaker: Sessions,
    unit_code: str,
    teams: list[str],
    *,
    first_slot_on: date,
    capacity: int = 2,
    lead_hours: int = 24,
    slots_per_run: int = 26,
) -> TeamConfig:
    """A team meeting at 09:00 every second week from `first_slot_on`, for `unit_code`."""
    config = TeamConfig(
        code=f"T{uuid.uuid4().hex[:8].upper()}",
        weekday=first_slot_on.isoweekday(),
        starts_at=time(9, 0),
        meeting_minutes=45,
        capacity=capacity,
        anchor_on=first_slot_on,
        lead_hours=lead_hours,
    )
    async with sessionmaker.begin() as session:
        await add_team(session, config, "Joint meetings north", [unit_code])
    await env.client.start_workflow(
        MeetingTeamWorkflow.run,
        TeamInput(config=config, slots_per_run=slots_per_run),
        id=team_workflow_id(config.code),
        task_queue=worker.task_queue,
    )
    teams.append(team_workflow_id(config.code))
    return config


async def team_view(env: WorkflowEnvironment, config: TeamConfig) -> TeamView:
    handle = env.client.get_workflow_handle(team_workflow_id(config.code))
    return await handle.query(MeetingTeamWorkflow.view)


async def queued(env: WorkflowEnvironment, config: TeamConfig, case: OpenedCase) -> None:
    """Wait until the case is in the team's queue (it asks right after it is recorded)."""
    await eventually(
        lambda: team_view(env, config),
        lambda view: case.case_id in {w.case_id for w in view.waiting},
    )


async def booked_at(case: OpenedCase, *, not_at: datetime | None = None) -> datetime:
    """The start of the case's booked meeting, once the team's answer has been recorded."""
    view = await eventually(
        lambda: case.handle.query(RehabCaseWorkflow.state),
        lambda v: v.meeting is not None and v.meeting.starts_at != not_at,
    )
    assert view.meeting is not None
    return view.meeting.starts_at


async def meeting_statuses(sessionmaker: Sessions) -> dict[uuid.UUID, str]:
    async with sessionmaker() as session:
        return {row.id: row.status for row in await session.scalars(select(Meeting))}


def local(config: TeamConfig, slot_on: date, seat: int = 0) -> datetime:
    return config.seat_times(slot_on, seat)[0]


async def test_oldest_deadline_first_up_to_capacity_and_a_no_show_is_counted_and_rebooked(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    unit_code: str,
    sessionmaker: Sessions,
    cases: list[str],
    teams: list[str],
) -> None:
    env = time_skipping_env
    now = await env.get_current_time()
    today = local_date(now)
    team = await start_team(
        env, worker, sessionmaker, unit_code, teams, first_slot_on=today + timedelta(days=2)
    )
    first, second = team.first_open_slot(now), team.slot_after(team.first_open_slot(now))
    # Sick notice to FK due on day 21: the later the sick leave began, the later the deadline.
    opened = {}
    for name, days_sick in (("latest", 0), ("middle", 1), ("oldest", 3)):  # newest asks first
        opened[name] = await open_case(
            env.client,
            worker.task_queue,
            unit_code,
            sessionmaker,
            sick_start=today - timedelta(days=days_sick),
            opened_at=now,
            track=cases,
        )
        await queued(env, team, opened[name])

    await sleep_until(env, team.cutoff(first) + timedelta(minutes=1))

    assert await booked_at(opened["oldest"]) == local(team, first, seat=0)
    assert await booked_at(opened["middle"]) == local(team, first, seat=1)
    latest = await opened["latest"].handle.query(RehabCaseWorkflow.state)
    assert (latest.stage, latest.meeting, latest.meeting_requested) == (
        Stage.IDENTIFIED,
        None,
        True,
    )
    view = await team_view(env, team)
    assert view.slots[0].booked == (opened["oldest"].case_id, opened["middle"].case_id)
    assert [w.case_id for w in view.waiting] == [opened["latest"].case_id]

    # The oldest case's employee does not come: counted, and rebooked into the next slot.
    oldest = opened["oldest"]
    missed = await oldest.handle.query(RehabCaseWorkflow.state)
    with pytest.raises(WorkflowUpdateFailedError) as early:
        await oldest.handle.execute_update(
            "record_no_show", RecordNoShow(), result_type=CaseActionResult
        )
    assert "has not started yet" in str(early.value.cause)
    await sleep_until(env, team.starts(first) + timedelta(minutes=50))
    await oldest.handle.execute_update(
        "record_no_show", RecordNoShow(), result_type=CaseActionResult
    )

    rebooked_at = await booked_at(oldest, not_at=local(team, first))
    assert rebooked_at == local(team, second, seat=0)  # at once: it keeps its place
    after = await oldest.handle.query(RehabCaseWorkflow.state)
    assert after.no_shows == 1 and after.meeting is not None and missed.meeting is not None
    assert after.meeting.meeting_id != missed.meeting.meeting_id
    statuses = await eventually(
        lambda: meeting_statuses(sessionmaker),
        lambda rows: after.meeting is not None and after.meeting.meeting_id in rows,
    )
    assert statuses[missed.meeting.meeting_id] == "no_show"
    assert statuses[after.meeting.meeting_id] == "booked"

    # The case still waiting gets the next slot's remaining seat at its cut-off.
    await sleep_until(env, team.cutoff(second) + timedelta(minutes=1))
    assert await booked_at(opened["latest"]) == local(team, second, seat=1)
    assert (await team_view(env, team)).waiting == ()


async def test_a_slot_in_a_dst_week_stays_at_nine_local_while_its_utc_instant_moves(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    unit_code: str,
    sessionmaker: Sessions,
    cases: list[str],
    teams: list[str],
) -> None:
    env = time_skipping_env
    # The next change of the clocks at least three weeks ahead of the server's clock.
    day = local_date(await env.get_current_time()) + timedelta(days=21)
    while _offset(day) == _offset(day + timedelta(days=1)):
        day += timedelta(days=1)
    change = day + timedelta(days=1)
    monday_before = change - timedelta(days=change.isoweekday() - 1)
    if monday_before >= change:
        monday_before -= timedelta(days=7)
    await sleep_until(env, datetime.combine(monday_before - timedelta(days=5), time(12), STOCKHOLM))
    now = await env.get_current_time()
    team = await start_team(
        env, worker, sessionmaker, unit_code, teams, first_slot_on=monday_before, capacity=1
    )
    before, after = monday_before, monday_before + timedelta(days=14)
    first = await open_case(
        env.client, worker.task_queue, unit_code, sessionmaker, opened_at=now, track=cases
    )
    await queued(env, team, first)
    second = await open_case(
        env.client, worker.task_queue, unit_code, sessionmaker, opened_at=now, track=cases
    )
    await queued(env, team, second)

    await sleep_until(env, team.cutoff(after) + timedelta(minutes=1))

    starts = [await booked_at(first), await booked_at(second)]
    assert [s.astimezone(STOCKHOLM).time() for s in starts] == [time(9, 0), time(9, 0)]
    assert [local_date(s) for s in starts] == [before, after]
    # 14 days apart on the wall clock, 14 days and an hour less (spring) or more (autumn) in UTC.
    assert starts[1] - starts[0] == timedelta(days=14) - (_offset(after) - _offset(before))
    assert starts[1] - starts[0] != timedelta(days=14)


def _offset(day: date) -> timedelta:
    offset = datetime.combine(day, time(12), STOCKHOLM).utcoffset()
    assert offset is not None
    return offset


# ---------------------------------------------------------------- invitations through SMTP


def _about(message: EmailMessage, case: OpenedCase) -> bool:
    """The link in the body names the case."""
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return f"/cases/{case.case_id}" in body.get_content()


def _by_case(messages: list[EmailMessage], *cases: OpenedCase) -> dict[uuid.UUID, set[str]]:
    """Who received a message about which case."""
    found: dict[uuid.UUID, set[str]] = defaultdict(set)
    for message in messages:
        for case in cases:
            if _about(message, case):
                found[case.case_id].add(str(message["To"]))
    return dict(found)


def _event(message: EmailMessage) -> tuple[str, Calendar]:
    (part,) = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    calendar = Calendar.from_ical(part.get_content())
    return str(calendar["METHOD"]), calendar


async def test_invitations_reach_the_right_parties_and_a_reschedule_updates_the_same_event(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    api: httpx.AsyncClient,
    issuer: EmbeddedIssuer,
    coordinator_headers: dict[str, str],
    unit_code: str,
    sessionmaker: Sessions,
    smtp: tuple[RecordingSmtpHandler, SmtpChannel],
    cases: list[str],
    teams: list[str],
) -> None:
    env = time_skipping_env
    handler, channel = smtp
    protector = contact_protector()
    staff = {
        "manager": "manager@example.org",
        "coordinator": "coordinator@example.org",
        "fk_officer": "fk.officer@example.org",
        "fhv": "occupational.health@example.org",
    }
    async with sessionmaker.begin() as session:
        for role, address in staff.items():
            await add_unit_contact(
                session,
                unit_code=unit_code,
                role=role,  # type: ignore[arg-type]
                channel="email",
                address=address,
            )
    now = await env.get_current_time()
    today = local_date(now)
    team = await start_team(
        env, worker, sessionmaker, unit_code, teams, first_slot_on=today + timedelta(days=2)
    )
    first, second = team.first_open_slot(now), team.slot_after(team.first_open_slot(now))
    with_fhv, without_fhv = [
        await open_case(
            env.client,
            worker.task_queue,
            unit_code,
            sessionmaker,
            sick_start=today - timedelta(days=days_sick),
            opened_at=now,
            track=cases,
        )
        for days_sick in (3, 1)
    ]
    employee_address = {with_fhv.case_id: "anna@example.org", without_fhv.case_id: "bo@example.org"}
    async with sessionmaker.begin() as session:
        for case in (with_fhv, without_fhv):
            pseudonym = await session.scalar(
                select(Case.employee_pseudonym).where(Case.id == case.case_id)
            )
            assert pseudonym is not None
            await set_employee_contact(
                session,
                protector,
                employee_pseudonym=pseudonym,
                channel="email",
                address=employee_address[case.case_id],
            )
    manager = bearer(issuer.mint(Role.MANAGER, subject="manager-1", units=[unit_code]))

    async def act(case: OpenedCase, action: str, body: dict[str, object], who: dict[str, str]):
        return await api.post(f"/api/v1/cases/{case.case_id}/{action}", json=body, headers=who)

    fk = await act(with_fhv, "record-consent", {"party": "fk", "given": True}, coordinator_headers)
    assert fk.status_code == 200, fk.text
    # The employer chooses occupational health for one case, which needs its own consent.
    refused = await act(with_fhv, "choose-fhv", {"chosen": True}, manager)
    assert refused.status_code == 409
    assert "consent" in refused.json()["detail"]
    await act(with_fhv, "record-consent", {"party": "fhv", "given": True}, coordinator_headers)
    chosen = await act(with_fhv, "choose-fhv", {"chosen": True}, manager)
    assert chosen.status_code == 200, chosen.text

    await sleep_until(env, team.cutoff(first) + timedelta(minutes=1))
    for case in (with_fhv, without_fhv):
        await booked_at(case)
    # FK consent given after the booking: the FK officer is invited then.
    late = await act(
        without_fhv, "record-consent", {"party": "fk", "given": True}, coordinator_headers
    )
    assert late.status_code == 200, late.text
    dispatch = dispatcher(sessionmaker, email_channel=channel, protector=protector)
    await ActivityEnvironment().run(dispatch.dispatch_due, ONCE)

    invitations = [m for m in handler.received if "gemensamt möte" in str(m["Subject"])]
    everyone = {staff["manager"], staff["coordinator"], staff["fk_officer"]}
    assert _by_case(invitations, with_fhv, without_fhv) == {
        with_fhv.case_id: everyone | {"anna@example.org", staff["fhv"]},
        without_fhv.case_id: everyone | {"bo@example.org"},
    }
    booked = await with_fhv.handle.query(RehabCaseWorkflow.state)
    assert booked.meeting is not None
    sent_to_anna = [m for m in invitations if _about(m, with_fhv)]
    assert len(sent_to_anna) == 5
    for message in sent_to_anna:
        method, calendar = _event(message)
        (event,) = calendar.events
        assert method == "REQUEST"
        assert (event.uid, event.sequence) == (
            meeting_uid(booked.meeting.meeting_id),
            0,
        )
        assert event.start == local(team, first, seat=0)

    # Rescheduled: the next slot with room after this one, the same calendar event updated.
    moved = await act(with_fhv, "reschedule-meeting", {}, coordinator_headers)
    assert moved.status_code == 200, moved.text
    assert await booked_at(with_fhv, not_at=booked.meeting.starts_at) == local(team, second)
    # Called off: every invitee gets a cancellation of the same event.
    cancelled = await act(without_fhv, "cancel-meeting", {}, coordinator_headers)
    assert cancelled.status_code == 200, cancelled.text
    again = await act(without_fhv, "reschedule-meeting", {}, coordinator_headers)
    assert again.status_code == 409
    assert again.json()["detail"] == "no joint meeting is booked"
    seen = len(handler.received)
    await ActivityEnvironment().run(dispatch.dispatch_due, ONCE)

    updates = handler.received[seen:]
    assert _by_case(updates, with_fhv, without_fhv) == {
        with_fhv.case_id: everyone | {"anna@example.org", staff["fhv"]},
        without_fhv.case_id: everyone | {"bo@example.org"},
    }
    dropped = await without_fhv.handle.query(RehabCaseWorkflow.state)
    for message in updates:
        method, calendar = _event(message)
        (event,) = calendar.events
        if _about(message, with_fhv):
            assert (method, event.uid, event.sequence) == (
                "REQUEST",
                meeting_uid(booked.meeting.meeting_id),
                1,
            )
            assert event.start == local(team, second)
        else:
            assert (method, event.sequence) == ("CANCEL", 1)
    assert dropped.meeting is None
    view = await team_view(env, team)
    assert {slot.slot_on: slot.booked for slot in view.slots}[first] == ()
    assert {slot.slot_on: slot.booked for slot in view.slots}[second] == (with_fhv.case_id,)


# ---------------------------------------------------------------- operations


async def test_operations_pause_and_resume_a_cadence_and_only_admins_may(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    api: httpx.AsyncClient,
    issuer: EmbeddedIssuer,
    coordinator_headers: dict[str, str],
    unit_code: str,
    sessionmaker: Sessions,
    cases: list[str],
    teams: list[str],
) -> None:
    env = time_skipping_env
    now = await env.get_current_time()
    # One slot per run: the pause and the waiting case must survive continue-as-new.
    team = await start_team(
        env,
        worker,
        sessionmaker,
        unit_code,
        teams,
        first_slot_on=local_date(now) + timedelta(2),
        slots_per_run=1,
    )
    team_handle = env.client.get_workflow_handle(team_workflow_id(team.code))
    first_run = (await team_handle.describe()).run_id
    first, second = team.first_open_slot(now), team.slot_after(team.first_open_slot(now))
    admin = bearer(issuer.mint(Role.ADMIN, subject="ops-1"))
    path = f"/api/v1/meeting-teams/{team.code}"
    for method, url in (("GET", "/api/v1/meeting-teams"), ("GET", path), ("POST", f"{path}/pause")):
        refused = await api.request(method, url, headers=coordinator_headers)
        assert refused.status_code == 403, url

    listed = await api.get("/api/v1/meeting-teams", headers=admin)
    (summary,) = [t for t in listed.json() if t["code"] == team.code]
    assert (summary["status"], summary["units"], summary["starts_at"]) == (
        "running",
        [unit_code],
        "09:00:00",
    )
    paused = await api.post(f"{path}/pause", headers=admin)
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    twice = await api.post(f"{path}/pause", headers=admin)
    assert (twice.status_code, twice.json()["detail"]) == (409, "the cadence is already paused")
    assert (await api.get("/api/v1/meeting-teams/NO-SUCH", headers=admin)).status_code == 404

    case = await open_case(
        env.client, worker.task_queue, unit_code, sessionmaker, opened_at=now, track=cases
    )
    await queued(env, team, case)
    await sleep_until(env, team.cutoff(first) + timedelta(minutes=1))
    await eventually(
        lambda: api.get(path, headers=admin), lambda r: r.json()["slots"][0]["status"] == "skipped"
    )
    while_paused = (await api.get(path, headers=admin)).json()
    assert while_paused["waiting_case_ids"] == [str(case.case_id)]
    assert (await case.handle.query(RehabCaseWorkflow.state)).meeting is None

    resumed = await api.post(f"{path}/resume", headers=admin)
    assert resumed.status_code == 200 and resumed.json()["status"] == "running"
    await sleep_until(env, team.cutoff(second) + timedelta(minutes=1))

    # Booked at the next cut-off, in the cadence's own week: pausing did not shift it.
    assert await booked_at(case) == local(team, second)
    detail = (await api.get(path, headers=admin)).json()
    (slot,) = [s for s in detail["slots"] if s["case_ids"]]
    assert (slot["booked"], slot["free"], slot["case_ids"]) == (1, 1, [str(case.case_id)])
    assert detail["waiting"] == 0 and detail["skipped_slots"] == 1
    assert (await team_handle.describe()).run_id != first_run  # it continued as new

    await team_handle.terminate("stopped by operations")
    stopped = (await api.get(path, headers=admin)).json()
    assert (stopped["status"], stopped["slots"]) == ("not_running", [])


async def test_a_case_that_no_longer_runs_gives_its_seat_back(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    unit_code: str,
    sessionmaker: Sessions,
    cases: list[str],
    teams: list[str],
) -> None:
    env = time_skipping_env
    now = await env.get_current_time()
    team = await start_team(
        env, worker, sessionmaker, unit_code, teams, first_slot_on=local_date(now) + timedelta(2)
    )
    case = await open_case(
        env.client, worker.task_queue, unit_code, sessionmaker, opened_at=now, track=cases
    )
    await queued(env, team, case)
    await eventually(case.handle.describe, lambda d: not d.raw_description.pending_activities)
    await case.handle.terminate("gone")

    await sleep_until(env, team.cutoff(team.first_open_slot(now)) + timedelta(minutes=1))

    # Seated at the cut-off, then released when the signal to the case failed.
    view = await eventually(
        lambda: team_view(env, team), lambda v: v.booked_total == 1 and v.slots[0].booked == ()
    )
    assert view.slots[0].status == "booked" and view.waiting == ()


async def test_add_team_registers_the_team_its_contacts_and_starts_its_cadence_once(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    settings: Settings,
    unit_code: str,
    sessionmaker: Sessions,
    teams: list[str],
) -> None:
    import starter

    target = time_skipping_env.client.service_client.config.target_host
    settings = settings.model_copy(
        update={"temporal": TemporalSettings(address=target, task_queue=worker.task_queue)}
    )
    code = f"T{uuid.uuid4().hex[:8].upper()}"
    teams.append(team_workflow_id(code))
    fields: dict[str, object] = {
        "code": code,
        "weekday": 2,
        "starts_at": "09:00",
        "anchor_on": "2027-01-05",
        "capacity": 3,
        "meeting_minutes": 40,
        "lead_hours": 72,
    }
    contacts = [("coordinator", "hr@example.org"), ("fk_officer", "fk@example.org")]

    assert await starter.add_team(settings, fields, "Team", [unit_code], contacts) == 0
    handle = time_skipping_env.client.get_workflow_handle(team_workflow_id(code))
    first_run = (await handle.describe()).run_id
    assert await starter.add_team(settings, fields, "Team", [unit_code], contacts) == 0
    changed = fields | {"capacity": 4}
    assert await starter.add_team(settings, changed, "Team", [unit_code], contacts) == 2
    bad = fields | {"code": f"{code}-B", "starts_at": "02:30"}
    assert await starter.add_team(settings, bad, "Team", [unit_code], contacts) == 2
    # A unit meets in one team at most.
    second_team = fields | {"code": f"{code}-C"}
    assert await starter.add_team(settings, second_team, "Team", [unit_code], contacts) == 2

    assert (await handle.describe()).run_id == first_run
    view = await handle.query(MeetingTeamWorkflow.view)
    assert view.slots[0].starts_at.astimezone(STOCKHOLM).strftime("%A %H:%M") == "Tuesday 09:00"
    async with sessionmaker() as session:
        stored = await session.get(MeetingTeam, code)
        roles = sorted(
            (c.role, c.address)
            for c in await session.scalars(
                select(UnitContact).where(UnitContact.unit_code == unit_code)
            )
        )
    assert stored is not None and stored.capacity == 3
    assert roles == [("coordinator", "hr@example.org"), ("fk_officer", "fk@example.org")]


async def test_a_meeting_booked_by_hand_gives_the_teams_place_back(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    unit_code: str,
    sessionmaker: Sessions,
    cases: list[str],
    teams: list[str],
) -> None:
    env = time_skipping_env
    now = await env.get_current_time()
    team = await start_team(
        env, worker, sessionmaker, unit_code, teams, first_slot_on=local_date(now) + timedelta(2)
    )
    case = await open_case(
        env.client, worker.task_queue, unit_code, sessionmaker, opened_at=now, track=cases
    )
    await queued(env, team, case)

    by_hand = BookJointMeeting(starts_at=now + timedelta(hours=5), ends_at=now + timedelta(hours=6))
    await case.handle.execute_update("book_joint_meeting", by_hand, result_type=CaseActionResult)

    await eventually(lambda: team_view(env, team), lambda v: v.waiting == ())
    await sleep_until(env, team.cutoff(team.first_open_slot(now)) + timedelta(minutes=1))
    view = await case.handle.query(RehabCaseWorkflow.state)
    assert view.meeting is not None and view.meeting.starts_at == by_hand.starts_at
    assert (view.meeting_team, view.meeting_requested) == (None, False)
    assert (await team_view(env, team)).booked_total == 0


async def test_a_relapse_asks_the_team_again_for_the_next_slot_with_room(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    unit_code: str,
    sessionmaker: Sessions,
    cases: list[str],
    teams: list[str],
) -> None:
    env = time_skipping_env
    now = await env.get_current_time()
    today = local_date(now)
    team = await start_team(
        env, worker, sessionmaker, unit_code, teams, first_slot_on=today + timedelta(2)
    )
    first = team.first_open_slot(now)
    case = await open_case(
        env.client,
        worker.task_queue,
        unit_code,
        sessionmaker,
        sick_start=today - timedelta(days=3),
        opened_at=now,
        track=cases,
    )
    h = case.handle
    await sleep_until(env, team.cutoff(first) + timedelta(minutes=1))
    assert await booked_at(case) == local(team, first)
    await sleep_until(env, team.ends(first))
    await h.execute_update(
        "record_meeting_outcome",
        RecordMeetingOutcome(attended=("employee", "manager"), reinforced_support=False),
        result_type=CaseActionResult,
    )
    await h.execute_update(
        "record_screening_result",
        RecordScreeningResult(scores=(KEDS_LOW,)),
        result_type=CaseActionResult,
    )
    await h.execute_update("set_plan", SetPlan(), result_type=CaseActionResult)
    back_on = local_date(await env.get_current_time())
    await h.execute_update(
        "record_return_to_work_step",
        RecordReturnToWorkStep(extent=100, from_date=back_on),
        result_type=CaseActionResult,
    )

    relapse = await h.execute_update(
        "report_sick_leave", ReportSickLeave(start=back_on), result_type=CaseActionResult
    )

    assert (
        relapse.stage == Stage.JOINT_MEETING
        and (await h.query(RehabCaseWorkflow.state)).meeting is None
    )
    await queued(env, team, case)
    second = team.slot_after(first)
    await sleep_until(env, team.cutoff(second) + timedelta(minutes=1))
    assert await booked_at(case, not_at=local(team, first)) == local(team, second)

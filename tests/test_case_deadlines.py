"""Deadlines as durable timers: exact days (SE and NO), overdue, met, re-planned, late."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.actions import CaseActionResult, RecordDeadlineMet, SetSickLeave
from models.case import case_workflow_id
from models.deadlines import DeadlineStatus, end_of_day, start_of_day
from models.policy import NORWAY, SWEDISH_DEFAULT, Policy
from models.search_attributes import REHAB_OVERDUE
from store.schema import CaseDeadline
from tests.case_steps import (
    OpenedCase,
    case_row,
    days,
    events_of,
    eventually,
    open_case,
    sleep_until,
    timeline,
    today,
)
from workflows.rehab_case import RehabCaseWorkflow

pytestmark = pytest.mark.own_temporal("module")


MINUTE = days(1) / (24 * 60)


async def _statuses(case: OpenedCase) -> dict[str, DeadlineStatus]:
    view = await case.handle.query(RehabCaseWorkflow.deadlines)
    return {d.kind: d.status for d in view.deadlines}


async def _due_dates(case: OpenedCase) -> dict[str, date]:
    view = await case.handle.query(RehabCaseWorkflow.deadlines)
    return {d.kind: d.due_on for d in view.deadlines}


async def _assert_every_deadline_fired_on_its_day(
    env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
    case: OpenedCase,
    policy: Policy,
    sick_start: date,
) -> None:
    expected = {rule.kind: sick_start + days(rule.sick_day - 1) for rule in policy.deadlines}
    assert await _due_dates(case) == expected
    last_escalation = end_of_day(
        max(expected.values()) + days(policy.overdue_escalation_after_days)
    )
    await sleep_until(env, last_escalation + MINUTE)
    await eventually(
        lambda: events_of(sessionmaker, case.case_id, "deadline_escalation"),
        lambda found: len(found) == len(expected),
    )
    for step, instant_of in (
        ("due", start_of_day),
        ("overdue", end_of_day),
        ("reminder", lambda d: end_of_day(d + days(policy.overdue_reminder_after_days))),
        ("escalation", lambda d: end_of_day(d + days(policy.overdue_escalation_after_days))),
    ):
        fired = {
            e.detail["deadline"]: e.occurred_at
            for e in await events_of(sessionmaker, case.case_id, f"deadline_{step}")
        }
        assert fired == {kind: instant_of(due) for kind, due in expected.items()}, step


async def test_swedish_deadlines_fire_on_their_exact_days_then_overdue_reminder_escalation(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    unit_code: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    started_cases: list[str],
) -> None:
    env = time_skipping_env
    now = await env.get_current_time()
    sick_start = await today(env) - days(2)
    case = await open_case(
        env.client,
        worker.task_queue,
        unit_code,
        sessionmaker,
        sick_start=sick_start,
        expected_end=sick_start + days(99),  # 100 sick days: the RTW plan applies
        opened_at=now,
        track=started_cases,
    )
    fk_due = sick_start + days(20)

    # A minute before the due day nothing has fired; at 00:00 Stockholm the task opens.
    await sleep_until(env, start_of_day(fk_due) - MINUTE)
    assert (await _statuses(case))["fk_sick_notice"] == DeadlineStatus.PENDING
    await env.sleep(2 * MINUTE)
    await eventually(lambda: _statuses(case), lambda s: s["fk_sick_notice"] == DeadlineStatus.DUE)

    # The due day lasts until 24:00; only then is the deadline overdue, everywhere.
    await sleep_until(env, end_of_day(fk_due) - MINUTE)
    assert (await _statuses(case))["fk_sick_notice"] == DeadlineStatus.DUE
    assert (await case.handle.query(RehabCaseWorkflow.state)).overdue is False
    await env.sleep(2 * MINUTE)
    await eventually(
        lambda: _statuses(case), lambda s: s["fk_sick_notice"] == DeadlineStatus.OVERDUE
    )
    described = await case.handle.describe()
    assert described.typed_search_attributes.get(REHAB_OVERDUE) is True
    row = await eventually(lambda: case_row(sessionmaker, case.case_id), lambda r: r.overdue)
    assert (row.next_deadline_kind, row.next_deadline_on) == ("fk_sick_notice", fk_due)

    await _assert_every_deadline_fired_on_its_day(
        env, sessionmaker, case, SWEDISH_DEFAULT, sick_start
    )
    # Day 366 puts the case on the long-term track.
    entered = await eventually(
        lambda: events_of(sessionmaker, case.case_id, "long_term_track_entered"), bool
    )
    assert entered[0].occurred_at == start_of_day(sick_start + days(365))
    assert (await case_row(sessionmaker, case.case_id)).long_term is True


async def test_norwegian_deadlines_fire_on_the_last_day_of_each_nav_week(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    unit_code: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    started_cases: list[str],
) -> None:
    env = time_skipping_env
    sick_start = await today(env)
    case = await open_case(
        env.client,
        worker.task_queue,
        unit_code,
        sessionmaker,
        sick_start=sick_start,
        policy=NORWAY,
        opened_at=await env.get_current_time(),
        track=started_cases,
    )
    row = await case_row(sessionmaker, case.case_id)
    assert (row.policy_id, row.policy_version) == ("no-nav", 1)
    await _assert_every_deadline_fired_on_its_day(env, sessionmaker, case, NORWAY, sick_start)


async def test_a_deadline_met_before_its_day_never_fires(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    unit_code: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    started_cases: list[str],
) -> None:
    env = time_skipping_env
    sick_start = await today(env)
    case = await open_case(
        env.client,
        worker.task_queue,
        unit_code,
        sessionmaker,
        sick_start=sick_start,
        opened_at=await env.get_current_time(),
        track=started_cases,
    )
    await case.handle.execute_update(
        "record_deadline_met",
        RecordDeadlineMet(kind="fk_sick_notice"),
        result_type=CaseActionResult,
    )
    next_deadline = (await case.handle.query(RehabCaseWorkflow.state)).next_deadline
    assert next_deadline is not None
    assert next_deadline.kind == "rehab_chain_day_90"

    await sleep_until(env, end_of_day(sick_start + days(30)))
    # The next deadline (day 90) is pending; nothing ever fired for the met one.
    assert (await _statuses(case))["fk_sick_notice"] == DeadlineStatus.MET
    fired = [e for e in await timeline(sessionmaker, case.case_id) if e.kind.startswith("deadline")]
    assert [(e.kind, e.detail["deadline"]) for e in fired] == [("deadline_met", "fk_sick_notice")]
    assert (await case.handle.query(RehabCaseWorkflow.state)).overdue is False
    async with sessionmaker() as session:
        stored = await session.get(CaseDeadline, (case.case_id, "fk_sick_notice"))
        assert stored is not None and stored.status == "met" and stored.met_on == sick_start


async def test_moving_the_sick_leave_start_and_expected_end_replans_the_deadlines(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    unit_code: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    started_cases: list[str],
) -> None:
    env = time_skipping_env
    day0 = await today(env)
    case = await open_case(
        env.client,
        worker.task_queue,
        unit_code,
        sessionmaker,
        sick_start=day0,
        opened_at=await env.get_current_time(),
        track=started_cases,
    )
    assert (await _due_dates(case))["fk_sick_notice"] == day0 + days(20)
    assert "return_to_work_plan" not in await _due_dates(case)

    # The sick leave actually began 5 days earlier: every deadline moves 5 days earlier.
    await case.handle.execute_update(
        "set_sick_leave", SetSickLeave(start=day0 - days(5)), result_type=CaseActionResult
    )
    assert (await case.handle.query(RehabCaseWorkflow.state)).sick_start == day0 - days(5)
    assert (await _due_dates(case))["fk_sick_notice"] == day0 + days(15)
    assert (await _due_dates(case))["rehab_chain_day_90"] == day0 + days(84)

    # On day 36 the sick leave is expected to last 100 days: the plan is due at once.
    await sleep_until(env, start_of_day(day0 + days(30)) + MINUTE)
    await case.handle.execute_update(
        "set_sick_leave", SetSickLeave(expected_end=day0 + days(94)), result_type=CaseActionResult
    )
    assert (await case.handle.query(RehabCaseWorkflow.state)).expected_end == day0 + days(94)
    assert (await _due_dates(case))["return_to_work_plan"] == day0 + days(30)
    await eventually(
        lambda: _statuses(case), lambda s: s["return_to_work_plan"] == DeadlineStatus.DUE
    )
    # The FK notice fired on its moved day, not on the original one.
    notices = await events_of(sessionmaker, case.case_id, "deadline_due")
    assert {e.detail["deadline"]: e.occurred_at for e in notices}["fk_sick_notice"] == (
        start_of_day(day0 + days(15))
    )
    row = await eventually(
        lambda: case_row(sessionmaker, case.case_id),
        lambda r: r.expected_end == day0 + days(94),
    )
    assert row.sick_start == day0 - days(5)
    kinds = [e.kind for e in await timeline(sessionmaker, case.case_id)]
    assert kinds.count("sick_leave_set") == 2


async def test_deadlines_already_passed_when_the_case_starts_are_recorded_overdue_at_once(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    unit_code: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    started_cases: list[str],
) -> None:
    env = time_skipping_env
    sick_start = await today(env) - days(40)  # e.g. an import of last month's absences
    case = await open_case(
        env.client,
        worker.task_queue,
        unit_code,
        sessionmaker,
        sick_start=sick_start,
        expected_end=sick_start + days(120),
        opened_at=await env.get_current_time(),
        track=started_cases,
    )
    statuses = await eventually(
        lambda: _statuses(case),
        lambda s: (
            s["fk_sick_notice"] == DeadlineStatus.OVERDUE
            and s["return_to_work_plan"] == DeadlineStatus.DUE
        ),
    )
    # The plan's expectation came after day 30, so the plan is due today, not on day 30.
    assert (await _due_dates(case))["return_to_work_plan"] == await today(env)
    assert statuses["rehab_chain_day_90"] == DeadlineStatus.PENDING
    events = await eventually(
        lambda: timeline(sessionmaker, case.case_id),
        lambda found: any(e.kind == "deadline_escalation" for e in found),
    )
    fk = [e.kind for e in events if e.detail.get("deadline") == "fk_sick_notice"]
    # Recorded, never skipped; the due notice and the reminder are superseded.
    assert fk == ["deadline_overdue", "deadline_escalation"]
    assert (await case.handle.describe()).typed_search_attributes.get(REHAB_OVERDUE) is True
    async with sessionmaker() as session:
        overdue = await session.scalar(
            select(CaseDeadline.status).where(
                CaseDeadline.case_id == case.case_id, CaseDeadline.kind == "fk_sick_notice"
            )
        )
    assert overdue == "overdue"
    assert case_workflow_id(case.case_id) == case.handle.id

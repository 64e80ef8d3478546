"""Early identification: absence events in, cases out, exactly on the policy's thresholds."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from core.codec import KeyRing
from core.identity import IdentityProtector
from core.secrets import Secrets
from core.temporal import query_with_retry
from ingestion.absences import CASE_DUE_PRIORITY, SICK_NOW_PRIORITY, AbsenceIngestion
from models.absence import (
    AbsenceBatch,
    AbsenceRecord,
    CaseReferral,
    IngestResult,
    MonitorInput,
    MonitorState,
    MonitorView,
    monitor_workflow_id,
)
from models.actions import AbsenceNews, CaseActionResult, CloseCase, RecordReturnToWorkStep
from models.case import CaseOutcome, CaseTrigger, OpenCaseRecord, Stage, case_workflow_id
from models.deadlines import local_date
from models.search_attributes import REHAB_OVERDUE
from store.cases import insert_case
from store.schema import AbsenceEvent, Case, CaseEvent, Employee
from tests.case_steps import eventually, through_planning
from workflows.absence_monitor import MAX_BATCHES_PER_RUN, AbsenceMonitorWorkflow
from workflows.rehab_case import RehabCaseWorkflow

pytestmark = pytest.mark.own_temporal("test")

PIN = "19811218-9876"
OTHER_PIN = "19900101-0017"
THIRD_PIN = "19850505-0024"


@pytest.fixture
async def today(time_skipping_env: WorkflowEnvironment) -> date:
    """The test server's date in Stockholm: it moves forward across the session."""
    return local_date(await time_skipping_env.get_current_time())


def sick(
    event_id: str, unit: str, start: date, end: date | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "employee_ref": extra.pop("employee_ref", PIN),
        "unit_code": unit,
        "kind": "sick",
        "start": start.isoformat(),
        **({"end": end.isoformat()} if end else {}),
        **extra,
    }


async def cases_of(sessionmaker: async_sessionmaker[AsyncSession]) -> list[Case]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(Case).order_by(Case.opened_at))).all())


async def summary(
    env: WorkflowEnvironment, sessionmaker: async_sessionmaker[AsyncSession]
) -> MonitorView:
    """The monitor's view once it has applied the last event delivered to it.

    Ingestion returns when its signals are accepted, not applied: a query sent at once
    could be answered by the state before them.
    """
    async with sessionmaker() as session:
        pseudonym = await session.scalar(select(Employee.pseudonym).limit(1))
        last = await session.scalar(
            select(AbsenceEvent.event_id)
            .where(
                AbsenceEvent.employee_pseudonym == pseudonym,
                AbsenceEvent.delivered_at.is_not(None),
            )
            .order_by(AbsenceEvent.delivered_at.desc(), AbsenceEvent.start.desc())
            .limit(1)
        )
    assert pseudonym is not None
    handle = env.client.get_workflow_handle(monitor_workflow_id(pseudonym))
    return await eventually(
        lambda: query_with_retry(handle, AbsenceMonitorWorkflow.summary),
        lambda view: view.last_event_id == last and not view.busy,
    )


async def test_long_absence_opens_a_case_on_day_15_and_not_on_day_14(
    ingestion: AbsenceIngestion,
    worker: Worker,
    unit_code: str,
    today: date,
    time_skipping_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    result = await ingestion.ingest(
        [sick("e1", unit_code, today, expected_end=(today + timedelta(days=70)).isoformat())]
    )
    assert result == IngestResult(accepted=1, duplicate=0, rejected=[])

    await time_skipping_env.sleep(timedelta(days=13))  # now on sick day 14
    view = await summary(time_skipping_env, sessionmaker)
    assert view.next_rule_on == today + timedelta(days=14)  # day 15
    assert not [k for k in view.fired if k.startswith("long_absence")]
    assert await cases_of(sessionmaker) == []

    await time_skipping_env.sleep(timedelta(days=1))  # sick day 15 has begun
    await eventually(lambda: _has_cases(sessionmaker, 1), bool)
    (case,) = await cases_of(sessionmaker)
    assert case.trigger == "long_absence"
    assert case.unit_code == unit_code


async def _has_cases(sessionmaker: async_sessionmaker[AsyncSession], n: int) -> bool:
    return len(await cases_of(sessionmaker)) == n


async def test_a_late_import_past_day_15_opens_the_case_at_once(
    ingestion: AbsenceIngestion,
    worker: Worker,
    unit_code: str,
    today: date,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await ingestion.ingest([sick("late", unit_code, today - timedelta(days=20))])
    await eventually(lambda: _has_cases(sessionmaker, 1), bool)
    assert (await cases_of(sessionmaker))[0].trigger == "long_absence"


async def test_a_period_longer_than_a_year_at_first_sight_opens_the_long_term_track(
    ingestion: AbsenceIngestion,
    worker: Worker,
    unit_code: str,
    today: date,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await ingestion.ingest([sick("year", unit_code, today - timedelta(days=400))])
    await eventually(lambda: _has_cases(sessionmaker, 1), bool)
    cases = await cases_of(sessionmaker)
    assert [c.trigger for c in cases] == ["long_term"]


async def test_an_absence_from_year_1_is_refused_and_opens_no_long_term_case(
    ingestion: AbsenceIngestion,
    worker: Worker,
    unit_code: str,
    today: date,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    result = await ingestion.ingest(
        [
            sick("ancient", unit_code, date(1, 1, 1)),
            sick("far-ahead", unit_code, today, date(9999, 12, 31)),
            sick("expected", unit_code, today, expected_end="9999-12-31"),
        ]
    )

    assert result.accepted == 0
    assert [(r.index, r.field) for r in result.rejected] == [
        (0, "start"),
        (1, "end"),
        (2, "expected_end"),
    ]
    assert all(r.reason.startswith("must lie between") for r in result.rejected)
    assert "9999" not in result.model_dump_json() and "0001" not in result.model_dump_json()
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(AbsenceEvent)) == 0
    assert await cases_of(sessionmaker) == []


def _short_spells(
    unit: str, first: date, count: int, every_days: int, prefix: str = "s"
) -> list[dict[str, Any]]:
    return [
        sick(
            f"{prefix}{i}",
            unit,
            first + timedelta(days=i * every_days),
            first + timedelta(days=i * every_days + 1),
        )
        for i in range(count)
    ]


async def test_the_sixth_sick_occasion_within_twelve_months_opens_a_case_and_the_fifth_does_not(
    ingestion: AbsenceIngestion,
    worker: Worker,
    unit_code: str,
    today: date,
    time_skipping_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    spells = _short_spells(unit_code, today - timedelta(days=300), 6, every_days=55)
    await ingestion.ingest(spells[:5])
    view = await summary(time_skipping_env, sessionmaker)
    assert view.occasions_in_window == 5
    assert await cases_of(sessionmaker) == []

    await ingestion.ingest(spells[5:])
    await eventually(lambda: _has_cases(sessionmaker, 1), bool)
    assert (await cases_of(sessionmaker))[0].trigger == "repeated_short_absence"


async def test_six_occasions_spread_over_thirteen_months_open_nothing(
    ingestion: AbsenceIngestion,
    worker: Worker,
    unit_code: str,
    today: date,
    time_skipping_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    # 78 days apart: the first is 390 days ago, outside the rolling twelve months.
    await ingestion.ingest(_short_spells(unit_code, today - timedelta(days=390), 6, every_days=78))
    # Once the monitor has nothing left to do, whatever it was going to open is open.
    view = await eventually(lambda: summary(time_skipping_env, sessionmaker), lambda v: not v.busy)
    assert view.occasions_in_window == 5
    assert not [k for k in view.fired if k.startswith("repeated_short_absence")]
    assert await cases_of(sessionmaker) == []


@pytest.mark.parametrize(("healthy_days", "periods"), [(4, 1), (5, 2)])
async def test_a_relapse_within_five_days_continues_the_sick_period(
    ingestion: AbsenceIngestion,
    worker: Worker,
    unit_code: str,
    today: date,
    time_skipping_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
    healthy_days: int,
    periods: int,
) -> None:
    first_end = today - timedelta(days=40)
    relapse = first_end + timedelta(days=healthy_days + 1)
    await ingestion.ingest(
        [
            sick("a", unit_code, first_end - timedelta(days=9), first_end),
            sick("b", unit_code, relapse, relapse + timedelta(days=2)),
        ]
    )
    view = await summary(time_skipping_env, sessionmaker)
    assert view.sick_periods == periods


async def test_an_employee_has_one_open_case_and_later_triggers_go_to_it(
    ingestion: AbsenceIngestion,
    worker: Worker,
    unit_code: str,
    today: date,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await ingestion.ingest(
        [sick("long", unit_code, today - timedelta(days=60), today - timedelta(days=30))]
    )
    await eventually(lambda: _has_cases(sessionmaker, 1), bool)
    assert (await cases_of(sessionmaker))[0].trigger == "long_absence"
    # Six earlier occasions make seven in the window: the open case hears of it, no new case.
    await ingestion.ingest(
        _short_spells(unit_code, today - timedelta(days=300), 6, every_days=40, prefix="r")
    )

    async def observed() -> bool:
        async with sessionmaker() as session:
            kinds = (
                await session.scalars(
                    select(CaseEvent.detail).where(CaseEvent.kind == "absence_observed")
                )
            ).all()
        return any(k.get("rule") == "repeated_short_absence" for k in kinds)

    await eventually(observed, bool)
    assert len(await cases_of(sessionmaker)) == 1


async def test_duplicate_events_are_counted_and_change_nothing(
    ingestion: AbsenceIngestion,
    worker: Worker,
    unit_code: str,
    today: date,
    time_skipping_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    batch = _short_spells(unit_code, today - timedelta(days=100), 3, every_days=20)
    first = await ingestion.ingest(batch)
    again = await ingestion.ingest([*batch, batch[0]])
    assert (first.accepted, first.duplicate) == (3, 0)
    assert (again.accepted, again.duplicate, again.rejected) == (0, 4, [])
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(AbsenceEvent)) == 3
    assert (await summary(time_skipping_env, sessionmaker)).sick_periods == 3


async def test_bad_events_are_rejected_by_position_field_and_reason_and_the_rest_is_taken(
    ingestion: AbsenceIngestion,
    worker: Worker,
    unit_code: str,
    today: date,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    day = today - timedelta(days=200)
    stored = sick("stored", unit_code, day, day + timedelta(days=5))
    await ingestion.ingest([stored])
    batch = [
        sick("bad-pin", unit_code, day, employee_ref="19811218-9875"),
        sick(
            "coord-ok",
            unit_code,
            day + timedelta(days=30),
            day + timedelta(days=31),
            employee_ref="19811278-9873",
        ),
        sick("backwards", unit_code, day + timedelta(days=50), day + timedelta(days=40)),
        sick("extent", unit_code, day + timedelta(days=60), day + timedelta(days=61), extent=30),
        sick("nounit", "NO-SUCH-UNIT", day + timedelta(days=70), day + timedelta(days=71)),
        sick("overlap-stored", unit_code, day + timedelta(days=3), day + timedelta(days=8)),
        sick("ok", unit_code, day + timedelta(days=80), day + timedelta(days=85)),
        sick("overlap-batch", unit_code, day + timedelta(days=84), day + timedelta(days=86)),
        {
            "event_id": "kind",
            "employee_ref": PIN,
            "unit_code": unit_code,
            "kind": "vacation",
            "start": day.isoformat(),
        },
        {
            "event_id": "extra",
            "employee_ref": PIN,
            "unit_code": unit_code,
            "kind": "sick",
            "start": day.isoformat(),
            "diagnosis": "F43.8",
        },
        "not an object",
    ]
    result = await ingestion.ingest(batch)
    assert result.accepted == 2 and result.duplicate == 0
    reasons = {(r.index, r.field): r.reason for r in result.rejected}
    assert reasons == {
        (0, "employee_ref"): "check digit does not match",
        (2, "end"): "the end is before the start",
        (3, "extent"): "Input should be 25, 50, 75 or 100",
        (4, "unit_code"): "no unit with this code is registered",
        (5, "start"): "overlaps another absence of the same employee",
        (7, "start"): "overlaps another absence of the same employee",
        (8, "kind"): "Input should be 'sick', 'care_of_child' or 'other'",
        (9, "diagnosis"): "Extra inputs are not permitted",
        (10, "event"): "Input should be a valid dictionary or instance of AbsenceEventIn",
    }
    text = result.model_dump_json()
    assert "19811218" not in text and "F43" not in text and "NO-SUCH-UNIT" not in text
    async with sessionmaker() as session:
        ids = set((await session.scalars(select(AbsenceEvent.event_id))).all())
    assert ids == {"stored", "coord-ok", "ok"}


async def test_an_ongoing_absence_reported_again_with_its_end_replaces_the_open_one(
    ingestion: AbsenceIngestion,
    worker: Worker,
    unit_code: str,
    today: date,
    time_skipping_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    start = today - timedelta(days=5)
    await ingestion.ingest([sick("open", unit_code, start)])
    closed = await ingestion.ingest([sick("closed", unit_code, start, start + timedelta(days=3))])
    assert closed.accepted == 1
    later = await ingestion.ingest([sick("next", unit_code, start + timedelta(days=20))])
    assert later.accepted == 1, later.rejected
    view = await summary(time_skipping_env, sessionmaker)
    assert view.sick_periods == 2


async def test_a_long_absence_that_ended_over_a_year_ago_opens_nothing(
    ingestion: AbsenceIngestion,
    worker: Worker,
    unit_code: str,
    today: date,
    time_skipping_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    start = today - timedelta(days=500)
    await ingestion.ingest([sick("old", unit_code, start, start + timedelta(days=40))])
    view = await summary(time_skipping_env, sessionmaker)
    assert view.sick_periods == 1 and view.fired == ()
    assert await cases_of(sessionmaker) == []


async def _the_case(
    env: WorkflowEnvironment, sessionmaker: async_sessionmaker[AsyncSession]
) -> WorkflowHandle[Any, Any]:
    """The one case, once its workflow runs: the opener commits the case's row first and
    starts its workflow after, so the row can be read a moment before the workflow exists."""
    await eventually(lambda: _has_cases(sessionmaker, 1), bool)
    (case,) = await cases_of(sessionmaker)
    handle = env.client.get_workflow_handle(case.workflow_id)

    async def started() -> bool:
        try:
            await handle.describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    await eventually(started, bool)
    return handle


async def test_an_expected_end_reported_later_reaches_the_open_case_and_its_plan_deadline(
    ingestion: AbsenceIngestion,
    worker: Worker,
    unit_code: str,
    today: date,
    time_skipping_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    start = today - timedelta(days=20)
    await ingestion.ingest([sick("ongoing", unit_code, start)])
    handle = await _the_case(time_skipping_env, sessionmaker)
    before = await handle.query(RehabCaseWorkflow.deadlines)
    assert "return_to_work_plan" not in {d.kind for d in before.deadlines}
    # The certificate now says 90 days: the employer owes a return-to-work plan by day 30.
    expected_end = start + timedelta(days=90)
    await ingestion.ingest(
        [sick("certified", unit_code, start, expected_end=expected_end.isoformat())]
    )

    async def plan_owed() -> bool:
        view = await handle.query(RehabCaseWorkflow.deadlines)
        return any(d.kind == "return_to_work_plan" for d in view.deadlines)

    await eventually(plan_owed, bool)
    state = await handle.query(RehabCaseWorkflow.state)
    assert state.expected_end == expected_end and state.sick_start == start
    assert len(await cases_of(sessionmaker)) == 1


async def test_a_relapse_in_follow_up_reported_by_absence_data_reopens_the_same_case(
    ingestion: AbsenceIngestion,
    worker: Worker,
    unit_code: str,
    today: date,
    time_skipping_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    env = time_skipping_env
    start = today - timedelta(days=20)
    await ingestion.ingest([sick("ongoing", unit_code, start)])
    handle = await _the_case(env, sessionmaker)
    await through_planning(env, handle)
    await handle.execute_update(
        "record_return_to_work_step",
        RecordReturnToWorkStep(extent=100, from_date=today),
        result_type=CaseActionResult,
    )
    # Payroll reports the spell's end, then new sick leave from today: two days after the
    # last sick day, so the relapse rule continues the sick-pay period.
    await ingestion.ingest([sick("ended", unit_code, start, today - timedelta(days=1))])
    await ingestion.ingest([sick("relapse", unit_code, today)])

    async def relapsed() -> bool:
        return (await handle.query(RehabCaseWorkflow.state)).relapse_count == 1

    await eventually(relapsed, bool)
    state = await handle.query(RehabCaseWorkflow.state)
    assert state.stage == Stage.JOINT_MEETING and state.returned_on is None
    assert len(await cases_of(sessionmaker)) == 1


async def test_absence_news_that_cannot_apply_leaves_the_case_working(
    ingestion: AbsenceIngestion,
    worker: Worker,
    unit_code: str,
    today: date,
    time_skipping_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    start = today - timedelta(days=20)
    await ingestion.ingest([sick("ongoing", unit_code, start)])
    handle = await _the_case(time_skipping_env, sessionmaker)
    # An expected end left over from an earlier sick leave, and news of a start in the future.
    stale = AbsenceNews(
        key="stale", sick_start=start, spell_start=start, expected_end=start - timedelta(days=1)
    )
    future = start + timedelta(days=60)
    early = AbsenceNews(key="future", sick_start=future, spell_start=future)
    await handle.signal(RehabCaseWorkflow.absence_news, stale)
    await handle.signal(RehabCaseWorkflow.absence_news, early)
    good = AbsenceNews(
        key="good", sick_start=start, spell_start=start, expected_end=start + timedelta(days=90)
    )
    await handle.signal(RehabCaseWorkflow.absence_news, good)

    async def applied() -> bool:
        return (await handle.query(RehabCaseWorkflow.state)).expected_end == good.expected_end

    await eventually(applied, bool)
    state = await handle.query(RehabCaseWorkflow.state)
    assert state.sick_start == start and state.stage == Stage.IDENTIFIED


async def test_news_for_an_open_case_whose_workflow_is_gone_does_not_stall_the_monitor(
    ingestion: AbsenceIngestion,
    worker: Worker,
    unit_code: str,
    today: date,
    time_skipping_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    first = today - timedelta(days=60)
    await ingestion.ingest([sick("first", unit_code, first, first + timedelta(days=2))])
    async with sessionmaker.begin() as session:
        pseudonym = await session.scalar(select(Employee.pseudonym))
        # The record says open, but no workflow runs for it (e.g. stopped by operations).
        case_id = uuid.uuid4()
        await insert_case(
            await session.connection(),
            OpenCaseRecord(
                case_id=case_id,
                workflow_id=case_workflow_id(case_id),
                employee_pseudonym=pseudonym,
                unit_code=unit_code,
                trigger=CaseTrigger.MANAGER_CONCERN,
                opened_at=datetime.now(UTC),
            ),
        )
    later = today - timedelta(days=10)
    await ingestion.ingest([sick("later", unit_code, later, later + timedelta(days=2))])
    view = await eventually(
        lambda: summary(time_skipping_env, sessionmaker),
        lambda v: f"period:{later}" in v.fired and not v.busy,
    )
    assert view.sick_periods == 2


# ------------------------------------------------ the monitor's belief about an open case


async def _monitor(
    env: WorkflowEnvironment, sessionmaker: async_sessionmaker[AsyncSession]
) -> WorkflowHandle[Any, Any]:
    async with sessionmaker() as session:
        pseudonym = await session.scalar(select(Employee.pseudonym).limit(1))
    assert pseudonym is not None
    return env.client.get_workflow_handle(monitor_workflow_id(pseudonym))


async def _questions(handle: WorkflowHandle[Any, Any]) -> tuple[int, int]:
    """How often the monitor asked the record store: by activity task, by local activity."""
    history = await handle.fetch_history()
    tasks = sum(1 for e in history.events if e.HasField("activity_task_scheduled_event_attributes"))
    local = sum(
        1
        for e in history.events
        if e.marker_recorded_event_attributes.marker_name == "core_local_activity"
    )
    return tasks, local


async def _activities_asked(handle: WorkflowHandle[Any, Any]) -> int:
    return sum(await _questions(handle))


async def _observed(sessionmaker: async_sessionmaker[AsyncSession]) -> list[tuple[Any, ...]]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(CaseEvent.case_id, CaseEvent.detail).where(CaseEvent.kind == "absence_observed")
        )
        return [(case_id, detail["rule"], detail["observed_on"]) for case_id, detail in rows]


async def test_sick_periods_of_an_employee_without_an_open_case_ask_nothing_and_open_nothing(
    ingestion: AbsenceIngestion,
    worker: Worker,
    unit_code: str,
    today: date,
    time_skipping_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    # Three short sick periods, in two imports: each is news only for an open case.
    first, second, third = (today - timedelta(days=d) for d in (90, 60, 30))
    await ingestion.ingest([sick("a", unit_code, first, first + timedelta(days=2))])
    await ingestion.ingest(
        [
            sick("b", unit_code, second, second + timedelta(days=1)),
            sick("c", unit_code, third, third + timedelta(days=3)),
        ]
    )
    view = await eventually(
        lambda: summary(time_skipping_env, sessionmaker),
        lambda v: v.last_event_id == "c" and not v.busy,
    )
    assert view.sick_periods == 3 and f"period:{third}" in view.fired
    assert await cases_of(sessionmaker) == []
    assert await _observed(sessionmaker) == []
    # The monitor knew there was no case to tell: not one question to the record store.
    assert await _activities_asked(await _monitor(time_skipping_env, sessionmaker)) == 0


async def test_a_monitor_opens_a_case_in_the_workflow_task_that_saw_the_sick_leave(
    ingestion: AbsenceIngestion,
    worker: Worker,
    unit_code: str,
    today: date,
    time_skipping_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    # A late import of a long absence: the case is due at once.
    await ingestion.ingest([sick("long", unit_code, today - timedelta(days=20))])
    await eventually(lambda: _has_cases(sessionmaker, 1), bool)
    monitor = await _monitor(time_skipping_env, sessionmaker)
    await summary(time_skipping_env, sessionmaker)
    # One question, asked by a local activity: no activity task waited in the queue.
    assert await _questions(monitor) == (0, 1)
    (case,) = await cases_of(sessionmaker)
    started = (await monitor.describe()).start_time
    assert case.opened_at >= started  # dated within the monitor's run, not before it
    # A rule fired and a case opened: the paths behind every one of the monitor's patches.
    # Its input says which patches it was started with; none is asked of its history, so
    # no marker and no TemporalChangeVersion upsert (a visibility write per monitor).
    events = (await monitor.fetch_history()).events
    markers = {e.marker_recorded_event_attributes.marker_name for e in events}
    assert "core_patch" not in markers
    assert not [
        e for e in events if e.HasField("upsert_workflow_search_attributes_event_attributes")
    ]
    # The sick period that led to the case is on its timeline, but not signalled to it as
    # news: the case was opened with those dates.
    async with sessionmaker() as session:
        observed = await session.scalars(
            select(CaseEvent.detail).where(
                CaseEvent.case_id == case.id, CaseEvent.kind == "absence_observed"
            )
        )
        assert [d["rule"] for d in observed] == ["sick_period"]
    case_events = (
        await time_skipping_env.client.get_workflow_handle(case.workflow_id).fetch_history()
    ).events
    assert not [
        e for e in case_events if e.HasField("workflow_execution_signaled_event_attributes")
    ]


async def test_a_monitor_started_before_its_patches_has_them_all_after_continue_as_new(
    worker: Worker,
    unit_code: str,
    today: date,
    time_skipping_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    client = time_skipping_env.client
    employee = uuid.uuid4()
    async with sessionmaker.begin() as session:
        session.add(Employee(pseudonym=employee, unit_code=unit_code))
    # Started as older code started monitors: no patch level in its input.
    handle = await client.start_workflow(
        AbsenceMonitorWorkflow.run,
        MonitorInput(state=MonitorState(employee_pseudonym=employee, unit_code=unit_code)),
        id=monitor_workflow_id(employee),
        task_queue=worker.task_queue,
    )
    first_run = handle.first_execution_run_id
    old, long_start = today - timedelta(days=300), today - timedelta(days=20)
    for _ in range(MAX_BATCHES_PER_RUN):
        await handle.signal(
            AbsenceMonitorWorkflow.record_absences,
            AbsenceBatch(
                unit_code=unit_code,
                records=(AbsenceRecord(event_id="old", kind="sick", start=old, end=old),),
            ),
        )

    async def run_id() -> str | None:
        return (await handle.describe()).run_id

    later = await eventually(run_id, lambda run: run != first_run)
    # A long absence in the new run: a rule fires and a case opens.
    await handle.signal(
        AbsenceMonitorWorkflow.record_absences,
        AbsenceBatch(
            unit_code=unit_code,
            records=(AbsenceRecord(event_id="long", kind="sick", start=long_start),),
        ),
    )
    await eventually(lambda: _has_cases(sessionmaker, 1), bool)
    new_run = client.get_workflow_handle(handle.id, run_id=later)
    await eventually(
        lambda: query_with_retry(new_run, AbsenceMonitorWorkflow.summary),
        lambda view: not view.busy and any(k.startswith("long_absence") for k in view.fired),
    )
    events = (await new_run.fetch_history()).events
    # Continued by today's code, the new run has every patch: none is asked of its history.
    markers = {e.marker_recorded_event_attributes.marker_name for e in events}
    assert "core_local_activity" in markers and "core_patch" not in markers


async def test_the_opener_writes_the_deadlines_a_late_import_finds_passed_with_the_opening(
    ingestion: AbsenceIngestion,
    worker: Worker,
    unit_code: str,
    today: date,
    time_skipping_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    # Sick for a hundred days before the import: two deadlines passed, each overdue and
    # escalated, all found when the case opened.
    await ingestion.ingest([sick("long", unit_code, today - timedelta(days=100))])
    case = await _the_case(time_skipping_env, sessionmaker)

    async def deadline_steps() -> list[str]:
        async with sessionmaker() as session:
            kinds = await session.scalars(
                select(CaseEvent.kind).where(CaseEvent.kind.startswith("deadline_"))
            )
            return sorted(kinds)

    steps = await eventually(deadline_steps, lambda found: len(found) == 4)
    assert steps == ["deadline_escalation"] * 2 + ["deadline_overdue"] * 2
    # The opener wrote all four with the opening, and started the case overdue: its first
    # workflow task wrote nothing and upserted nothing.
    events = (await case.fetch_history()).events
    assert not [e for e in events if e.HasField("marker_recorded_event_attributes")]
    assert not [
        e for e in events if e.HasField("upsert_workflow_search_attributes_event_attributes")
    ]
    assert (await case.describe()).typed_search_attributes.get(REHAB_OVERDUE) is True
    assert (await case.query(RehabCaseWorkflow.state)).overdue


async def test_a_new_sick_period_still_reaches_the_open_case(
    ingestion: AbsenceIngestion,
    worker: Worker,
    unit_code: str,
    today: date,
    time_skipping_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    long_start = today - timedelta(days=80)
    await ingestion.ingest([sick("long", unit_code, long_start, today - timedelta(days=40))])
    await eventually(lambda: _has_cases(sessionmaker, 1), bool)
    (case,) = await cases_of(sessionmaker)
    later = today - timedelta(days=10)
    await ingestion.ingest([sick("later", unit_code, later, later + timedelta(days=2))])

    observed = await eventually(
        lambda: _observed(sessionmaker),
        lambda rows: (case.id, "sick_period", later.isoformat()) in rows,
    )
    assert len(await cases_of(sessionmaker)) == 1 and len(observed) >= 1


async def test_a_monitor_whose_case_closed_opens_a_new_case_on_the_next_rule(
    ingestion: AbsenceIngestion,
    worker: Worker,
    unit_code: str,
    today: date,
    time_skipping_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await ingestion.ingest(
        [sick("long", unit_code, today - timedelta(days=200), today - timedelta(days=170))]
    )
    first = await _the_case(time_skipping_env, sessionmaker)
    # The coordinator closes the case; the monitor is not told.
    await first.execute_update(
        "close_case", CloseCase(outcome=CaseOutcome.NOT_RETURNED), result_type=CaseActionResult
    )

    async def closed() -> bool:
        return all(c.closed_at is not None for c in await cases_of(sessionmaker))

    await eventually(closed, bool)
    # A short period: news for the case the monitor believed open, which is gone.
    short = today - timedelta(days=100)
    await ingestion.ingest([sick("short", unit_code, short, short + timedelta(days=1))])
    await eventually(
        lambda: summary(time_skipping_env, sessionmaker),
        lambda v: f"period:{short}" in v.fired and not v.busy,
    )
    assert len(await cases_of(sessionmaker)) == 1
    # Then a long absence past day 15: the rule opens a new case.
    again = today - timedelta(days=20)
    await ingestion.ingest([sick("again", unit_code, again)])
    await eventually(lambda: _has_cases(sessionmaker, 2), bool)
    reopened = [c for c in await cases_of(sessionmaker) if c.closed_at is None]
    assert [c.trigger for c in reopened] == ["long_absence"]


async def test_a_sick_period_after_a_referral_reaches_the_case_the_referral_opened(
    ingestion: AbsenceIngestion,
    worker: Worker,
    unit_code: str,
    today: date,
    time_skipping_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    first = today - timedelta(days=60)
    await ingestion.ingest([sick("first", unit_code, first, first + timedelta(days=1))])
    await eventually(
        lambda: summary(time_skipping_env, sessionmaker),
        lambda v: v.last_event_id == "first" and not v.busy,
    )
    # The monitor knew of no open case; a manager's referral opens one through it.
    monitor = await _monitor(time_skipping_env, sessionmaker)
    referral = CaseReferral(
        case_id=uuid.uuid4(),
        unit_code=unit_code,
        trigger=CaseTrigger.MANAGER_CONCERN,
        opened_at=await time_skipping_env.get_current_time(),
    )
    assert (await monitor.execute_update(AbsenceMonitorWorkflow.open_case, referral)).opened
    later = today - timedelta(days=10)
    await ingestion.ingest([sick("later", unit_code, later, later + timedelta(days=2))])

    await eventually(
        lambda: _observed(sessionmaker),
        lambda rows: (referral.case_id, "sick_period", later.isoformat()) in rows,
    )
    assert [c.id for c in await cases_of(sessionmaker)] == [referral.case_id]


async def test_a_monitor_with_a_case_due_goes_first_then_sick_leave_now_then_history(
    dev_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
    test_secrets: Secrets,
    task_queue: str,
    unit_code: str,
) -> None:
    # The dev server keeps a workflow's priority; no worker is needed to see it.
    today = local_date(await dev_env.get_current_time())
    ingestion = AbsenceIngestion(
        sessionmaker,
        dev_env.client,
        IdentityProtector(
            KeyRing.from_config(test_secrets.pin_encryption_keys), test_secrets.pin_lookup_key
        ),
        task_queue,
        today=lambda: today,
    )
    old = today - timedelta(days=200)
    await ingestion.ingest(
        [
            # Past the long-absence day (15), going on: a case opens on this wake-up.
            sick("due", unit_code, today - timedelta(days=20)),
            sick("now", unit_code, today - timedelta(days=3), employee_ref=THIRD_PIN),
            sick("then", unit_code, old, old + timedelta(days=2), employee_ref=OTHER_PIN),
        ]
    )
    async with sessionmaker() as session:
        rows = await session.execute(select(AbsenceEvent.event_id, AbsenceEvent.employee_pseudonym))
        monitors = {event_id: monitor_workflow_id(p) for event_id, p in rows.all()}
    priority = {}
    for event_id, workflow_id in monitors.items():
        handle = dev_env.client.get_workflow_handle(workflow_id)
        priority[event_id] = (await handle.describe()).raw_info.priority.priority_key
        await handle.terminate("seen")
    # 0: the server's default (3).
    assert priority == {
        "due": CASE_DUE_PRIORITY.priority_key,
        "now": SICK_NOW_PRIORITY.priority_key,
        "then": 0,
    }

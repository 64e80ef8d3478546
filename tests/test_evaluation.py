"""The evaluation report on a synthetic workforce with seeded outcomes: every measure equals
what is counted here by hand, small cells are suppressed, the protected track never shows,
every run is audited, and the analyst reads aggregates only."""

from __future__ import annotations

import calendar
import statistics
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from activities.records import CaseRecords
from api.auth import EmbeddedIssuer
from core.codec import KeyRing
from core.identity import IdentityProtector, parse_personnummer
from core.secrets import Secrets
from evaluation.facts import ProgrammeFacts
from evaluation.report import build_report
from ingestion.synthetic import workforce
from models.api import Role
from models.case import ErasureRequest
from models.deadlines import STOCKHOLM
from models.reports import Report
from store.audit import audit_rows
from store.employees import pseudonym_for
from store.evaluation import case_facts
from store.schema import (
    Case,
    CaseDeadline,
    CaseEvent,
    CaseInformationRequest,
    CaseIntervention,
    Employee,
    Meeting,
    Unit,
    ViolenceDisclosure,
)
from tests.conftest import bearer, cloned_database

BASE = date(2026, 1, 5)
FIRST, LAST = date(2026, 1, 1), date(2026, 10, 31)
CASES = 60
CHANGE_ON = date(2026, 2, 15)


def at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=STOCKHOLM).astimezone(UTC)


@dataclass(frozen=True)
class Seeded:
    """The seeded outcome of case i: the rules the hand counts below follow."""

    i: int
    unit: str
    sex: str
    birth_year: int

    @property
    def sick_start(self) -> date:
        return BASE + timedelta(days=self.i)

    @property
    def identified_after(self) -> int:
        return 20 if self.i % 3 == 0 else 14

    @property
    def opened_on(self) -> date:
        return self.sick_start + timedelta(days=self.identified_after)

    @property
    def meeting_on(self) -> date:
        return self.opened_on + timedelta(days=7 if self.i % 2 == 0 else 21)

    @property
    def plan_on(self) -> date:
        return self.meeting_on + timedelta(days=10)

    @property
    def plan_deadline(self) -> str:
        return {0: "on_time", 1: "on_time", 2: "on_time", 3: "late", 4: "missed"}[self.i % 5]

    @property
    def full_return_on(self) -> date | None:
        if self.i % 2 == 0:
            return self.sick_start + timedelta(days=60)
        if self.i % 6 == 1:
            return self.sick_start + timedelta(days=120)
        return None

    @property
    def relapses(self) -> bool:
        return self.i % 4 == 0

    @property
    def reinforced(self) -> bool:
        return self.i % 4 == 0

    @property
    def intervention_outcome(self) -> str:
        return ("achieved", "partly_achieved", "cancelled")[self.i % 3]

    @property
    def answer_after(self) -> int:
        return 7 if self.i % 2 == 0 else 10


async def _seed(
    sessionmaker: async_sessionmaker[AsyncSession], identity: IdentityProtector
) -> list[Seeded]:
    staff = workforce(CASES + 20, seed=16)
    seeded: list[Seeded] = []
    async with sessionmaker.begin() as session:
        for unit in sorted({e.unit_code for e in staff}):
            session.add(Unit(code=unit, name=f"Synthetic {unit}"))
        await session.flush()
        for i, person in enumerate(staff[:CASES]):
            pin = parse_personnummer(person.personal_identity_number, today=date(2026, 11, 30))
            # The real intake path: the pseudonym, and sex and birth year coded beside it.
            pseudonym = await pseudonym_for(session, identity, pin, person.unit_code)
            case = Seeded(i, person.unit_code, pin.legal_sex, pin.birth_date.year)
            seeded.append(case)
            await _add_case(session, case, pseudonym)
    return seeded


async def _add_case(session: AsyncSession, s: Seeded, pseudonym: uuid.UUID) -> None:
    case_id = uuid.uuid4()
    wf = f"case-{case_id}"
    full = s.full_return_on
    last_stage = "return_to_work" if full else "interventions"
    session.add(
        Case(
            id=case_id,
            workflow_id=wf,
            employee_pseudonym=pseudonym,
            unit_code=s.unit,
            trigger="long_absence",
            stage=last_stage,
            sick_start=s.sick_start,
            opened_at=at(s.opened_on, 0),
        )
    )
    await session.flush()
    events: list[tuple[str, str, datetime, dict[str, Any]]] = [
        ("case_opened", "identified", at(s.opened_on, 0), {}),
        ("joint_meeting_booked", "joint_meeting", at(s.opened_on + timedelta(days=1)), {}),
        ("joint_meeting_held", "screening", at(s.meeting_on, 11), {}),
        ("screening_recorded", "planning", at(s.meeting_on + timedelta(days=3)), {}),
        ("plan_set", "interventions", at(s.plan_on), {}),
    ]
    if full:
        detail = {"extent": 100, "from_date": full.isoformat()}
        events.append(("return_to_work_step", "return_to_work", at(full), detail))
        if s.relapses:
            events.append(("relapse_reported", "joint_meeting", at(full + timedelta(days=30)), {}))
    for n, (kind, stage, occurred_at, detail) in enumerate(events):
        session.add(
            CaseEvent(
                case_id=case_id,
                workflow_id=wf,
                step_key=f"{n:05d}-{kind}",
                kind=kind,
                stage=stage,
                occurred_at=occurred_at,
                detail=detail,
            )
        )
    due = s.sick_start + timedelta(days=29)
    met_on = {"on_time": due - timedelta(days=2), "late": due + timedelta(days=3)}.get(
        s.plan_deadline
    )
    session.add(
        CaseDeadline(
            case_id=case_id,
            kind="return_to_work_plan",
            due_on=due,
            status="overdue" if s.plan_deadline == "missed" else "met",
            met_on=met_on,
        )
    )
    meeting_id = uuid.uuid4()
    session.add(
        Meeting(
            id=meeting_id,
            case_id=case_id,
            workflow_id=wf,
            step_key="meeting",
            starts_at=at(s.meeting_on, 9),
            ends_at=at(s.meeting_on, 10),
            status="held",
            reinforced_support=s.reinforced,
        )
    )
    outcome = s.intervention_outcome
    session.add(
        CaseIntervention(
            id=uuid.uuid4(),
            case_id=case_id,
            workflow_id=f"intervention-{uuid.uuid4()}",
            track="work_oriented",
            kind="work_adaptation",
            owner="manager",
            due_on=s.plan_on + timedelta(days=30),
            status="cancelled" if outcome == "cancelled" else "completed",
            outcome=None if outcome == "cancelled" else outcome,
            assigned_at=at(s.plan_on),
        )
    )
    session.add(
        CaseInformationRequest(
            id=uuid.uuid4(),
            case_id=case_id,
            workflow_id=f"information-request-{uuid.uuid4()}",
            party="healthcare",
            due_on=s.meeting_on + timedelta(days=14),
            status="answered",
            requested_at=at(s.meeting_on, 12),
            received_on=s.meeting_on + timedelta(days=s.answer_after),
        )
    )
    if s.i < 6:
        # The protected track: a disclosure and its safety support. Never in a breakdown.
        await session.flush()
        session.add(
            ViolenceDisclosure(
                case_id=case_id,
                workflow_id=wf,
                step_key="disclosure",
                disclosed_at=at(s.meeting_on),
            )
        )
        session.add(
            CaseIntervention(
                id=uuid.uuid4(),
                case_id=case_id,
                workflow_id=f"intervention-{uuid.uuid4()}",
                track="social",
                kind="safety_support",
                owner="coordinator",
                due_on=s.meeting_on + timedelta(days=7),
                status="completed",
                outcome="achieved",
                assigned_at=at(s.meeting_on),
                protected=True,
            )
        )


def _identity(test_secrets: Secrets) -> IdentityProtector:
    return IdentityProtector(
        KeyRing.from_config(test_secrets.pin_encryption_keys), test_secrets.pin_lookup_key
    )


@dataclass(frozen=True)
class World:
    seeded: list[Seeded]
    report: Report
    employees: list[tuple[str | None, int | None]]


@pytest_asyncio.fixture(scope="module")
async def world(
    pg_server_url: str, template_url: str, test_secrets: Secrets
) -> AsyncIterator[World]:
    """One seeded database and its report for the module's read-only checks."""
    async with cloned_database(pg_server_url) as url:
        engine = create_async_engine(url)
        sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        try:
            seeded = await _seed(sessionmaker, _identity(test_secrets))
            async with sessionmaker() as session:
                facts = await case_facts(session, FIRST, LAST)
                employees = [
                    (e.sex, e.birth_year) for e in (await session.scalars(select(Employee))).all()
                ]
        finally:
            await engine.dispose()
    report = build_report(
        facts,
        ProgrammeFacts(),
        first=FIRST,
        last=LAST,
        today=date(2026, 11, 30),
        change_on=CHANGE_ON,
    )
    yield World(seeded, report, employees)


@pytest.fixture
def seeded(world: World) -> list[Seeded]:
    return world.seeded


@pytest.fixture
def report(world: World) -> Report:
    return world.report


def _six_months_after(day: date) -> date:
    month = day.month + 6
    year, month = day.year + (month - 1) // 12, (month - 1) % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _row(report: Report, key: str, row: str) -> dict[str, int | None]:
    table = report.table(key)
    return dict(zip(table.cols, table.counts[table.rows.index(row)], strict=True))


def _values(report: Report, key: str, row: str) -> dict[str, float | None]:
    table = report.table(key)
    assert table.values is not None
    return dict(zip(table.cols, table.values[table.rows.index(row)], strict=True))


async def test_intake_codes_sex_and_birth_year_in_postgres(world: World) -> None:
    assert Counter(world.employees) == Counter((s.sex, s.birth_year) for s in world.seeded)
    assert {sex for sex, _ in world.employees} == {"F", "M"}


async def test_deadline_compliance_per_unit_equals_the_hand_count(
    seeded: list[Seeded], report: Report
) -> None:
    for unit in sorted({s.unit for s in seeded}):
        expected = Counter(s.plan_deadline for s in seeded if s.unit == unit)
        shown = _row(report, "deadline_return_to_work_plan_by_unit", unit)
        assert shown == {
            "on_time": expected["on_time"],
            "late": expected["late"],
            "missed": expected["missed"],
            "all": sum(expected.values()),
        }


async def test_time_to_each_step_equals_the_hand_medians(
    seeded: list[Seeded], report: Report
) -> None:
    for unit in sorted({s.unit for s in seeded}):
        mine = [s for s in seeded if s.unit == unit]
        assert _values(report, "days_to_identification_by_unit_month", unit)["all"] == (
            statistics.median(s.identified_after for s in mine)
        )
        assert _values(report, "days_to_joint_meeting_by_unit_month", unit)["all"] == (
            statistics.median((s.meeting_on - s.sick_start).days for s in mine)
        )
        assert _values(report, "days_to_plan_by_unit_month", unit)["all"] == (
            statistics.median((s.plan_on - s.sick_start).days for s in mine)
        )
    # By month of identification, too: January's cases are those opened in January.
    january = [s for s in seeded if s.opened_on.month == 1]
    assert _row(report, "days_to_identification_by_unit_month", "all")["2026-01"] == len(january)


async def test_time_in_each_stage_equals_the_hand_medians(
    seeded: list[Seeded], report: Report
) -> None:
    expected = {
        "identified": [1] * len(seeded),
        "joint_meeting": [(s.meeting_on - s.opened_on).days - 1 for s in seeded],
        "screening": [3] * len(seeded),
        "planning": [(s.plan_on - s.meeting_on).days - 3 for s in seeded],
        "interventions": [(s.full_return_on - s.plan_on).days for s in seeded if s.full_return_on],
    }
    for stage, days in expected.items():
        assert _values(report, "time_in_stage", stage)["all"] == statistics.median(days), stage
        assert _row(report, "time_in_stage", stage)["all"] == len(days)


async def test_return_to_work_within_90_and_180_days_is_the_kaplan_meier_share(
    seeded: list[Seeded], report: Report
) -> None:
    # Everyone without a return is followed for more than 180 days, so no one is censored
    # before day 180 and Kaplan-Meier is the plain share.
    full = next(r for r in report.return_to_work if r.extent == "full")
    returned = [s.full_return_on - s.sick_start for s in seeded if s.full_return_on]
    assert full.within_days[90] == round(sum(d.days <= 90 for d in returned) / len(seeded), 3)
    assert full.within_days[180] == round(sum(d.days <= 180 for d in returned) / len(seeded), 3)

    # By sex only when each sex has 5 people, and 0 or 5 or more of them back at work.
    def shown(sex: str) -> bool:
        people = [s for s in seeded if s.sex == sex]
        back = sum(s.full_return_on is not None for s in people)
        return len(people) >= 5 and not 0 < back < 5

    groups = {c.group: c.people for c in full.curves}
    if shown("F") and shown("M"):
        assert groups == {
            "all": len(seeded),
            "women": sum(s.sex == "F" for s in seeded),
            "men": sum(s.sex == "M" for s in seeded),
        }
    else:
        assert groups == {"all": len(seeded)}


async def test_relapse_reinforced_support_interventions_and_requests_equal_hand_counts(
    seeded: list[Seeded], report: Report
) -> None:
    # Known only once the follow-up window (six months after the full return) has ended,
    # or when the relapse came.
    known = [
        s
        for s in seeded
        if s.full_return_on and (s.relapses or _six_months_after(s.full_return_on) <= LAST)
    ]
    assert _row(report, "relapse_by_sex", "all") == {
        "relapsed": sum(s.relapses for s in known),
        "no_relapse": sum(not s.relapses for s in known),
        "all": len(known),
    }
    assert _row(report, "reinforced_support_by_month", "all") == {
        "reinforced": sum(s.reinforced for s in seeded),
        "ordinary": sum(not s.reinforced for s in seeded),
        "all": len(seeded),
    }
    outcomes = Counter(s.intervention_outcome for s in seeded)
    assert _row(report, "interventions", "work_oriented/work_adaptation") == {
        "achieved": outcomes["achieved"],
        "partly_achieved": outcomes["partly_achieved"],
        "cancelled": outcomes["cancelled"],
        "all": len(seeded),
    }
    assert _values(report, "information_turnaround", "healthcare")["all"] == statistics.median(
        s.answer_after for s in seeded
    )
    assert _row(report, "information_requests", "healthcare")["on_time"] == len(seeded)


async def test_the_protected_track_appears_in_no_breakdown(report: Report) -> None:
    published = report.model_dump_json(exclude={"notes"})
    assert "safety_support" not in published
    assert "violence" not in published
    interventions = report.table("interventions")
    assert interventions.rows == ["work_oriented/work_adaptation", "all"]


async def test_no_published_cell_counts_fewer_than_five_people(report: Report) -> None:
    suppressed = 0
    for table in report.tables:
        for row in table.counts:
            for count in row:
                if count is None:
                    suppressed += 1
                else:
                    # Each case here is one person, so a count is a number of people.
                    assert count >= 5, table.key
    # The seeded months and age bands do make small cells: they are there, and hidden.
    assert suppressed > 0


async def test_comparison_before_and_after_a_date_shows_the_difference_with_an_interval(
    seeded: list[Seeded], report: Report
) -> None:
    comparison = next(c for c in report.comparisons if c.key == "before_after_plan_on_time")
    before = [s.plan_deadline == "on_time" for s in seeded if s.opened_on < CHANGE_ON]
    after = [s.plan_deadline == "on_time" for s in seeded if s.opened_on >= CHANGE_ON]
    difference = sum(after) / len(after) - sum(before) / len(before)
    assert comparison.difference == round(difference, 3)
    assert comparison.lower is not None and comparison.upper is not None
    assert comparison.lower <= comparison.difference <= comparison.upper
    assert comparison.lower < comparison.upper


async def test_routine_gaps_rank_units_by_late_or_missed_deadlines(
    seeded: list[Seeded], report: Report
) -> None:
    shares = {}
    for unit in sorted({s.unit for s in seeded}):
        mine = [s for s in seeded if s.unit == unit]
        shares[unit] = round(sum(s.plan_deadline != "on_time" for s in mine) / len(mine), 3)
    ranked = [(g.unit, g.missed_share) for g in report.deadline_gaps]
    assert ranked == sorted(shares.items(), key=lambda kv: (-kv[1], kv[0]))
    medians = {
        "identified": 1,
        "joint_meeting": statistics.median((s.meeting_on - s.opened_on).days - 1 for s in seeded),
        "screening": 3,
        "planning": 7,
        "interventions": statistics.median(
            (s.full_return_on - s.plan_on).days for s in seeded if s.full_return_on
        ),
        # Only the relapses leave return_to_work in the period: 30 days after the return.
        "return_to_work": 30,
    }
    assert [(s.stage, s.median_days) for s in report.stage_stalls] == sorted(
        medians.items(), key=lambda kv: -kv[1]
    )


@pytest.mark.parametrize("role", [Role.COORDINATOR, Role.MANAGER, Role.ADMIN])
async def test_only_the_analyst_role_runs_reports(
    api: httpx.AsyncClient, issuer: EmbeddedIssuer, role: Role
) -> None:
    token = issuer.mint(role, subject=f"{role.value}-1", units=["DEMO-000"])
    response = await api.get(
        "/api/v1/reports/evaluation",
        params={"from": "2026-01-01", "to": "2026-10-31"},
        headers=bearer(token),
    )
    assert response.status_code == 403


async def test_an_analyst_report_run_is_audited_and_bad_periods_are_422(
    api: httpx.AsyncClient,
    issuer: EmbeddedIssuer,
    sessionmaker: async_sessionmaker[AsyncSession],
    test_secrets: Secrets,
) -> None:
    await _seed(sessionmaker, _identity(test_secrets))
    headers = bearer(issuer.mint(Role.ANALYST, subject="analyst-1"))
    response = await api.get(
        "/api/v1/reports/evaluation",
        params={"from": FIRST.isoformat(), "to": LAST.isoformat()},
        headers=headers,
    )
    assert response.status_code == 200
    assert Report.model_validate(response.json()).cases == CASES
    async with sessionmaker() as session:
        rows = await audit_rows(session)
    assert [(r.subject, r.role, r.what, r.case_id) for r in rows] == [
        ("analyst-1", "analyst", f"report.run:{FIRST}:{LAST}", None)
    ]
    page = await api.get(
        "/api/v1/reports/evaluation.html",
        params={"from": FIRST.isoformat(), "to": LAST.isoformat()},
        headers=headers,
    )
    assert page.status_code == 200
    assert "<svg" in page.text and "<script" not in page.text and "src=" not in page.text
    backwards = await api.get(
        "/api/v1/reports/evaluation",
        params={"from": "2026-10-31", "to": "2026-01-01"},
        headers=headers,
    )
    assert backwards.status_code == 422
    assert backwards.json()["detail"][0]["field"] == "to"


async def test_erasure_takes_the_coded_sex_and_birth_year_with_the_number(
    sessionmaker: async_sessionmaker[AsyncSession], test_secrets: Secrets
) -> None:
    await _seed(sessionmaker, _identity(test_secrets))
    async with sessionmaker() as session:
        case = (await session.scalars(select(Case).limit(1))).one()
    await CaseRecords(sessionmaker).erase_personal_data(
        ErasureRequest(
            case_id=case.id,
            workflow_id=case.workflow_id,
            employee_pseudonym=case.employee_pseudonym,
            step_key="99999-personal_data_erased",
            occurred_at=at(LAST),
        )
    )
    async with sessionmaker() as session:
        employee = await session.get(Employee, case.employee_pseudonym)
        others = (await session.scalars(select(Employee.sex))).all()
    assert employee is not None
    assert (employee.sex, employee.birth_year, employee.pin_lookup) == (None, None, None)
    assert sum(sex is None for sex in others) == 1

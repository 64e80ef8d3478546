"""`starter.py demo`: a synthetic workforce's year of absences, through the running API.

Creates the workforce's units with a manager and a coordinator contact each, posts a year
of absence events as the HR system would (the `hr_system` token, batches of up to 1,000),
waits until the absence monitors have opened what the policy says, and reports the cases
by trigger. Run it twice and the second run is all duplicates: event ids are stable.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import date

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from ingestion.absences import MAX_BATCH
from ingestion.synthetic import SyntheticEmployee, unit_codes, workforce, year_of_absences
from models.absence import monitor_workflow_id
from store.contacts import add_unit_contact
from store.schema import Case, Employee, Unit
from workflows.absence_monitor import AbsenceMonitorWorkflow

# Reserved for documentation (RFC 2606): the demo's mail never leaves the machine's maildir.
_DEMO_MAIL_DOMAIN = "demo.invalid"


@dataclass
class DemoSummary:
    employees: int
    women: int
    units: int
    events: int
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    cases_by_trigger: dict[str, int] = field(default_factory=dict)

    @property
    def cases(self) -> int:
        return sum(self.cases_by_trigger.values())


def is_woman(employee: SyntheticEmployee) -> bool:
    """The second-to-last digit of a personal identity number is even for women."""
    return int(employee.personal_identity_number[-2]) % 2 == 0


async def create_units(sessionmaker: async_sessionmaker[AsyncSession], codes: list[str]) -> None:
    """The units, each with a manager and a coordinator who receive its notifications."""
    async with sessionmaker.begin() as session:
        await session.execute(
            insert(Unit)
            .values([{"code": code, "name": f"Demo unit {code}"} for code in codes])
            .on_conflict_do_nothing()
        )
        for code in codes:
            for role in ("manager", "coordinator"):
                await add_unit_contact(
                    session,
                    unit_code=code,
                    role=role,
                    channel="email",
                    address=f"{role}.{code.lower()}@{_DEMO_MAIL_DOMAIN}",
                )


async def cases_by_trigger(
    sessionmaker: async_sessionmaker[AsyncSession], codes: list[str]
) -> dict[str, int]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Case.trigger, func.count())
            .where(Case.unit_code.in_(codes))
            .group_by(Case.trigger)
            .order_by(Case.trigger)
        )
        return {trigger: count for trigger, count in rows.all()}


async def run_demo(
    api: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    hr_token: str,
    employees: int,
    today: date,
    console: Console,
    *,
    temporal: Client,
    timeout_seconds: float = 900.0,
) -> DemoSummary:
    staff = workforce(employees)
    codes = unit_codes(staff)
    events = list(year_of_absences(staff, today))
    summary = DemoSummary(
        employees=len(staff),
        women=sum(is_woman(e) for e in staff),
        units=len(codes),
        events=len(events),
    )
    await create_units(sessionmaker, codes)
    console.print(
        f"{summary.employees} employees ({100 * summary.women / summary.employees:.0f} % women) "
        f"in {summary.units} units; posting {summary.events} absence events of the past year"
    )
    headers = {"Authorization": f"Bearer {hr_token}"}
    for start in range(0, len(events), MAX_BATCH):
        response = await api.post(
            "/api/v1/absence-events",
            json={"events": events[start : start + MAX_BATCH]},
            headers=headers,
        )
        if response.status_code != 202:
            raise DemoFailed(f"the API answered {response.status_code}: {response.text[:200]}")
        counts = response.json()
        summary.accepted += counts["accepted"]
        summary.duplicate += counts["duplicate"]
        summary.rejected += len(counts["rejected"])

    # The monitors open cases asynchronously: wait until none has work left.
    await monitors_idle(temporal, sessionmaker, codes, timeout_seconds)
    seen = await cases_by_trigger(sessionmaker, codes)
    summary.cases_by_trigger = seen
    _report(summary, console)
    return summary


async def monitors_idle(
    temporal: Client,
    sessionmaker: async_sessionmaker[AsyncSession],
    codes: list[str],
    timeout_seconds: float,
) -> None:
    """Until every monitor of the units has applied its events and opened or told its case."""
    async with sessionmaker() as session:
        pseudonyms = list(
            (
                await session.scalars(
                    select(Employee.pseudonym).where(Employee.unit_code.in_(codes))
                )
            ).all()
        )
    gate = asyncio.Semaphore(32)

    async def busy(pseudonym: uuid.UUID) -> bool:
        async with gate:
            handle = temporal.get_workflow_handle_for(
                AbsenceMonitorWorkflow.run, monitor_workflow_id(pseudonym)
            )
            try:
                return (await handle.query(AbsenceMonitorWorkflow.summary)).busy
            except RPCError as exc:
                if exc.status is RPCStatusCode.NOT_FOUND:
                    return False  # no sick leave ever reported: no monitor
                raise

    deadline = time.monotonic() + timeout_seconds
    while pseudonyms:
        states = await asyncio.gather(*(busy(p) for p in pseudonyms))
        pseudonyms = [p for p, is_busy in zip(pseudonyms, states, strict=True) if is_busy]
        if pseudonyms and time.monotonic() > deadline:
            raise DemoFailed(f"{len(pseudonyms)} monitors still busy after {timeout_seconds:.0f} s")
        if pseudonyms:
            await asyncio.sleep(0.5)


class DemoFailed(RuntimeError):
    """The API refused the demo's events (not running, wrong token, ...)."""


def _report(summary: DemoSummary, console: Console) -> None:
    console.print(
        f"events accepted {summary.accepted}, duplicate {summary.duplicate}, "
        f"rejected {summary.rejected}"
    )
    table = Table(title="cases opened by early identification")
    table.add_column("trigger")
    table.add_column("cases", justify="right")
    for trigger, count in summary.cases_by_trigger.items():
        table.add_row(trigger, str(count))
    table.add_row("all", str(summary.cases), style="bold")
    console.print(table)

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
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from core.temporal import is_transient, query_with_retry
from ingestion.absences import MAX_BATCH
from ingestion.synthetic import SyntheticEmployee, unit_codes, workforce, year_of_absences
from models.absence import monitor_workflow_id
from store.contacts import add_unit_contact
from store.schema import Case, Employee, Unit
from workflows.absence_monitor import AbsenceMonitorWorkflow

# Reserved for documentation (RFC 2606): the demo's mail never leaves the machine's maildir.
_DEMO_MAIL_DOMAIN = "demo.invalid"
# Queries in flight at once while waiting for the monitors: a flood of them is what makes a
# busy worker answer too late ("query deadline exceeded").
_QUERY_CONCURRENCY = 8
_POST_ATTEMPTS = 3


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
    stall_seconds: float = 300.0,
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
    await _post_events(api, hr_token, events, summary, console)

    # The monitors open cases asynchronously: wait until none has work left.
    console.print("waiting for the absence monitors to open the cases")
    await monitors_idle(temporal, sessionmaker, codes, console, stall_seconds=stall_seconds)
    seen = await cases_by_trigger(sessionmaker, codes)
    summary.cases_by_trigger = seen
    _report(summary, console)
    return summary


async def _post_events(
    api: httpx.AsyncClient,
    hr_token: str,
    events: list[dict[str, Any]],
    summary: DemoSummary,
    console: Console,
) -> None:
    """Post the events in batches as the HR system would, showing how many are through.

    A batch that times out is posted again: event ids are stable, so what the API had
    already taken comes back as duplicates (and is delivered to its monitor if it was not).
    """
    headers = {"Authorization": f"Bearer {hr_token}"}
    with Progress(
        TextColumn("events posted"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("events", total=len(events))
        for start in range(0, len(events), MAX_BATCH):
            batch = events[start : start + MAX_BATCH]
            for attempt in range(1, _POST_ATTEMPTS + 1):
                try:
                    response = await api.post(
                        "/api/v1/absence-events", json={"events": batch}, headers=headers
                    )
                    break
                except httpx.TimeoutException:
                    if attempt == _POST_ATTEMPTS:
                        raise DemoFailed(
                            f"the API did not answer a batch in {_POST_ATTEMPTS} attempts"
                        ) from None
            if response.status_code != 202:
                raise DemoFailed(f"the API answered {response.status_code}: {response.text[:200]}")
            counts = response.json()
            summary.accepted += counts["accepted"]
            summary.duplicate += counts["duplicate"]
            summary.rejected += len(counts["rejected"])
            progress.advance(task, len(batch))


async def monitors_idle(
    temporal: Client,
    sessionmaker: async_sessionmaker[AsyncSession],
    codes: list[str],
    console: Console,
    *,
    stall_seconds: float = 300.0,
) -> None:
    """Until every monitor of the units has applied its events and opened or told its case.

    Shows how many monitors are done while it waits. A machine that is only slow does not
    fail the demo: queries are few at a time and retried, an unanswered one counts as busy,
    and the demo gives up only when no monitor has finished for `stall_seconds`.
    """
    async with sessionmaker() as session:
        pseudonyms = list(
            (
                await session.scalars(
                    select(Employee.pseudonym).where(Employee.unit_code.in_(codes))
                )
            ).all()
        )
    gate = asyncio.Semaphore(_QUERY_CONCURRENCY)

    async def busy(pseudonym: uuid.UUID) -> bool:
        handle = temporal.get_workflow_handle_for(
            AbsenceMonitorWorkflow.run, monitor_workflow_id(pseudonym)
        )
        try:
            view = await query_with_retry(handle, AbsenceMonitorWorkflow.summary, gate=gate)
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                return False  # no sick leave ever reported: no monitor
            if is_transient(exc):
                return True  # not answered yet: ask again next round
            raise
        return view.busy

    total = len(pseudonyms)
    last_progress = time.monotonic()
    with Progress(
        TextColumn("monitors done"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("monitors", total=total)
        while pseudonyms:
            states = await asyncio.gather(*(busy(p) for p in pseudonyms))
            still = [p for p, is_busy in zip(pseudonyms, states, strict=True) if is_busy]
            if len(still) < len(pseudonyms):
                last_progress = time.monotonic()
            pseudonyms = still
            progress.update(task, completed=total - len(pseudonyms))
            if pseudonyms and time.monotonic() - last_progress > stall_seconds:
                raise DemoFailed(
                    f"{len(pseudonyms)} monitors made no progress for {stall_seconds:.0f} s: "
                    "is the worker running?"
                )
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

"""Run a report: read the facts, audit the run in the same transaction, build the aggregates."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from evaluation.report import build_report
from models.reports import Report
from store.audit import record_access
from store.evaluation import case_facts
from store.programme import programme_facts

# A report spans at most this long: enough for year-on-year, bounded in memory and time.
MAX_PERIOD = timedelta(days=3 * 366)
REPORT_AUDIT = "report.run"


class InvalidPeriod(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def check_period(first: date, last: date, change_on: date | None) -> None:
    if last < first:
        raise InvalidPeriod("to", "the period must end on or after its first day")
    if last - first > MAX_PERIOD:
        raise InvalidPeriod("to", "the period may span at most three years")
    if change_on is not None and not first < change_on <= last:
        raise InvalidPeriod("change_on", "the date compared around must fall inside the period")


async def run_report(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    first: date,
    last: date,
    today: date,
    subject: str,
    role: str,
    change_on: date | None = None,
) -> Report:
    """Every run is audited: who ran which period, in the transaction that read the facts."""
    check_period(first, last, change_on)
    async with sessionmaker.begin() as session:
        cases = await case_facts(session, first, last)
        programme = await programme_facts(session)
        await record_access(
            await session.connection(),
            subject=subject,
            role=role,
            case_id=None,
            what=f"{REPORT_AUDIT}:{first.isoformat()}:{last.isoformat()}",
            allowed=True,
        )
    # Statistics and charts are CPU work: off the event loop.
    return await asyncio.to_thread(
        build_report, cases, programme, first=first, last=last, today=today, change_on=change_on
    )

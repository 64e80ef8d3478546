"""`starter.py report`: run the evaluation against the record store and write it to a folder."""

from __future__ import annotations

import getpass
from datetime import date, datetime
from pathlib import Path

from rich.console import Console

from core.settings import Settings
from evaluation.render import write_report
from evaluation.report import build_report
from evaluation.run import InvalidPeriod, check_period, run_report
from evaluation.synthetic import synthetic_casework
from models.deadlines import STOCKHOLM
from store.db import create_engine, create_sessionmaker


def synthetic_report(
    console: Console, first: date, last: date, out: Path, change_on: date | None, employees: int
) -> int:
    """The report of a synthetic year of casework: what the page looks like, no record store."""
    try:
        check_period(first, last, change_on)
    except InvalidPeriod as exc:
        console.print(f"[red]--{exc.field.replace('_', '-')}: {exc.reason}[/red]")
        return 2
    change = change_on or first + (last - first) / 2
    cases, programme = synthetic_casework(employees, first, last, change)
    report = build_report(
        cases, programme, first=first, last=last, today=last, change_on=change
    ).model_copy(update={"synthetic": True})
    files = write_report(report, out)
    console.print(f"synthetic report of {len(cases)} made-up cases: {files[0]}")
    return 0


async def report_command(
    settings: Settings,
    console: Console,
    first: date,
    last: date,
    out: Path,
    change_on: date | None = None,
) -> int:
    engine = create_engine(settings)
    try:
        report = await run_report(
            create_sessionmaker(engine),
            first=first,
            last=last,
            today=datetime.now(STOCKHOLM).date(),
            # The command line runs as the analyst role; the audit names the local account.
            subject=f"cli:{getpass.getuser()}",
            role="analyst",
            change_on=change_on,
        )
    except InvalidPeriod as exc:
        console.print(f"[red]--{exc.field.replace('_', '-')}: {exc.reason}[/red]")
        return 2
    finally:
        await engine.dispose()
    files = write_report(report, out)
    console.print(
        f"{'fewer than 5' if report.cases is None else report.cases} cases opened "
        f"{first} - {last}; {len(report.tables)} tables"
    )
    console.print(f"report: {files[0]}")
    console.print(f"charts and CSV files: {out}")
    return 0

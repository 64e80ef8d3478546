"""Importing a payroll export: any size, the same path as the API, resumable after a crash."""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.worker import Worker

from ingestion.absences import AbsenceIngestion
from ingestion.csv_import import COLUMNS, MalformedFile, import_file, rejected_path
from models.absence import IngestResult
from store.schema import AbsenceEvent, Employee

pytestmark = pytest.mark.own_temporal("test")


def valid_pin(n: int) -> str:
    """The n-th synthetic personal identity number: a real date and a correct check digit."""
    born = date(1960, 1, 1) + timedelta(days=n * 7)
    body = f"{born:%y%m%d}{n % 999 + 1:03d}"  # birth number 000 is never issued
    total = 0
    for i, digit in enumerate(body):
        product = int(digit) * (2 if i % 2 == 0 else 1)
        total += product // 10 + product % 10
    return f"{born:%Y%m%d}-{body[6:]}{(10 - total % 10) % 10}"


def write_export(path: Path, unit: str, employees: int, per_employee: int, first: date) -> int:
    """A payroll export sorted by employee: one-day absences every third day."""
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for e in range(employees):
            pin = valid_pin(e)
            for k in range(per_employee):
                day = first + timedelta(days=3 * k)
                kind = "sick" if k % 50 == 0 else "other"
                writer.writerow([f"p{e}-{k}", pin, unit, kind, day, day, 100, ""])
    return employees * per_employee


async def _count(sessionmaker: async_sessionmaker[AsyncSession], model: type) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_100000_row_export_imports_with_the_right_counts(
    ingestion: AbsenceIngestion,
    worker: Worker,
    unit_code: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    source = tmp_path / "export.csv"
    # 500 absences every third day: about four years back, inside the policy's windows.
    first = date.today() - timedelta(days=1600)
    rows = write_export(source, unit_code, employees=200, per_employee=500, first=first)
    later, earlier = first + timedelta(days=1100), first + timedelta(days=1096)
    with source.open("a", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["p0-0", valid_pin(0), unit_code, "sick", first, first, 100, ""])
        writer.writerow(["bad-1", "19811218-9875", unit_code, "sick", earlier, "", 100, ""])
        writer.writerow(["bad-2", valid_pin(1), unit_code, "sick", later, earlier, 100, ""])
        writer.writerow(["bad-3", valid_pin(2), unit_code, "sick", later, "", 100, "", "extra"])
    progressed: list[int] = []

    summary = await import_file(source, ingestion, progressed.append)

    assert (summary.accepted, summary.duplicate, summary.rejected) == (rows, 1, 3)
    assert sum(progressed) == rows + 4
    assert await _count(sessionmaker, AbsenceEvent) == rows
    assert await _count(sessionmaker, Employee) == 200
    with rejected_path(source).open() as fh:
        rejected = list(csv.DictReader(fh))
    assert [(r["line"], r["field"]) for r in rejected] == [
        (str(rows + 3), "employee_ref"),
        (str(rows + 4), "end"),
        (str(rows + 5), "row"),
    ]
    assert "19811218" not in rejected_path(source).read_text()


class _CrashAfter:
    """An ingestion path that fails on its n-th call, as a killed import would."""

    def __init__(self, inner: AbsenceIngestion, calls: int) -> None:
        self._inner, self._left = inner, calls

    async def ingest(self, events: list[Any], *, first_index: int = 0) -> IngestResult:
        if self._left == 0:
            raise RuntimeError("import killed")
        self._left -= 1
        return await self._inner.ingest(events, first_index=first_index)


async def test_an_interrupted_import_resumes_where_it_stopped_and_stores_nothing_twice(
    ingestion: AbsenceIngestion,
    worker: Worker,
    unit_code: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    source = tmp_path / "export.csv"
    rows = write_export(
        source, unit_code, employees=5, per_employee=40, first=date.today() - timedelta(days=365)
    )

    with pytest.raises(RuntimeError):
        await import_file(source, _CrashAfter(ingestion, 2), chunk_rows=50)  # type: ignore[arg-type]
    assert await _count(sessionmaker, AbsenceEvent) == 100

    summary = await import_file(source, ingestion, chunk_rows=50)
    assert summary.resumed_from == 100
    assert (summary.accepted, summary.duplicate, summary.rejected) == (rows, 0, 0)
    assert await _count(sessionmaker, AbsenceEvent) == rows


async def test_rows_with_dates_outside_the_policy_windows_are_refused_and_not_stored(
    ingestion: AbsenceIngestion,
    unit_code: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    source = tmp_path / "export.csv"
    with source.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerow(["ancient", valid_pin(1), unit_code, "sick", "0001-01-01", "", 100, ""])
        writer.writerow(["far-ahead", valid_pin(2), unit_code, "sick", "9999-01-01", "", 100, ""])

    summary = await import_file(source, ingestion)

    assert (summary.accepted, summary.rejected) == (0, 2)
    with rejected_path(source).open() as fh:
        rejected = [(r["line"], r["field"]) for r in csv.DictReader(fh)]
    assert rejected == [("2", "start"), ("3", "start")]
    assert "9999" not in rejected_path(source).read_text()
    assert await _count(sessionmaker, AbsenceEvent) == 0


async def test_a_file_without_the_required_columns_is_refused(
    ingestion: AbsenceIngestion, tmp_path: Path
) -> None:
    source = tmp_path / "wrong.csv"
    source.write_text("id,person,when\n1,2,3\n")
    with pytest.raises(MalformedFile, match="event_id"):
        await import_file(source, ingestion)

"""Import a payroll export (CSV) of any size through the same path as the API, resumably."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingestion.absences import AbsenceIngestion
from models.absence import IngestResult

COLUMNS = (
    "event_id",
    "employee_ref",
    "unit_code",
    "kind",
    "start",
    "end",
    "extent",
    "expected_end",
)
REQUIRED_COLUMNS = COLUMNS[:5]
# Rows per call to the ingestion path; a payroll export is usually sorted by employee, so a
# chunk touches few employees and costs few signals.
CHUNK_ROWS = 5000


@dataclass
class ImportSummary:
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    rows_done: int = 0
    resumed_from: int = 0


class MalformedFile(ValueError):
    pass


def _progress_path(source: Path) -> Path:
    return source.with_name(source.name + ".progress")


def rejected_path(source: Path) -> Path:
    return source.with_name(source.name + ".rejected.csv")


def _rows(source: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, event) pairs; empty cells become absent optional fields."""
    with source.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise MalformedFile(f"the header lacks the column(s): {', '.join(missing)}")
        for row in reader:
            line = reader.line_num
            if None in row:  # more cells than the header has
                yield line, {"__malformed__": True}
                continue
            event: dict[str, Any] = {k: v for k, v in row.items() if v not in ("", None)}
            extent = event.get("extent")
            if isinstance(extent, str) and extent.isdigit():
                event["extent"] = int(extent)  # CSV cells are text; the API takes a number
            yield line, event


def count_rows(source: Path) -> int:
    with source.open("rb") as fh:
        return max(sum(1 for _ in fh) - 1, 0)


async def import_file(
    source: Path,
    ingestion: AbsenceIngestion,
    on_progress: Callable[[int], None] = lambda _: None,
    chunk_rows: int = CHUNK_ROWS,
) -> ImportSummary:
    """Stream `source` in chunks; a checkpoint after each chunk lets a rerun skip what is done.

    Rejected rows go to `<file>.rejected.csv` with line, field and reason (never the values).
    Because events are idempotent on event_id, a chunk repeated after a crash is harmless."""
    progress = _progress_path(source)
    summary = ImportSummary()
    if progress.exists():
        saved = json.loads(progress.read_text())
        summary = ImportSummary(**saved)
        summary.resumed_from = summary.rows_done
    mode = "a" if summary.rows_done else "w"
    with rejected_path(source).open(mode, newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        if mode == "w":
            writer.writerow(["line", "event_id", "field", "reason"])
        chunk: list[tuple[int, dict[str, Any]]] = []
        done = 0
        for line, event in _rows(source):
            done += 1
            if done <= summary.rows_done:
                continue
            chunk.append((line, event))
            if len(chunk) >= chunk_rows:
                await _ingest_chunk(chunk, ingestion, writer, summary)
                _checkpoint(progress, summary, out)
                on_progress(len(chunk))
                chunk = []
        if chunk:
            await _ingest_chunk(chunk, ingestion, writer, summary)
            _checkpoint(progress, summary, out)
            on_progress(len(chunk))
    progress.unlink(missing_ok=True)
    return summary


async def _ingest_chunk(
    chunk: list[tuple[int, dict[str, Any]]],
    ingestion: AbsenceIngestion,
    writer: Any,
    summary: ImportSummary,
) -> None:
    lines = [line for line, _ in chunk]
    malformed = [i for i, (_, e) in enumerate(chunk) if "__malformed__" in e]
    events = [e for _, e in chunk if "__malformed__" not in e]
    positions = [i for i, (_, e) in enumerate(chunk) if "__malformed__" not in e]
    result: IngestResult = await ingestion.ingest(events)
    rows: list[tuple[int, str, str, str]] = [
        (lines[i], "", "row", "more cells than the header has columns") for i in malformed
    ]
    rows += [
        (lines[positions[r.index]], r.event_id or "", r.field, r.reason) for r in result.rejected
    ]
    writer.writerows(sorted(rows))
    summary.accepted += result.accepted
    summary.duplicate += result.duplicate
    summary.rejected += len(result.rejected) + len(malformed)
    summary.rows_done += len(chunk)


def _checkpoint(progress: Path, summary: ImportSummary, out: Any) -> None:
    out.flush()
    os.fsync(out.fileno())
    tmp = progress.with_suffix(".tmp")
    tmp.write_text(json.dumps({k: v for k, v in summary.__dict__.items() if k != "resumed_from"}))
    tmp.replace(progress)

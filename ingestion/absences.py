"""Validate, store and deliver absence events; every event stands or falls on its own."""

from __future__ import annotations

import asyncio
import uuid
from bisect import bisect_right, insort
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import structlog
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import Priority, WorkflowIDConflictPolicy

from core.identity import IdentityProtector, InvalidPersonalIdentityNumber, parse_personnummer
from models.absence import (
    AbsenceBatch,
    AbsenceEventIn,
    AbsenceRecord,
    IngestResult,
    MonitorState,
    Rejection,
    monitor_workflow_id,
)
from models.plausible_dates import implausible_dates
from models.policy import DateWindows, Policy, get_policy
from store.employees import backfilling_coded_attributes, coded_attributes
from store.schema import AbsenceEvent, Case, Employee, Unit
from workflows.absence_monitor import AbsenceMonitorWorkflow, new_monitor_input

log = structlog.get_logger(__name__)

MAX_BATCH = 1000
# A monitor first started by sick leave that is still going on may open a case today: its
# tasks go ahead of the default (3) in a backlogged task queue, as do its activities, which
# inherit it. A bulk import of last year's absences then cannot keep a case from opening.
SICK_NOW_PRIORITY = Priority(priority_key=2)
# Ahead of those, a monitor whose news alone shows a sick leave past the policy's
# long-absence day, going on or recent enough to count: its rules open a case on this
# wake-up, and a coordinator should see it first. (A guess from the batch only: a relapse
# joined to an earlier period, or repeated short absences, still open their case, later.)
CASE_DUE_PRIORITY = Priority(priority_key=1)
# Signals in flight at once: enough to hide round trips, few enough not to flood Temporal.
_SIGNAL_CONCURRENCY = 32
_EVENT = TypeAdapter(AbsenceEventIn)


@dataclass
class _Candidate:
    index: int
    event: AbsenceEventIn
    lookup: str
    encrypted: bytes
    coded: dict[str, object]


def _reason(error: Mapping[str, Any]) -> str:
    message = str(error["msg"])
    # pydantic prefixes our own validators' messages; the rule itself is the reason.
    return message.removeprefix("Value error, ")


def _overlaps(a_start: date, a_end: date | None, b_start: date, b_end: date | None) -> bool:
    return a_start <= (b_end or date.max) and b_start <= (a_end or date.max)


@dataclass(frozen=True)
class _Absence:
    start: date
    end: date | None
    event_id: str

    def overlaps(self, other: _Absence) -> bool:
        return _overlaps(self.start, self.end, other.start, other.end)

    def continued_by(self, other: _Absence) -> bool:
        """An ongoing absence (no end) that `other`, with the same start, reports on."""
        return self.end is None and self.start == other.start


class _Absences:
    """One employee's absences that a new one must not overlap, sorted by start.

    They are disjoint as the ingestion path stores them; then only the neighbours of a new
    absence can overlap it, and a payroll export's hundreds of events per employee cost
    O(log n) each instead of O(n). Stored absences that overlap all the same (written by
    concurrent batches) are checked one by one, as before.
    """

    def __init__(self, stored: list[_Absence]) -> None:
        self._items = sorted(stored, key=_start)
        self._disjoint = all(
            a.end is not None and a.end < b.start
            for a, b in zip(self._items, self._items[1:], strict=False)
        )

    def _near(self, new: _Absence) -> list[_Absence]:
        if not self._disjoint:
            return self._items
        i = bisect_right(self._items, new.start, key=_start)
        return self._items[max(0, i - 1) : i + 1]

    def clashes(self, new: _Absence) -> bool:
        return any(e.overlaps(new) and not e.continued_by(new) for e in self._near(new))

    def take(self, new: _Absence) -> list[_Absence]:
        """Add `new` (it clashes with none); returns the ongoing absences it replaces."""
        replaced = [e for e in self._near(new) if e.continued_by(new)]
        for old in replaced:
            self._items.remove(old)
        insort(self._items, new, key=_start)
        return replaced


def _start(absence: _Absence) -> date:
    return absence.start


def _latest_sick_start(events: list[Any]) -> date:
    return max((e.start for e in events if e.kind == "sick"), default=date.min)


def urgency_of(events: Sequence[Any], policy: Policy, today: date) -> Priority:
    """How soon an employee's monitor should run, judged from one batch's news.

    `events` need `kind`, `start` and `end`: a case due (a sick leave past the policy's
    long-absence day that still counts, as the monitor's rules see it), sick leave going on
    now, or neither.
    """
    counts_from = policy.repeated_absence_window.before(today)
    sick = [e for e in events if e.kind == "sick"]
    for e in sick:
        last_day = today if e.end is None or e.end > today else e.end
        reached = (last_day - e.start).days + 1 >= policy.long_absence_trigger_day
        if reached and (e.end is None or e.end > counts_from):
            return CASE_DUE_PRIORITY
    if any(e.end is None or e.end >= today for e in sick):
        return SICK_NOW_PRIORITY
    return Priority.default


class AbsenceIngestion:
    """The one ingestion path: the API's batches and the CSV importer's chunks both use it."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        client: Client,
        identity: IdentityProtector,
        task_queue: str,
        today: Callable[[], date],
    ) -> None:
        self._sessionmaker = sessionmaker
        self._client = client
        self._identity = identity
        self._task_queue = task_queue
        self._today = today
        # The policy new monitors take (MonitorState's default): its date windows, and the
        # rules by which a batch's urgent news goes first.
        default = MonitorState.model_fields
        self._policy = get_policy(default["policy_id"].default, default["policy_version"].default)
        self._windows: DateWindows = self._policy.date_windows

    async def ingest(self, raw_events: Sequence[Any], *, first_index: int = 0) -> IngestResult:
        result = IngestResult()
        candidates = self._validate(raw_events, first_index, result)
        async with self._sessionmaker.begin() as session:
            candidates = await self._known_units_only(session, candidates, result)
            fresh, resend = await self._split_duplicates(session, candidates, result)
            accepted, superseded = await self._without_overlaps(session, fresh, result)
            await self._store(session, accepted, superseded)
        result.accepted = len(accepted)
        await self._deliver(resend + [c.event.event_id for c in accepted])
        return result

    # ------------------------------------------------------------ validation

    def _validate(
        self, raw_events: Sequence[Any], first_index: int, result: IngestResult
    ) -> list[_Candidate]:
        today = self._today()
        candidates: list[_Candidate] = []
        for offset, raw in enumerate(raw_events):
            index = first_index + offset
            event_id = raw.get("event_id") if isinstance(raw, Mapping) else None
            try:
                event = _EVENT.validate_python(raw)
            except ValidationError as exc:
                first = exc.errors(include_input=False)[0]
                field = ".".join(str(p) for p in first["loc"]) or "event"
                safe_id = None if field == "event_id" or not isinstance(event_id, str) else event_id
                result.rejected.append(
                    Rejection(index=index, event_id=safe_id, field=field, reason=_reason(first))
                )
                continue
            implausible = implausible_dates(event, self._windows, today)
            if implausible:
                result.rejected.append(
                    Rejection(
                        index=index,
                        event_id=event.event_id,
                        field=implausible[0].field,
                        reason=implausible[0].reason,
                    )
                )
                continue
            try:
                pin = parse_personnummer(event.employee_ref, today=today)
            except InvalidPersonalIdentityNumber as exc:
                result.rejected.append(
                    Rejection(
                        index=index,
                        event_id=event.event_id,
                        field="employee_ref",
                        reason=exc.reason,
                    )
                )
                continue
            candidates.append(
                _Candidate(
                    index,
                    event,
                    self._identity.lookup_hash(pin),
                    self._identity.encrypt(pin),
                    coded_attributes(pin),
                )
            )
        return candidates

    async def _known_units_only(
        self, session: AsyncSession, candidates: list[_Candidate], result: IngestResult
    ) -> list[_Candidate]:
        codes = {c.event.unit_code for c in candidates}
        known = set((await session.scalars(select(Unit.code).where(Unit.code.in_(codes)))).all())
        kept = []
        for c in candidates:
            if c.event.unit_code in known:
                kept.append(c)
            else:
                result.rejected.append(
                    Rejection(
                        index=c.index,
                        event_id=c.event.event_id,
                        field="unit_code",
                        reason="no unit with this code is registered",
                    )
                )
        return kept

    async def _split_duplicates(
        self, session: AsyncSession, candidates: list[_Candidate], result: IngestResult
    ) -> tuple[list[_Candidate], list[str]]:
        """New events, and stored ones whose delivery to a monitor may not have happened."""
        ids = [c.event.event_id for c in candidates]
        stored = dict(
            (
                await session.execute(
                    select(AbsenceEvent.event_id, AbsenceEvent.delivered_at).where(
                        AbsenceEvent.event_id.in_(ids)
                    )
                )
            ).all()
        )
        fresh: list[_Candidate] = []
        seen: set[str] = set()
        resend: list[str] = []
        for c in candidates:
            event_id = c.event.event_id
            if event_id in stored or event_id in seen:
                result.duplicate += 1
                if event_id in stored and stored[event_id] is None and event_id not in resend:
                    resend.append(event_id)
                continue
            seen.add(event_id)
            fresh.append(c)
        return fresh, resend

    async def _without_overlaps(
        self, session: AsyncSession, candidates: list[_Candidate], result: IngestResult
    ) -> tuple[list[_Candidate], dict[str, str]]:
        """Refuse an event overlapping another of the employee's, stored or earlier in the batch.

        One exception: an event with the start of a stored ongoing absence (no end) reports how
        that absence went on, and replaces it."""
        if not candidates:
            return [], {}
        lookups = {c.lookup for c in candidates}
        pseudonyms = dict(
            (
                await session.execute(
                    select(Employee.pin_lookup, Employee.pseudonym).where(
                        Employee.pin_lookup.in_(lookups)
                    )
                )
            ).all()
        )
        first = min(c.event.start for c in candidates)
        last = max((c.event.end or date.max) for c in candidates)
        stored_rows = (
            await session.execute(
                select(
                    AbsenceEvent.employee_pseudonym,
                    AbsenceEvent.event_id,
                    AbsenceEvent.start,
                    AbsenceEvent.end,
                ).where(
                    AbsenceEvent.employee_pseudonym.in_(list(pseudonyms.values())),
                    AbsenceEvent.superseded_by.is_(None),
                    AbsenceEvent.start <= last,
                    or_(AbsenceEvent.end.is_(None), AbsenceEvent.end >= first),
                )
            )
        ).all()
        stored: dict[str, list[_Absence]] = defaultdict(list)
        reverse = {p: lookup for lookup, p in pseudonyms.items() if lookup is not None}
        for pseudonym, event_id, start, end in stored_rows:
            stored[reverse[pseudonym]].append(_Absence(start, end, event_id))
        by_employee: dict[str, _Absences] = {}

        accepted: list[_Candidate] = []
        superseded: dict[str, str] = {}
        for c in sorted(candidates, key=lambda c: c.index):
            existing = by_employee.get(c.lookup)
            if existing is None:
                existing = by_employee[c.lookup] = _Absences(stored.get(c.lookup, []))
            new = _Absence(c.event.start, c.event.end, c.event.event_id)
            if existing.clashes(new):
                result.rejected.append(
                    Rejection(
                        index=c.index,
                        event_id=c.event.event_id,
                        field="start",
                        reason="overlaps another absence of the same employee",
                    )
                )
                continue
            for old in existing.take(new):
                superseded[old.event_id] = c.event.event_id
            accepted.append(c)
        return accepted, superseded

    async def _store(
        self, session: AsyncSession, accepted: list[_Candidate], superseded: dict[str, str]
    ) -> None:
        if not accepted:
            return
        first_unit: dict[str, _Candidate] = {}
        for c in accepted:
            first_unit.setdefault(c.lookup, c)
        # One statement, many parameter sets (compiled once, sent in batches of rows).
        await session.execute(
            backfilling_coded_attributes(insert(Employee)),
            [
                {
                    "pseudonym": uuid.uuid4(),
                    "pin_lookup": lookup,
                    "pin_encrypted": c.encrypted,
                    "unit_code": c.event.unit_code,
                    **c.coded,
                }
                for lookup, c in first_unit.items()
            ],
        )
        pseudonyms = dict(
            (
                await session.execute(
                    select(Employee.pin_lookup, Employee.pseudonym).where(
                        Employee.pin_lookup.in_(list(first_unit))
                    )
                )
            ).all()
        )
        rows = [
            {
                "event_id": c.event.event_id,
                "employee_pseudonym": pseudonyms[c.lookup],
                "unit_code": c.event.unit_code,
                "kind": c.event.kind,
                "start": c.event.start,
                "end": c.event.end,
                "extent": c.event.extent,
                "expected_end": c.event.expected_end,
            }
            for c in accepted
        ]
        # One statement, many parameter sets: SQLAlchemy sends them in batches of rows
        # ("insertmanyvalues") without compiling a statement of thousands of VALUES.
        await session.execute(insert(AbsenceEvent).on_conflict_do_nothing(), rows)
        for old, new in superseded.items():
            await session.execute(
                update(AbsenceEvent).where(AbsenceEvent.event_id == old).values(superseded_by=new)
            )

    # ------------------------------------------------------------ delivery

    async def _deliver(self, event_ids: Iterable[str]) -> None:
        """Signal-with-start each employee's monitor, then mark the events delivered."""
        ids = list(event_ids)
        if not ids:
            return
        async with self._sessionmaker() as session:
            rows = (
                await session.execute(
                    select(
                        AbsenceEvent.employee_pseudonym,
                        AbsenceEvent.unit_code,
                        AbsenceEvent.event_id,
                        AbsenceEvent.kind,
                        AbsenceEvent.start,
                        AbsenceEvent.end,
                        AbsenceEvent.extent,
                        AbsenceEvent.expected_end,
                    )
                    .where(AbsenceEvent.event_id.in_(ids))
                    .order_by(AbsenceEvent.start)
                )
            ).all()
            # A monitor started now takes the employee's open case (usually none) from the
            # record store, so it need not ask about every sick period it is told of. A
            # monitor that runs already keeps its own belief: this start is then a signal.
            open_cases: dict[uuid.UUID, uuid.UUID] = dict(
                (
                    await session.execute(
                        select(Case.employee_pseudonym, Case.id).where(
                            Case.employee_pseudonym.in_({r.employee_pseudonym for r in rows}),
                            Case.closed_at.is_(None),
                        )
                    )
                ).all()
            )
        per_employee: dict[uuid.UUID, list[Any]] = defaultdict(list)
        for row in rows:
            per_employee[row.employee_pseudonym].append(row)
        today = self._today()
        urgency = {p: urgency_of(events, self._policy, today) for p, events in per_employee.items()}
        gate = asyncio.Semaphore(_SIGNAL_CONCURRENCY)

        async def signal(pseudonym: uuid.UUID, events: list[Any]) -> None:
            batch = AbsenceBatch(
                unit_code=events[-1].unit_code,
                records=tuple(
                    AbsenceRecord(
                        event_id=e.event_id,
                        kind=e.kind,
                        start=e.start,
                        end=e.end,
                        extent=e.extent,
                        expected_end=e.expected_end,
                    )
                    for e in events
                ),
            )
            async with gate:
                await self._client.start_workflow(
                    AbsenceMonitorWorkflow.run,
                    new_monitor_input(
                        MonitorState(
                            employee_pseudonym=pseudonym,
                            unit_code=batch.unit_code,
                            knows_open_case=True,
                            open_case_id=open_cases.get(pseudonym),
                        )
                    ),
                    id=monitor_workflow_id(pseudonym),
                    task_queue=self._task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    start_signal="record_absences",
                    start_signal_args=[batch],
                    static_summary="Absence monitor",
                    # Only a monitor started now takes it: a running one keeps its own.
                    priority=urgency[pseudonym],
                )

        # The most urgent first (a case due, then sick leave going on now), and within each
        # the most recent sick leave: an import of last year's short absences opens nothing
        # and can wait its turn (the worker takes tasks in about the order they were sent).
        order = sorted(
            per_employee.items(),
            key=lambda item: (
                urgency[item[0]].priority_key or 3,
                -_latest_sick_start(item[1]).toordinal(),
            ),
        )
        await asyncio.gather(*(signal(p, events) for p, events in order))
        async with self._sessionmaker.begin() as session:
            await session.execute(
                update(AbsenceEvent)
                .where(AbsenceEvent.event_id.in_(ids), AbsenceEvent.delivered_at.is_(None))
                .values(delivered_at=datetime.now(UTC))
            )

"""Activities that mirror case facts into the record store, each write idempotent.

Every write is one transaction: the timeline event, the projection the API reads and the
notifications that announce the fact commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy import String, any_, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY, Insert, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from channels.message import NotificationType, RecipientRole
from models.actions import InterventionChange
from models.case import (
    CaseChange,
    CaseChanges,
    CaseColumns,
    DeadlineRow,
    ErasureRequest,
    ErasureResult,
    InterventionStatus,
    OpenCaseRecord,
    Stage,
)
from models.deadlines import DeadlineView
from store import direct
from store.cases import insert_case
from store.direct import Conn
from store.outbox import CaseNotice, enqueue_notifications
from store.schema import (
    AgreedNextStepRow,
    Base,
    Case,
    CaseConsent,
    CaseDeadline,
    CaseEvent,
    CaseIntervention,
    Employee,
    EmployeeContact,
    Meeting,
    MeetingParticipant,
    Screening,
    Unit,
    ViolenceDisclosure,
    table_of,
)

UNKNOWN_UNIT = "UnknownUnit"
UNKNOWN_CASE = "UnknownCase"

# Who hears of a newly opened case: the coordinator gets it, the manager is told, and the
# employee is asked for consent (DESIGN.md, stage `identified`).
_OPENING_NOTIFICATIONS = (
    (NotificationType.CASE_ASSIGNED, RecipientRole.COORDINATOR),
    (NotificationType.MANAGER_CASE_OPENED, RecipientRole.MANAGER),
    (NotificationType.CONSENT_REQUESTED, RecipientRole.EMPLOYEE),
)


# The writes of every case change, built once on the tables and run with their values as
# parameters: by asyncpg straight (`store.direct`), each compiled once per set of
# parameter names; or, given a SQLAlchemy connection, found in SQLAlchemy's cache. A
# statement built per call (a multi-row VALUES list above all) was compiled on every call.
_CASES = table_of(Case)
_DEADLINES = table_of(CaseDeadline)


def _upsert(model: type[Base], conflict: list[str], updated: tuple[str, ...]) -> Insert:
    """INSERT … ON CONFLICT (conflict) DO UPDATE SET each updated column to the new row's."""
    statement = insert(table_of(model))
    return statement.on_conflict_do_update(
        index_elements=conflict, set_={column: statement.excluded[column] for column in updated}
    )


_APPEND_EVENT = insert(table_of(CaseEvent)).on_conflict_do_nothing(
    constraint="uq_case_events_workflow_id"
)
# SET takes the columns named by the parameters; `case_id_` is the row's key.
_UPDATE_CASE = update(_CASES).where(_CASES.c.id == bindparam("case_id_")).returning(_CASES.c.id)
_CASE_EXISTS = select(_CASES.c.id).where(_CASES.c.id == bindparam("case_id_"))
_CASE_STAGE = select(_CASES.c.stage).where(_CASES.c.id == bindparam("case_id_"))
_UPSERT_DEADLINES = _upsert(CaseDeadline, ["case_id", "kind"], ("due_on", "status", "met_on"))
_DROP_DEADLINES = delete(_DEADLINES).where(_DEADLINES.c.case_id == bindparam("case_id_"))
_DROP_SOME_DEADLINES = _DROP_DEADLINES.where(
    _DEADLINES.c.kind == any_(bindparam("kinds", type_=ARRAY(String)))
)
_UPSERT_CONSENT = _upsert(CaseConsent, ["case_id", "party"], ("given", "recorded_at"))
_UPSERT_MEETING = _upsert(
    Meeting,
    ["id"],
    ("starts_at", "ends_at", "sequence", "status", "reinforced_support", "held_by"),
)
_UPSERT_PARTICIPANTS = _upsert(MeetingParticipant, ["meeting_id", "role"], ("attended",))
_INSERT_DISCLOSURE = insert(table_of(ViolenceDisclosure)).on_conflict_do_nothing(
    constraint="uq_violence_disclosures_workflow_id"
)
_INSERT_SCREENING = insert(table_of(Screening)).on_conflict_do_nothing(
    constraint="uq_screenings_workflow_id"
)
_UPSERT_NEXT_STEPS = _upsert(AgreedNextStepRow, ["id"], ("intervention_id",))
_UPSERT_INTERVENTION = _upsert(
    CaseIntervention, ["id"], ("status", "outcome", "cancel_reason", "finished_at")
)
_units = table_of(Unit)
_UNIT_EXISTS = select(_units.c.code).where(_units.c.code == bindparam("code"))


def notification_key(workflow_id: str, step_key: str, role: RecipientRole) -> str:
    """One fact, one role: the outbox writes each such key once however often we retry."""
    return f"{workflow_id}:{step_key}:{role.value}"


async def append_event(conn: Conn, **values: Any) -> None:
    await conn.execute(_APPEND_EVENT, values)


class CaseRecords:
    """Writes the case projection and its timeline. Given its sessionmaker by the worker."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    @activity.defn
    async def open_case(self, record: OpenCaseRecord) -> None:
        async with direct.begin(self._sessionmaker) as conn:
            notices = await _record_opening(conn, record)
            await enqueue_notifications(
                conn, case_id=record.case_id, unit_code=record.unit_code, notices=notices
            )
        activity.logger.info("case recorded")

    @activity.defn
    async def record_change(self, change: CaseChange) -> None:
        async with direct.begin(self._sessionmaker) as conn:
            await write_change(conn, change)

    @activity.defn
    async def record_changes(self, changes: CaseChanges) -> None:
        """Several changes of one workflow task, in their order, in one transaction."""
        async with direct.begin(self._sessionmaker) as conn:
            await write_changes(conn, changes.changes)

    @activity.defn
    async def record_intervention(self, change: InterventionChange) -> None:
        """An intervention's row, its timeline event and notifications, in one transaction."""
        iv = change.intervention
        finished = change.status in (InterventionStatus.COMPLETED, InterventionStatus.CANCELLED)
        async with direct.begin(self._sessionmaker) as conn:
            stage = await conn.scalar(_CASE_STAGE, {"case_id_": iv.case_id})
            if stage is None:
                raise ApplicationError(
                    "the intervention's case is not recorded", type=UNKNOWN_CASE, non_retryable=True
                )
            values = {
                "status": change.status.value,
                "outcome": change.outcome.value if change.outcome else None,
                "cancel_reason": change.cancel_reason.value if change.cancel_reason else None,
                "finished_at": change.occurred_at if finished else None,
            }
            await conn.execute(
                _UPSERT_INTERVENTION,
                {
                    "id": iv.intervention_id,
                    "case_id": iv.case_id,
                    "workflow_id": change.workflow_id,
                    "track": iv.track.value,
                    "kind": iv.kind,
                    "owner": iv.owner.value,
                    "due_on": iv.due_on,
                    "assigned_at": iv.assigned_at,
                    "protected": iv.protected,
                    **values,
                },
            )
            await append_event(
                conn,
                case_id=iv.case_id,
                workflow_id=change.workflow_id,
                step_key=change.step_key,
                kind=change.kind,
                stage=stage,
                occurred_at=change.occurred_at,
                detail={
                    "intervention_id": str(iv.intervention_id),
                    "track": iv.track.value,
                    # The timeline outlives erasure (it is append-only), so the protected
                    # track's kind is kept only in its erasable `case_interventions` row.
                    **({} if iv.protected else {"kind": iv.kind}),
                    "owner": iv.owner.value,
                    "due_on": iv.due_on.isoformat(),
                    **({"outcome": change.outcome.value} if change.outcome else {}),
                    **({"reason": change.cancel_reason.value} if change.cancel_reason else {}),
                },
            )
            await enqueue_notifications(
                conn,
                case_id=iv.case_id,
                unit_code=iv.unit_code,
                notices=[
                    CaseNotice(
                        notification_key(change.workflow_id, change.step_key, n.recipient_role),
                        n.notification_type,
                        n.recipient_role,
                        due_on=iv.due_on,
                    )
                    for n in change.notifications
                ],
            )

    @activity.defn
    async def erase_personal_data(self, request: ErasureRequest) -> ErasureResult:
        """Anonymize a closed case once its retention has run out.

        The case keeps non-personal statistics (unit, trigger, stage, outcome, relapse count,
        opening and closing time) and its timeline, which by construction holds kinds, dates
        and codes only. Sick-leave dates, consents, deadlines, screenings, disclosures and the
        protected track's interventions go.
        The identity (encrypted number, lookup hash, own contact) is erased when no other
        retained case of the employee still needs it; the last such case erases it.
        """
        async with self._sessionmaker.begin() as session:
            await session.execute(
                update(Case)
                .where(Case.id == request.case_id)
                .values(
                    sick_start=None,
                    expected_end=None,
                    next_deadline_kind=None,
                    next_deadline_on=None,
                    next_meeting_at=None,
                    overdue=False,
                    erased_at=func.coalesce(Case.erased_at, request.occurred_at),
                )
            )
            case = request.case_id
            await session.execute(delete(CaseConsent).where(CaseConsent.case_id == case))
            await session.execute(delete(CaseDeadline).where(CaseDeadline.case_id == case))
            await session.execute(delete(Screening).where(Screening.case_id == case))
            await session.execute(
                delete(ViolenceDisclosure).where(ViolenceDisclosure.case_id == case)
            )
            await session.execute(
                delete(CaseIntervention).where(
                    CaseIntervention.case_id == case, CaseIntervention.protected.is_(True)
                )
            )
            still_needed = await session.scalar(
                select(func.count())
                .select_from(Case)
                .where(
                    Case.employee_pseudonym == request.employee_pseudonym,
                    Case.id != case,
                    Case.erased_at.is_(None),
                )
            )
            employee_erased = not still_needed
            if employee_erased:
                await session.execute(
                    update(Employee)
                    .where(Employee.pseudonym == request.employee_pseudonym)
                    .values(
                        pin_encrypted=None,
                        pin_lookup=None,
                        # The evaluation's coded attributes go with the number they came from.
                        sex=None,
                        birth_year=None,
                        erased_at=func.coalesce(Employee.erased_at, request.occurred_at),
                    )
                )
                await session.execute(
                    delete(EmployeeContact).where(
                        EmployeeContact.employee_pseudonym == request.employee_pseudonym
                    )
                )
            await append_event(
                await session.connection(),
                case_id=case,
                workflow_id=request.workflow_id,
                step_key=request.step_key,
                kind="personal_data_erased",
                stage=Stage.CLOSED.value,
                occurred_at=request.occurred_at,
                detail={"employee_erased": employee_erased},
            )
        activity.logger.info("case anonymized")
        return ErasureResult(employee_erased=employee_erased)


async def write_change(conn: Conn, change: CaseChange) -> None:
    """The timeline event, the changed columns and deadlines, consent, meeting,
    screenings and notifications of one change, in the caller's transaction."""
    await write_changes(conn, (change,))


async def write_changes(conn: Conn, changes: Sequence[CaseChange]) -> None:
    """Changes of one case in their order, then all their notifications (and an opening's)
    with one handful of statements, in the caller's transaction."""
    notices: list[CaseNotice] = []
    for change in changes:
        notices += await _write_facts(conn, change)
    first = changes[0]
    await enqueue_notifications(
        conn, case_id=first.case_id, unit_code=first.unit_code, notices=notices
    )


async def _write_facts(conn: Conn, change: CaseChange) -> list[CaseNotice]:
    """Everything of one change but its notifications, which it returns."""
    notices: list[CaseNotice] = []
    if change.opening is not None:
        notices += await _record_opening(conn, change.opening)
        # Written by the case's own activity, or by the opener on the employee's monitor:
        # either way the line names the case.
        with structlog.contextvars.bound_contextvars(case_id=str(change.case_id)):
            activity.logger.info("case recorded")
    if change.projection is not None:  # sent before the lean record
        columns = CaseColumns(**change.projection.model_dump()).values()
    else:
        columns = change.columns.values() if change.columns is not None else {}
    key = {"case_id_": change.case_id}
    if columns:
        found = await conn.scalar(_UPDATE_CASE, key | columns)
    else:
        found = await conn.scalar(_CASE_EXISTS, key)
    if found is None:
        raise ApplicationError("the case is not recorded", type=UNKNOWN_CASE, non_retryable=True)
    await append_event(
        conn,
        case_id=change.case_id,
        workflow_id=change.workflow_id,
        step_key=change.step_key,
        kind=change.kind,
        stage=change.stage.value,
        occurred_at=change.occurred_at,
        detail=change.detail,
    )
    await _record_deadlines(conn, change)
    if change.consent is not None:
        await conn.execute(
            _UPSERT_CONSENT,
            {
                "case_id": change.case_id,
                "party": change.consent.party.value,
                "given": change.consent.given,
                "recorded_at": change.occurred_at,
            },
        )
    await _record_meeting(conn, change)
    await _record_screenings(conn, change)
    await _record_next_steps(conn, change)
    return notices + [
        CaseNotice(
            notification_key(change.workflow_id, change.step_key, n.recipient_role),
            n.notification_type,
            n.recipient_role,
            due_on=n.due_on,
            deadline_kind=n.deadline_kind,
            meeting=n.meeting,
        )
        for n in change.notifications
    ]


async def _record_deadlines(conn: Conn, change: CaseChange) -> None:
    """A whole plan replaces the stored one; otherwise the changed deadlines are written
    over and the dropped ones deleted."""
    deadlines: list[DeadlineRow | DeadlineView] = [*change.deadline_rows, *change.deadlines]
    key = {"case_id_": change.case_id}
    if change.plan_replaced or change.projection is not None:
        await conn.execute(_DROP_DEADLINES, key)
    elif change.deadlines_dropped:
        await conn.execute(_DROP_SOME_DEADLINES, key | {"kinds": change.deadlines_dropped})
    if not deadlines:
        return
    await conn.execute(
        _UPSERT_DEADLINES,
        [
            {
                "case_id": change.case_id,
                "kind": d.kind,
                "due_on": d.due_on,
                "status": d.status.value,
                "met_on": d.met_on,
            }
            for d in deadlines
        ],
    )


async def _record_meeting(conn: Conn, change: CaseChange) -> None:
    m = change.meeting
    if m is None:
        return
    await conn.execute(
        _UPSERT_MEETING,
        {
            "id": m.meeting_id,
            "case_id": change.case_id,
            "workflow_id": change.workflow_id,
            "step_key": change.step_key,
            "starts_at": m.starts_at,
            "ends_at": m.ends_at,
            "sequence": m.sequence,
            "status": m.status,
            "reinforced_support": m.reinforced_support,
            "kind": m.kind,
            "held_by": m.held_by,
        },
    )
    roles = set(m.invited) | set(m.attended or ())
    if roles:
        await conn.execute(
            _UPSERT_PARTICIPANTS,
            [
                {
                    "meeting_id": m.meeting_id,
                    "role": role,
                    "attended": None if m.attended is None else role in m.attended,
                }
                for role in sorted(roles)
            ],
        )


async def _record_screenings(conn: Conn, change: CaseChange) -> None:
    """Scores of ordinary instruments into `screenings`; a protected instrument's result
    only ever into `violence_disclosures`, and only when it is a disclosure."""
    for index, s in enumerate(change.screenings):
        step_key = f"{change.step_key}.{index}"
        # Only protected instruments disclose; a change written before `protected`
        # existed carries the disclosure alone.
        if s.protected or s.disclosure:
            if s.disclosure:
                await conn.execute(
                    _INSERT_DISCLOSURE,
                    {
                        "case_id": change.case_id,
                        "workflow_id": change.workflow_id,
                        "step_key": step_key,
                        "disclosed_at": change.occurred_at,
                        "meeting_id": s.meeting_id,
                        "asked_by": s.asked_by,
                    },
                )
            continue
        await conn.execute(
            _INSERT_SCREENING,
            {
                "case_id": change.case_id,
                "workflow_id": change.workflow_id,
                "step_key": step_key,
                "instrument_id": s.instrument_id,
                "instrument_version": s.instrument_version,
                "total": s.total,
                "band": s.band,
                "risk_level": s.risk_level,
                "administered_at": change.occurred_at,
            },
        )


async def _record_next_steps(conn: Conn, change: CaseChange) -> None:
    if not change.next_steps:
        return
    await conn.execute(
        _UPSERT_NEXT_STEPS,
        [
            {
                "id": step.step_id,
                "case_id": change.case_id,
                "meeting_id": step.meeting_id,
                "track": step.track.value,
                "kind": step.kind,
                "owner": step.owner.value,
                "due_on": step.due_on,
                "intervention_id": step.intervention_id,
                "agreed_at": change.occurred_at,
            }
            for step in change.next_steps
        ],
    )


async def _record_opening(conn: Conn, record: OpenCaseRecord) -> list[CaseNotice]:
    """The case's row (if the opener has not written it) and `case_opened`, each written
    once however often it is retried; the opening notifications are returned."""
    if await conn.scalar(_UNIT_EXISTS, {"code": record.unit_code}) is None:
        # Retrying cannot make a unit appear; the coordinator must fix the referral.
        raise ApplicationError(
            "the case's unit is not registered", type=UNKNOWN_UNIT, non_retryable=True
        )
    await insert_case(conn, record)
    await append_event(
        conn,
        case_id=record.case_id,
        workflow_id=record.workflow_id,
        step_key="case_opened",
        kind="case_opened",
        stage=Stage.IDENTIFIED.value,
        occurred_at=record.opened_at,
        detail={"trigger": record.trigger.value, "policy": record.policy_id},
    )
    return [
        CaseNotice(notification_key(record.workflow_id, "case_opened", role), kind, role)
        for kind, role in _OPENING_NOTIFICATIONS
    ]

"""Read side of the case projection for the API: scoped lists, one case, consents, timeline.

Every query takes a `CaseScope`, so a caller's visibility is applied inside the SQL and a
case outside it is indistinguishable from one that does not exist.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    String,
    and_,
    any_,
    bindparam,
    exists,
    false,
    func,
    nulls_last,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from models.meetings import TEAM_WORKFLOW_PREFIX
from models.notification import DISPATCHER_WORKFLOW_ID
from store.direct import Conn
from store.schema import (
    AgreedNextStepRow,
    Case,
    CaseConsent,
    CaseDeadline,
    CaseEvent,
    CaseInformationRequest,
    CaseIntervention,
    Employee,
    Meeting,
    Screening,
    ViolenceDisclosure,
)


@dataclass(frozen=True)
class CaseScope:
    """Which cases a caller may see. All given conditions must hold; `nothing` sees none."""

    units: frozenset[str] | None = None  # None: no unit restriction
    employee_pseudonym: uuid.UUID | None = None
    consent_party: str | None = None  # the case must have this party's consent given
    nothing: bool = False

    def predicate(self) -> ColumnElement[bool]:
        return and_(true(), *_scope_conditions(self._shape(), self._params()))

    def _shape(self) -> tuple[bool, bool, bool, bool]:
        return (
            self.nothing,
            self.units is not None,
            self.employee_pseudonym is not None,
            self.consent_party is not None,
        )

    def _params(self) -> dict[str, object]:
        """The values of the parameters that `_shape`'s statement has."""
        params: dict[str, object] = {}
        if self.units is not None:
            params["scope_units"] = sorted(self.units)
        if self.employee_pseudonym is not None:
            params["scope_employee"] = self.employee_pseudonym
        if self.consent_party is not None:
            params["scope_party"] = self.consent_party
        return params


@dataclass(frozen=True)
class CaseFilters:
    stage: str | None = None
    unit_code: str | None = None
    overdue: bool | None = None
    trigger: str | None = None


async def list_cases(
    session: AsyncSession,
    scope: CaseScope,
    filters: CaseFilters,
    *,
    limit: int,
    offset: int,
    urgent_first: bool = False,
) -> tuple[Sequence[Case], int]:
    """One page of visible cases, newest first (or, `urgent_first`, the overdue ones first,
    then by the next deadline), and how many match in all."""
    where = [scope.predicate()]
    if filters.stage is not None:
        where.append(Case.stage == filters.stage)
    if filters.unit_code is not None:
        where.append(Case.unit_code == filters.unit_code)
    if filters.overdue is not None:
        where.append(Case.overdue.is_(filters.overdue))
    if filters.trigger is not None:
        where.append(Case.trigger == filters.trigger)
    total = await session.scalar(select(func.count()).select_from(Case).where(*where))
    order = (
        (Case.overdue.desc(), nulls_last(Case.next_deadline_on.asc()), Case.opened_at, Case.id)
        if urgent_first
        else (Case.opened_at.desc(), Case.id)
    )
    rows = await session.scalars(
        select(Case).where(*where).order_by(*order).limit(limit).offset(offset)
    )
    return rows.all(), int(total or 0)


def _scope_conditions(
    shape: tuple[bool, bool, bool, bool], values: dict[str, object] | None = None
) -> list[ColumnElement[bool]]:
    """The conditions of a scope of this shape: the one statement of who may see which
    case, for lists and for one case alike. Its parameters (`CaseScope._params`) take
    `values`, or are left to be given at execution."""

    def param(name: str, type_: Any = None) -> BindParameter[Any]:
        if values is None:
            return bindparam(name, type_=type_)
        return bindparam(name, values[name], type_=type_)

    nothing, units, employee, party = shape
    if nothing:
        return [false()]
    conditions: list[ColumnElement[bool]] = []
    if units:
        # An array, not an expanding IN: the statement's SQL is then one for every scope.
        conditions.append(Case.unit_code == any_(param("scope_units", ARRAY(String))))
    if employee:
        conditions.append(Case.employee_pseudonym == param("scope_employee"))
    if party:
        conditions.append(
            exists().where(
                CaseConsent.case_id == Case.id,
                CaseConsent.party == param("scope_party"),
                CaseConsent.given.is_(True),
            )
        )
    return conditions


# One case as a caller may see it: asked by every request about a case, so each statement
# is built once per shape of scope (16 at most), with the scope's values as parameters.
@functools.cache
def _visible_case_statement(shape: tuple[bool, bool, bool, bool]) -> Select[Case]:
    return select(Case).where(Case.id == bindparam("case_id"), *_scope_conditions(shape))


@functools.cache
def _visible_case_ref_statement(shape: tuple[bool, bool, bool, bool]) -> Select[str, str, int]:
    return select(Case.workflow_id, Case.policy_id, Case.policy_version).where(
        Case.id == bindparam("case_id"), *_scope_conditions(shape)
    )


async def visible_case(session: AsyncSession, scope: CaseScope, case_id: uuid.UUID) -> Case | None:
    statement = _visible_case_statement(scope._shape())
    return await session.scalar(statement, {"case_id": case_id} | scope._params())


async def visible_case_ref(conn: Conn, scope: CaseScope, case_id: uuid.UUID) -> Any:
    """What an action needs of a case the caller may see (its workflow and policy), as one
    row: a case action asks this on every request, and loading the whole case as an ORM
    object cost more than the query."""
    statement = _visible_case_ref_statement(scope._shape())
    result = await conn.execute(statement, {"case_id": case_id} | scope._params())
    return result.first()


async def consents_of(session: AsyncSession, case_id: uuid.UUID) -> Sequence[CaseConsent]:
    rows = await session.scalars(
        select(CaseConsent).where(CaseConsent.case_id == case_id).order_by(CaseConsent.party)
    )
    return rows.all()


async def timeline_of(session: AsyncSession, case_id: uuid.UUID) -> Sequence[CaseEvent]:
    rows = await session.scalars(
        select(CaseEvent)
        .where(CaseEvent.case_id == case_id)
        .order_by(CaseEvent.occurred_at, CaseEvent.id)
    )
    return rows.all()


async def pseudonym_by_lookup(session: AsyncSession, pin_lookup: str) -> uuid.UUID | None:
    """The pseudonym of a known employee, without creating one for an unknown number."""
    return await session.scalar(select(Employee.pseudonym).where(Employee.pin_lookup == pin_lookup))


async def meetings_of(session: AsyncSession, case_id: uuid.UUID) -> Sequence[Meeting]:
    rows = await session.scalars(
        select(Meeting).where(Meeting.case_id == case_id).order_by(Meeting.starts_at)
    )
    return rows.all()


async def interventions_of(
    session: AsyncSession,
    case_id: uuid.UUID,
    tracks: Collection[str] | None = None,
    *,
    include_protected: bool = False,
) -> Sequence[CaseIntervention]:
    """The case's interventions, of the given tracks only when `tracks` is given; the
    protected track's (coordinator only) only when asked for."""
    query = select(CaseIntervention).where(CaseIntervention.case_id == case_id)
    if tracks is not None:
        query = query.where(CaseIntervention.track.in_(sorted(tracks)))
    if not include_protected:
        query = query.where(CaseIntervention.protected.is_(False))
    rows = await session.scalars(query.order_by(CaseIntervention.due_on, CaseIntervention.id))
    return rows.all()


async def information_requests_of(
    session: AsyncSession, case_id: uuid.UUID, parties: Collection[str] | None = None
) -> Sequence[CaseInformationRequest]:
    """The case's information requests, to the given parties only when `parties` is given."""
    query = select(CaseInformationRequest).where(CaseInformationRequest.case_id == case_id)
    if parties is not None:
        query = query.where(CaseInformationRequest.party.in_(sorted(parties)))
    rows = await session.scalars(
        query.order_by(CaseInformationRequest.requested_at, CaseInformationRequest.id)
    )
    return rows.all()


async def screenings_of(session: AsyncSession, case_id: uuid.UUID) -> Sequence[Screening]:
    """Restricted (coordinator): scored instruments, totals and bands only."""
    rows = await session.scalars(
        select(Screening).where(Screening.case_id == case_id).order_by(Screening.administered_at)
    )
    return rows.all()


async def violence_disclosures_of(
    session: AsyncSession, case_id: uuid.UUID
) -> Sequence[ViolenceDisclosure]:
    """Restricted (coordinator): when each disclosure was made, and at which meeting."""
    rows = await session.scalars(
        select(ViolenceDisclosure)
        .where(ViolenceDisclosure.case_id == case_id)
        .order_by(ViolenceDisclosure.disclosed_at, ViolenceDisclosure.id)
    )
    return rows.all()


async def next_steps_of(
    session: AsyncSession, case_id: uuid.UUID, tracks: Collection[str] | None = None
) -> Sequence[AgreedNextStepRow]:
    """The next steps agreed at the case's meetings, of the given tracks when given."""
    query = select(AgreedNextStepRow).where(AgreedNextStepRow.case_id == case_id)
    if tracks is not None:
        query = query.where(AgreedNextStepRow.track.in_(sorted(tracks)))
    rows = await session.scalars(query.order_by(AgreedNextStepRow.due_on, AgreedNextStepRow.id))
    return rows.all()


async def deadlines_of(session: AsyncSession, case_id: uuid.UUID) -> Sequence[CaseDeadline]:
    """Every deadline of the case, soonest first: kind, due date, status, when it was met."""
    rows = await session.scalars(
        select(CaseDeadline)
        .where(CaseDeadline.case_id == case_id)
        .order_by(CaseDeadline.due_on, CaseDeadline.kind)
    )
    return rows.all()


@dataclass(frozen=True)
class PayloadOwner:
    """Whom a Temporal payload is about, from the workflow id it is labelled with."""

    case_id: uuid.UUID | None = None  # a case's own workflow, or one of its children
    employee_unit: str | None = None  # an employee's absence monitor: sick-leave data
    operations: bool = False  # a meeting team or the dispatcher: slots and ids, no case content


async def payload_owner(session: AsyncSession, workflow_id: str) -> PayloadOwner:
    """Resolve a payload's workflow id to its case (cases, interventions, requests) or employee."""
    for column, owner_workflow in (
        (Case.id, Case.workflow_id),
        (CaseIntervention.case_id, CaseIntervention.workflow_id),
        (CaseInformationRequest.case_id, CaseInformationRequest.workflow_id),
    ):
        case_id = await session.scalar(select(column).where(owner_workflow == workflow_id))
        if case_id is not None:
            return PayloadOwner(case_id=case_id)
    if workflow_id.startswith((TEAM_WORKFLOW_PREFIX, DISPATCHER_WORKFLOW_ID)):
        return PayloadOwner(operations=True)
    prefix = "absence-"
    if workflow_id.startswith(prefix):
        try:
            pseudonym = uuid.UUID(workflow_id.removeprefix(prefix))
        except ValueError:
            return PayloadOwner()
        unit = await session.scalar(
            select(Employee.unit_code).where(Employee.pseudonym == pseudonym)
        )
        return PayloadOwner(employee_unit=unit)
    return PayloadOwner()

"""Read side of the evaluation: the facts of the cases opened in a period, codes and dates only.

Never read here: identity numbers, contacts, screenings, violence disclosures and the
protected track's interventions (the violence track never appears in a breakdown).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from evaluation.facts import (
    CaseFacts,
    DeadlineFact,
    EventFact,
    InformationRequestFact,
    InterventionFact,
    MeetingFact,
)
from models.actions import SAFETY_SUPPORT_KIND
from models.deadlines import STOCKHOLM
from store.schema import (
    Case,
    CaseDeadline,
    CaseEvent,
    CaseInformationRequest,
    CaseIntervention,
    Employee,
    Meeting,
)

# The only events whose detail the evaluation reads; every other event gives its stage only.
_DETAIL_KINDS = frozenset({"return_to_work_step", "relapse_reported"})
_DETAIL_KEYS = frozenset({"extent", "from_date"})


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=STOCKHOLM).astimezone(UTC)


async def case_facts(session: AsyncSession, first: date, last: date) -> list[CaseFacts]:
    """Every case opened from `first` through `last` (local dates), with its facts."""
    cases = (
        await session.execute(
            select(
                Case.id,
                Case.employee_pseudonym,
                Case.unit_code,
                Case.policy_id,
                Case.policy_version,
                Case.opened_at,
                Case.sick_start,
                Case.stage,
                Case.closed_at,
                Employee.sex,
                Employee.birth_year,
            )
            .join(Employee, Employee.pseudonym == Case.employee_pseudonym)
            .where(
                Case.opened_at >= _local_midnight(first),
                Case.opened_at < _local_midnight(last + timedelta(days=1)),
            )
            .order_by(Case.opened_at, Case.id)
        )
    ).all()
    ids = [row.id for row in cases]
    if not ids:
        return []

    events: dict[uuid.UUID, list[EventFact]] = defaultdict(list)
    for case_id, kind, stage, occurred_at, detail in (
        await session.execute(
            select(
                CaseEvent.case_id,
                CaseEvent.kind,
                CaseEvent.stage,
                CaseEvent.occurred_at,
                CaseEvent.detail,
            )
            .where(CaseEvent.case_id.in_(ids))
            .order_by(CaseEvent.occurred_at, CaseEvent.id)
        )
    ).all():
        kept: dict[str, Any] = (
            {k: v for k, v in detail.items() if k in _DETAIL_KEYS} if kind in _DETAIL_KINDS else {}
        )
        events[case_id].append(EventFact(kind, stage, occurred_at, kept))

    deadlines: dict[uuid.UUID, list[DeadlineFact]] = defaultdict(list)
    for d in (
        await session.scalars(select(CaseDeadline).where(CaseDeadline.case_id.in_(ids)))
    ).all():
        deadlines[d.case_id].append(DeadlineFact(d.kind, d.due_on, d.status, d.met_on))

    meetings: dict[uuid.UUID, list[MeetingFact]] = defaultdict(list)
    for m in (
        await session.scalars(
            select(Meeting).where(Meeting.case_id.in_(ids)).order_by(Meeting.starts_at)
        )
    ).all():
        meetings[m.case_id].append(MeetingFact(m.kind, m.status, m.starts_at, m.reinforced_support))

    interventions: dict[uuid.UUID, list[InterventionFact]] = defaultdict(list)
    for i in (
        await session.scalars(
            select(CaseIntervention).where(
                CaseIntervention.case_id.in_(ids),
                CaseIntervention.protected.is_(False),
                CaseIntervention.kind != SAFETY_SUPPORT_KIND,
            )
        )
    ).all():
        interventions[i.case_id].append(InterventionFact(i.track, i.kind, i.status, i.outcome))

    requests: dict[uuid.UUID, list[InformationRequestFact]] = defaultdict(list)
    for r in (
        await session.scalars(
            select(CaseInformationRequest).where(CaseInformationRequest.case_id.in_(ids))
        )
    ).all():
        requests[r.case_id].append(
            InformationRequestFact(r.party, r.requested_at, r.due_on, r.received_on, r.status)
        )

    return [
        CaseFacts(
            case_id=row.id,
            employee=row.employee_pseudonym,
            unit=row.unit_code,
            policy_id=row.policy_id,
            policy_version=row.policy_version,
            opened_at=row.opened_at,
            sick_start=row.sick_start,
            stage=row.stage,
            closed_at=row.closed_at,
            sex=row.sex,
            birth_year=row.birth_year,
            events=tuple(events[row.id]),
            deadlines=tuple(deadlines[row.id]),
            meetings=tuple(meetings[row.id]),
            interventions=tuple(interventions[row.id]),
            information_requests=tuple(requests[row.id]),
        )
        for row in cases
    ]

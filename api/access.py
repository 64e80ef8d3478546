"""Need-to-know, in one place: which cases a role sees, which fields, which timeline steps.

Object level: `scope_for` turns the caller into a SQL scope, so an invisible case is a 404.
Field level: `case_view` builds the audience's own response model.
Function level: each router names the roles of an endpoint with `require_roles`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Caller
from models.api import (
    CaseForCoordinator,
    CaseForEmployee,
    CaseForFhv,
    CaseForFkOfficer,
    CaseForManager,
    CaseForSocialServices,
    CaseListItem,
    CaseTimeline,
    CaseView,
    ConsentView,
    CoordinatorInterventionView,
    CoordinatorTimelineEntry,
    DeadlineView,
    DisclosureView,
    InformationRequestView,
    InterventionView,
    MeetingView,
    NextStepView,
    Role,
    ScreeningView,
    TimelineEntry,
    TimelineForCoordinator,
    TimelineForParty,
)
from models.case import CaseTrigger, ConsentParty, Stage
from models.case import Track as TrackName
from models.case import events as event_kinds
from models.case.events import SENSITIVE_TRACKS, VISIBLE_TRACKS, Track
from store import case_queries
from store.audit import record_access
from store.case_queries import CaseScope
from store.schema import (
    AgreedNextStepRow,
    Case,
    CaseConsent,
    CaseDeadline,
    CaseEvent,
    CaseInformationRequest,
    CaseIntervention,
    Meeting,
    ViolenceDisclosure,
)

# Roles that read case content at all; admin and hr_system never do.
CASE_READERS = frozenset(
    {
        Role.EMPLOYEE,
        Role.MANAGER,
        Role.COORDINATOR,
        Role.FK_OFFICER,
        Role.FHV,
        Role.SOCIAL_SERVICES,
    }
)


def scope_for(caller: Caller) -> CaseScope:
    match caller.role:
        case Role.COORDINATOR | Role.MANAGER:
            return CaseScope(units=None if caller.all_units else caller.units)
        case Role.EMPLOYEE:
            return CaseScope(employee_pseudonym=caller.employee_pseudonym)
        case Role.FK_OFFICER:
            return CaseScope(consent_party=ConsentParty.FK.value)
        case Role.FHV:
            # DESIGN: "engaged and consented"; engagement is not recorded yet, consent is.
            return CaseScope(consent_party=ConsentParty.FHV.value)
        case Role.SOCIAL_SERVICES:
            return CaseScope(consent_party=ConsentParty.SOCIAL_SERVICES.value)
        case _:
            return CaseScope(nothing=True)


# ---------------------------------------------------------------- the case, per audience

# Reads of these views are written to the access audit: they hold (or will hold) screening,
# violence, medical or social data.
SENSITIVE_CASE_VIEW = {
    Role.COORDINATOR: "case.full",
    Role.FHV: "case.medical",
    Role.SOCIAL_SERVICES: "case.social",
}


def deadline_views(rows: Sequence[CaseDeadline]) -> list[DeadlineView]:
    return [
        DeadlineView(kind=r.kind, due_on=r.due_on, status=r.status, met_on=r.met_on) for r in rows
    ]


def list_item(case: Case) -> CaseListItem:
    return CaseListItem(
        case_id=case.id,
        unit_code=case.unit_code,
        trigger=CaseTrigger(case.trigger),
        stage=Stage(case.stage),
        overdue=case.overdue,
        next_deadline_kind=case.next_deadline_kind,
        next_deadline_on=case.next_deadline_on,
        opened_at=case.opened_at,
        closed_at=case.closed_at,
    )


def _consents(rows: Sequence[CaseConsent]) -> list[ConsentView]:
    return [
        ConsentView(party=ConsentParty(r.party), given=r.given, recorded_at=r.recorded_at)
        for r in rows
    ]


def _meetings(rows: Sequence[Meeting]) -> list[MeetingView]:
    return [
        MeetingView(starts_at=m.starts_at, ends_at=m.ends_at, status=m.status, kind=m.kind)
        for m in rows
    ]


def _interventions(rows: Sequence[CaseIntervention]) -> list[InterventionView]:
    return [
        InterventionView(
            intervention_id=r.id,
            track=TrackName(r.track),
            kind=r.kind,
            owner=r.owner,
            due_on=r.due_on,
            status=r.status,
            outcome=r.outcome,
        )
        for r in rows
    ]


def _coordinator_interventions(
    rows: Sequence[CaseIntervention],
) -> list[CoordinatorInterventionView]:
    return [
        CoordinatorInterventionView(**view.model_dump(), protected=row.protected)
        for view, row in zip(_interventions(rows), rows, strict=True)
    ]


def _next_steps(rows: Sequence[AgreedNextStepRow]) -> list[NextStepView]:
    return [
        NextStepView(
            step_id=r.id,
            track=TrackName(r.track),
            kind=r.kind,
            owner=r.owner,
            due_on=r.due_on,
            planned=r.intervention_id is not None,
        )
        for r in rows
    ]


def _disclosures(rows: Sequence[ViolenceDisclosure]) -> list[DisclosureView]:
    return [
        DisclosureView(
            disclosed_at=r.disclosed_at, at_meeting=r.meeting_id is not None, asked_by=r.asked_by
        )
        for r in rows
    ]


# The intervention (and agreed next-step) tracks each audience sees; None means all of them.
# The protected track's interventions are the coordinator's alone, whatever the track: a role
# given the social track later still does not see them (social services would need the
# employee's social-services consent, and are not a role yet).
INTERVENTION_TRACKS: dict[Role, frozenset[str] | None] = {
    Role.COORDINATOR: None,
    Role.MANAGER: frozenset({TrackName.WORK_ORIENTED.value}),
    Role.FHV: frozenset({TrackName.MEDICAL.value}),
    Role.SOCIAL_SERVICES: frozenset({TrackName.SOCIAL.value}),
}

# The parties whose information requests each audience sees; None means all of them. That
# healthcare or social services were asked reveals a health or social matter, so the
# manager sees only the work-oriented party; occupational health sees what it was asked.
INFORMATION_PARTIES: dict[Role, frozenset[str] | None] = {
    Role.COORDINATOR: None,
    Role.MANAGER: frozenset({ConsentParty.ARBETSFORMEDLINGEN.value}),
    Role.FHV: frozenset({ConsentParty.FHV.value}),
    Role.SOCIAL_SERVICES: frozenset({ConsentParty.SOCIAL_SERVICES.value}),
}


def _information_requests(rows: Sequence[CaseInformationRequest]) -> list[InformationRequestView]:
    return [
        InformationRequestView(
            request_id=r.id,
            party=ConsentParty(r.party),
            due_on=r.due_on,
            status=r.status,
            requested_at=r.requested_at,
            received_on=r.received_on,
        )
        for r in rows
    ]


async def case_view(session: AsyncSession, role: Role, case: Case) -> CaseView:
    """The case as `role` may see it. Each audience loads, and its model lists, only its
    own sections: restricted data is never even read for a role that may not see it."""
    q = case_queries
    core = {
        "case_id": case.id,
        "stage": Stage(case.stage),
        "opened_at": case.opened_at,
        "closed_at": case.closed_at,
    }
    sick_leave = {
        "sick_start": case.sick_start,
        "expected_end": case.expected_end,
        "relapse_count": case.relapse_count,
    }
    deadlines = {
        "next_deadline_kind": case.next_deadline_kind,
        "next_deadline_on": case.next_deadline_on,
    }
    match role:
        case Role.COORDINATOR | Role.MANAGER:
            manager = CaseForManager(
                **core,
                **sick_leave,
                **deadlines,
                unit_code=case.unit_code,
                trigger=CaseTrigger(case.trigger),
                overdue=case.overdue,
                outcome=case.outcome,
                meetings=_meetings(await q.meetings_of(session, case.id)),
                interventions=(
                    []
                    if role is Role.COORDINATOR
                    else _interventions(
                        await q.interventions_of(session, case.id, INTERVENTION_TRACKS[role])
                    )
                ),
                next_steps=_next_steps(
                    await q.next_steps_of(session, case.id, INTERVENTION_TRACKS[role])
                ),
                information_requests=_information_requests(
                    await q.information_requests_of(session, case.id, INFORMATION_PARTIES[role])
                ),
            )
            if role is Role.MANAGER:
                return manager
            disclosures = await q.violence_disclosures_of(session, case.id)
            return CaseForCoordinator(
                **manager.model_dump(exclude={"audience", "interventions"}),
                interventions=_coordinator_interventions(
                    await q.interventions_of(session, case.id, include_protected=True)
                ),
                policy_id=case.policy_id,
                policy_version=case.policy_version,
                consents=_consents(await q.consents_of(session, case.id)),
                screenings=[
                    ScreeningView.model_validate(r, from_attributes=True)
                    for r in await q.screenings_of(session, case.id)
                ],
                violence_disclosed=bool(disclosures),
                violence_disclosures=_disclosures(disclosures),
            )
        case Role.EMPLOYEE:
            return CaseForEmployee(
                **core,
                **deadlines,
                trigger=CaseTrigger(case.trigger),
                consents=_consents(await q.consents_of(session, case.id)),
                meetings=_meetings(await q.meetings_of(session, case.id)),
            )
        case Role.FK_OFFICER:
            return CaseForFkOfficer(
                **core, **sick_leave, meetings=_meetings(await q.meetings_of(session, case.id))
            )
        case Role.SOCIAL_SERVICES:
            return CaseForSocialServices(
                **core,
                interventions=_interventions(
                    await q.interventions_of(session, case.id, INTERVENTION_TRACKS[role])
                ),
                information_requests=_information_requests(
                    await q.information_requests_of(session, case.id, INFORMATION_PARTIES[role])
                ),
                next_steps=_next_steps(
                    await q.next_steps_of(session, case.id, INTERVENTION_TRACKS[role])
                ),
            )
        case Role.FHV:
            return CaseForFhv(
                **core,
                interventions=_interventions(
                    await q.interventions_of(session, case.id, INTERVENTION_TRACKS[role])
                ),
                information_requests=_information_requests(
                    await q.information_requests_of(session, case.id, INFORMATION_PARTIES[role])
                ),
                next_steps=_next_steps(
                    await q.next_steps_of(session, case.id, INTERVENTION_TRACKS[role])
                ),
            )
    raise ValueError(f"role {role} reads no case content")


async def audit_case_read(
    session: AsyncSession, caller: Caller, case_id: uuid.UUID, view: CaseView
) -> None:
    """The access-audit rows of one read of a case, JSON or page alike, added to the read's
    own transaction: if they cannot be written, nothing is shown."""
    if (what := SENSITIVE_CASE_VIEW.get(caller.role)) is not None:
        await _record(session, caller, case_id, what)
    if isinstance(view, CaseForCoordinator) and view.violence_disclosed:
        # The restricted table was read and shown: audited as its own row, so who has seen a
        # disclosure can be answered without reading every full-case view.
        await _record(session, caller, case_id, "violence.read")


async def audit_timeline_read(session: AsyncSession, caller: Caller, case_id: uuid.UUID) -> None:
    if timeline_is_sensitive(caller.role):
        await _record(session, caller, case_id, "timeline.read")


async def _record(session: AsyncSession, caller: Caller, case_id: uuid.UUID, what: str) -> None:
    await record_access(
        await session.connection(),
        subject=caller.subject,
        role=caller.role.value,
        case_id=case_id,
        what=what,
        allowed=True,
    )


# ---------------------------------------------------------------- timeline, per audience


def track_of(event: CaseEvent) -> Track:
    """Which track a step belongs to, by its declared kind (models/case/events.py)."""
    return event_kinds.track_of(event.kind, event.detail)


def timeline_is_sensitive(role: Role) -> bool:
    return bool(VISIBLE_TRACKS.get(role, frozenset()) & SENSITIVE_TRACKS)


def timeline_view(role: Role, case: Case, events: Sequence[CaseEvent]) -> CaseTimeline:
    visible = VISIBLE_TRACKS[role]
    shown = [e for e in events if track_of(e) in visible]
    if role is Role.COORDINATOR:
        return TimelineForCoordinator(
            case_id=case.id,
            entries=[
                CoordinatorTimelineEntry(
                    kind=e.kind, stage=Stage(e.stage), occurred_at=e.occurred_at, detail=e.detail
                )
                for e in shown
            ],
        )
    return TimelineForParty(
        audience=role.value,
        case_id=case.id,
        entries=[
            TimelineEntry(kind=e.kind, stage=Stage(e.stage), occurred_at=e.occurred_at)
            for e in shown
        ],
    )

"""Cases: manual referral, the caller's case list, one case and its timeline, per audience."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NoReturn
from zoneinfo import ZoneInfo

import structlog
from fastapi import APIRouter, Depends, Header, HTTPException, Query, status
from fastapi.responses import JSONResponse
from temporalio.client import WithStartWorkflowOperation, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from api.access import (
    CASE_READERS,
    audit_case_read,
    audit_timeline_read,
    case_view,
    deadline_views,
    list_item,
    scope_for,
    timeline_view,
)
from api.auth import Caller
from api.deps import (
    ContextDep,
    IdentityDep,
    SessionDep,
    SettingsDep,
    TemporalDep,
    audit_refusal,
    require_roles,
)
from api.errors import CaseDidNotAnswer, FieldRejected, answered_within
from core.case_start import WAIT_UNTIL_RECORDED
from core.identity import InvalidPersonalIdentityNumber, parse_personnummer
from models.absence import CaseReferral, MonitorState, monitor_workflow_id
from models.api import (
    CaseConflict,
    CaseCreated,
    CaseDeadlines,
    CasePage,
    CaseTimeline,
    CaseView,
    CreateCaseRequest,
    FindCaseRequest,
    Problem,
    Role,
    SetEmployeeContactRequest,
    UnitCode,
    ValidationProblem,
)
from models.case import CaseTrigger, Stage, case_workflow_id
from store import case_queries
from store import cases as case_store
from store import contacts as contact_store
from store.audit import record_access
from store.employees import pseudonym_for
from store.schema import Unit
from workflows.absence_monitor import AbsenceMonitorWorkflow, new_monitor_input

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])
log = structlog.get_logger(__name__)

# How long a referral waits for the case to record itself before answering anyway.
_RECORD_WAIT_S = 10.0

STOCKHOLM = ZoneInfo("Europe/Stockholm")
_AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No valid bearer token"},
    403: {"model": Problem, "description": "The caller's role may not do this"},
    429: {"model": Problem, "description": "Too many requests from this caller (see Retry-After)"},
}
_NOT_VISIBLE: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No such case, or not visible to you"}
}

Referrer = Annotated[
    Caller,
    Depends(require_roles("case.refer", Role.MANAGER, Role.COORDINATOR, Role.EMPLOYEE)),
]
Reader = Annotated[Caller, Depends(require_roles("case.read", *CASE_READERS))]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CaseCreated,
    summary="Open a case on a manual referral (manager concern or self-referral)",
    description=(
        "A manager refers an employee of an own unit (`manager_concern`); an employee refers "
        "themself (`self_referral`, own number only); a coordinator may do both for an "
        "assigned unit. The personal identity number is validated, mapped to a pseudonym "
        "and stored only encrypted; Temporal never sees it."
    ),
    responses={
        **_AUTH_RESPONSES,
        409: {
            "model": CaseConflict,
            "description": "The employee already has an open case (its id, if yours to see)",
        },
        422: {"model": ValidationProblem, "description": "A field was rejected"},
    },
)
async def create_case(
    body: CreateCaseRequest,
    caller: Referrer,
    context: ContextDep,
    session: SessionDep,
    identity: IdentityDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=8,
            max_length=128,
            pattern=r"^[A-Za-z0-9._:-]+$",
            description="Makes the referral safe to retry: the same key (from the same caller, "
            "for the same request) answers with the same case and never opens a second one.",
        ),
    ] = None,
) -> CaseCreated | JSONResponse:
    try:
        pin = parse_personnummer(body.employee_ref, today=datetime.now(STOCKHOLM).date())
    except InvalidPersonalIdentityNumber as exc:
        raise FieldRejected("employee_ref", exc.reason) from None
    unit = await session.get(Unit, body.unit_code)
    if unit is None:
        raise FieldRejected("unit_code", "no unit with this code is registered")
    if not unit.active:
        raise FieldRejected("unit_code", "the unit is deactivated and takes no new cases")
    if caller.role is Role.EMPLOYEE:
        # Only oneself, and only a self-referral; the number must already be this
        # employee's (compared by lookup hash, nothing is created on a mismatch).
        own = await case_queries.pseudonym_by_lookup(session, identity.lookup_hash(pin))
        if body.trigger is not CaseTrigger.SELF_REFERRAL or own != caller.employee_pseudonym:
            await audit_refusal(context, caller, "case.refer", None)
            raise HTTPException(status.HTTP_403_FORBIDDEN, "an employee may refer only themself")
    elif caller.role is Role.MANAGER and body.trigger is not CaseTrigger.MANAGER_CONCERN:
        await audit_refusal(context, caller, "case.refer", None)
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a manager refers by manager_concern")
    elif not caller.covers_unit(body.unit_code):
        await audit_refusal(context, caller, "case.refer", None)
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the unit is not one of yours")

    pseudonym = await pseudonym_for(session, identity, pin, body.unit_code)
    case_id = _referral_case_id(caller, idempotency_key, pseudonym, body)
    open_case = await case_store.open_case_of(await session.connection(), pseudonym)
    await session.commit()
    if open_case is not None and open_case.id != case_id:
        return await _conflict(session, caller, open_case.id)

    # The employee's monitor is the single writer of open cases: it decides this referral
    # and every absence rule one at a time, so concurrent referrals cannot both open one.
    monitor = WithStartWorkflowOperation(
        AbsenceMonitorWorkflow.run,
        new_monitor_input(MonitorState(employee_pseudonym=pseudonym, unit_code=body.unit_code)),
        id=monitor_workflow_id(pseudonym),
        task_queue=settings.temporal.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary="Absence monitor",
    )
    decided = await answered_within(
        temporal.execute_update_with_start_workflow(
            AbsenceMonitorWorkflow.open_case,
            CaseReferral(
                case_id=case_id,
                unit_code=body.unit_code,
                trigger=body.trigger,
                opened_at=datetime.now(UTC),
            ),
            start_workflow_operation=monitor,
            rpc_timeout=timedelta(seconds=settings.api.update_timeout_s),
        ),
        settings.api.update_timeout_s,
    )
    if not decided.opened:
        return await _conflict(session, caller, decided.case_id)
    if decided.recorded:
        # The opener wrote the case whole (its row, timeline, deadlines, notifications).
        log.info("case opened", workflow_id=case_workflow_id(case_id), trigger=body.trigger.value)
        return CaseCreated(case_id=case_id, stage=Stage.IDENTIFIED)
    try:
        # Opened by an older worker: the case's first activity writes its timeline and
        # notifications; waiting for it means a GET right after this POST finds the whole
        # case, not just its row.
        await answered_within(
            temporal.get_workflow_handle(case_workflow_id(case_id)).execute_update(
                WAIT_UNTIL_RECORDED, rpc_timeout=timedelta(seconds=_RECORD_WAIT_S)
            ),
            _RECORD_WAIT_S,
        )
    except (CaseDidNotAnswer, WorkflowUpdateRPCTimeoutOrCancelledError, RPCError):
        log.warning("case opened but not yet recorded", workflow_id=case_workflow_id(case_id))
    log.info("case opened", workflow_id=case_workflow_id(case_id), trigger=body.trigger.value)
    return CaseCreated(case_id=case_id, stage=Stage.IDENTIFIED)


# Ids of cases opened under an Idempotency-Key derive from it, the caller and the request.
_IDEMPOTENT_CASE_IDS = uuid.UUID("c0b5d3a4-1f2e-4b8a-9e61-3d7a5c2f9b10")


def _referral_case_id(
    caller: Caller, idempotency_key: str | None, pseudonym: uuid.UUID, body: CreateCaseRequest
) -> uuid.UUID:
    """A new id; the same one for a retry under the same Idempotency-Key and request."""
    if idempotency_key is None:
        return uuid.uuid4()
    return uuid.uuid5(
        _IDEMPOTENT_CASE_IDS,
        "\x00".join(
            (
                caller.subject,
                idempotency_key,
                str(pseudonym),
                body.unit_code,
                body.trigger.value,
            )
        ),
    )


async def _conflict(session: SessionDep, caller: Caller, open_case: uuid.UUID) -> JSONResponse:
    # The open case's id goes to callers who may see it; others learn only that it exists.
    visible = await case_queries.visible_case(session, scope_for(caller), open_case)
    await session.commit()
    return JSONResponse(
        status_code=status.HTTP_409_CONFLICT,
        content=CaseConflict(
            detail="the employee already has an open case",
            case_id=open_case if visible is not None else None,
        ).model_dump(mode="json", exclude_none=True),
    )


@router.get(
    "",
    response_model=CasePage,
    summary="The cases the caller may see, filtered and paged, from the record store",
    description=(
        "Coordinators and managers see the cases of their units, FK officers and occupational "
        "health the cases with their consent, an employee the own case. Newest first."
    ),
    responses=_AUTH_RESPONSES,
)
async def list_cases(
    caller: Reader,
    session: SessionDep,
    stage: Annotated[Stage | None, Query(description="Only cases in this stage")] = None,
    unit: Annotated[UnitCode | None, Query(description="Only cases of this unit")] = None,
    overdue: Annotated[bool | None, Query(description="Only (not) overdue cases")] = None,
    trigger: Annotated[CaseTrigger | None, Query(description="Only cases opened so")] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Page size")] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Cases to skip")] = 0,
) -> CasePage:
    rows, total = await case_queries.list_cases(
        session,
        scope_for(caller),
        case_queries.CaseFilters(
            stage=stage.value if stage else None,
            unit_code=unit,
            overdue=overdue,
            trigger=trigger.value if trigger else None,
        ),
        limit=limit,
        offset=offset,
    )
    return CasePage(items=[list_item(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get(
    "/{case_id}",
    response_model=CaseView,
    summary="One case, in the view of the caller's role",
    description=(
        "`audience` names the view. Managers never receive screening results, medical or "
        "social track details or the violence flag; FK officers and occupational health "
        "only their parts. Coordinator and occupational-health reads are written to the "
        "access audit, as is every refused attempt."
    ),
    responses={**_AUTH_RESPONSES, **_NOT_VISIBLE},
)
async def get_case(
    case_id: uuid.UUID, caller: Reader, context: ContextDep, session: SessionDep
) -> CaseView:
    case = await case_queries.visible_case(session, scope_for(caller), case_id)
    if case is None:
        await _refuse_not_visible(context, caller, "case.read", case_id)
    view = await case_view(session, caller.role, case)
    await audit_case_read(session, caller, case_id, view)
    await session.commit()
    return view


@router.get(
    "/{case_id}/timeline",
    response_model=CaseTimeline,
    summary="The case's steps, limited to the tracks the caller's role may see",
    description=(
        "The coordinator sees every step with its detail; the others see the steps of their "
        "tracks without detail (managers: meetings, sick leave, plan, work-oriented; FK: "
        "meetings, sick leave, plan; occupational health: medical). Steps of a kind no rule "
        "knows are shown to the coordinator only."
    ),
    responses={**_AUTH_RESPONSES, **_NOT_VISIBLE},
)
async def get_timeline(
    case_id: uuid.UUID, caller: Reader, context: ContextDep, session: SessionDep
) -> CaseTimeline:
    case = await case_queries.visible_case(session, scope_for(caller), case_id)
    if case is None:
        await _refuse_not_visible(context, caller, "timeline.read", case_id)
    view = timeline_view(caller.role, case, await case_queries.timeline_of(session, case_id))
    await audit_timeline_read(session, caller, case_id)
    await session.commit()
    return view


async def _refuse_not_visible(
    context: ContextDep, caller: Caller, what: str, case_id: uuid.UUID
) -> NoReturn:
    await audit_refusal(context, caller, what, case_id)
    raise HTTPException(status.HTTP_404_NOT_FOUND, "no such case")


_REJECTED: dict[int | str, dict[str, Any]] = {
    422: {"model": ValidationProblem, "description": "A field was rejected"}
}

DeadlineReader = Annotated[
    Caller,
    Depends(require_roles("deadlines.read", Role.COORDINATOR, Role.MANAGER, Role.EMPLOYEE)),
]
Finder = Annotated[Caller, Depends(require_roles("case.find", Role.COORDINATOR, Role.MANAGER))]
ContactSetter = Annotated[
    Caller, Depends(require_roles("employee_contact.set", Role.COORDINATOR, Role.EMPLOYEE))
]


@router.get(
    "/{case_id}/deadlines",
    response_model=CaseDeadlines,
    summary="Every deadline of the case: kind, due date, status (pending, due, overdue, met)",
    description="Coordinators and managers of the case's unit, and the employee.",
    responses={**_AUTH_RESPONSES, **_NOT_VISIBLE, **_REJECTED},
)
async def get_deadlines(
    case_id: uuid.UUID, caller: DeadlineReader, context: ContextDep, session: SessionDep
) -> CaseDeadlines:
    case = await case_queries.visible_case(session, scope_for(caller), case_id)
    if case is None:
        await _refuse_not_visible(context, caller, "deadlines.read", case_id)
    return CaseDeadlines(
        case_id=case_id, items=deadline_views(await case_queries.deadlines_of(session, case_id))
    )


@router.post(
    "/find",
    response_model=CasePage,
    summary="Find an employee's cases from the identity number (sent in the body)",
    description=(
        "The number is sent in the body, never in a URL, so no access log keeps it. Only "
        "cases the caller may see are returned (newest first); every search is written to "
        "the access audit, with the case found (or none)."
    ),
    responses={
        **_AUTH_RESPONSES,
        422: {"model": ValidationProblem, "description": "Not a valid identity number"},
    },
)
async def find_case(
    body: FindCaseRequest,
    caller: Finder,
    session: SessionDep,
    identity: IdentityDep,
) -> CasePage:
    try:
        pin = parse_personnummer(body.employee_ref, today=datetime.now(STOCKHOLM).date())
    except InvalidPersonalIdentityNumber as exc:
        raise FieldRejected("employee_ref", exc.reason) from None
    pseudonym = await case_queries.pseudonym_by_lookup(session, identity.lookup_hash(pin))
    rows: list[Any] = []
    if pseudonym is not None:
        found, _ = await case_queries.list_cases(
            session,
            case_queries.CaseScope(units=scope_for(caller).units, employee_pseudonym=pseudonym),
            case_queries.CaseFilters(),
            limit=50,
            offset=0,
        )
        rows = list(found)
    for case in rows or [None]:
        await record_access(
            await session.connection(),
            subject=caller.subject,
            role=caller.role.value,
            case_id=case.id if case is not None else None,
            what="case.find",
            allowed=True,
        )
    await session.commit()
    return CasePage(items=[list_item(r) for r in rows], total=len(rows), limit=50, offset=0)


@router.put(
    "/{case_id}/employee-contact",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Set where the employee's notifications go (stored encrypted)",
    description=(
        "The coordinator of the case's unit, or the employee for the own case. The address "
        "is encrypted in the record store and never returned by the API."
    ),
    responses={**_AUTH_RESPONSES, **_NOT_VISIBLE, **_REJECTED},
)
async def set_employee_contact(
    case_id: uuid.UUID,
    body: SetEmployeeContactRequest,
    caller: ContactSetter,
    context: ContextDep,
    session: SessionDep,
) -> None:
    case = await case_queries.visible_case(session, scope_for(caller), case_id)
    if case is None:
        await _refuse_not_visible(context, caller, "employee_contact.set", case_id)
    assert context.contacts is not None
    await contact_store.set_employee_contact(
        session,
        context.contacts,
        employee_pseudonym=case.employee_pseudonym,
        channel=body.channel,
        address=body.address,
        language=body.language,
    )
    await record_access(
        await session.connection(),
        subject=caller.subject,
        role=caller.role.value,
        case_id=case_id,
        what="employee_contact.set",
        allowed=True,
    )
    await session.commit()

"""Cases: manual referral and reading a case from the record store."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import structlog
from fastapi import APIRouter, HTTPException, status
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.service import RPCError

from api.deps import IdentityDep, SessionDep, SettingsDep, TemporalDep
from api.errors import FieldRejected
from core.identity import InvalidPersonalIdentityNumber, parse_personnummer
from models.api import CaseCreated, CaseSummary, CreateCaseRequest, Problem, ValidationProblem
from models.case import CaseInput, Stage, case_workflow_id
from models.search_attributes import REHAB_STAGE, REHAB_UNIT
from store import cases as case_store
from store.employees import pseudonym_for
from workflows.rehab_case import RehabCaseWorkflow

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])
log = structlog.get_logger(__name__)

STOCKHOLM = ZoneInfo("Europe/Stockholm")
# How long a referral waits for the worker to record the case before answering anyway.
_RECORD_WAIT_S = 10.0


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CaseCreated,
    summary="Open a case on a manual referral (manager concern or self-referral)",
    responses={
        409: {"model": Problem, "description": "The employee already has an open case"},
        422: {"model": ValidationProblem, "description": "A field was rejected"},
    },
)
async def create_case(
    body: CreateCaseRequest,
    session: SessionDep,
    identity: IdentityDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> CaseCreated:
    try:
        pin = parse_personnummer(body.employee_ref, today=datetime.now(STOCKHOLM).date())
    except InvalidPersonalIdentityNumber as exc:
        raise FieldRejected("employee_ref", exc.reason) from None
    if not await case_store.unit_exists(session, body.unit_code):
        raise FieldRejected("unit_code", "no unit with this code is registered")

    pseudonym = await pseudonym_for(session, identity, pin, body.unit_code)
    if await case_store.open_case_of(session, pseudonym) is not None:
        await session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "the employee already has an open case")
    await session.commit()

    case_id = uuid.uuid4()
    workflow_id = case_workflow_id(case_id)
    handle = await temporal.start_workflow(
        RehabCaseWorkflow.run,
        CaseInput(
            case_id=case_id,
            employee_pseudonym=pseudonym,
            unit_code=body.unit_code,
            trigger=body.trigger,
            opened_at=datetime.now(UTC),
        ),
        id=workflow_id,
        task_queue=settings.temporal.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(REHAB_STAGE, Stage.IDENTIFIED.value),
                SearchAttributePair(REHAB_UNIT, body.unit_code),
            ]
        ),
        static_summary=f"Rehabilitation case · unit {body.unit_code} · {body.trigger.value}",
    )
    try:
        # The record store is written by the workflow's first activity; waiting for it
        # means a GET right after this POST finds the case.
        await asyncio.wait_for(
            handle.execute_update(RehabCaseWorkflow.wait_until_recorded), _RECORD_WAIT_S
        )
    except (TimeoutError, RPCError):
        log.warning("case started but not yet recorded", workflow_id=workflow_id)
    log.info("case opened", workflow_id=workflow_id, trigger=body.trigger.value)
    return CaseCreated(case_id=case_id, stage=Stage.IDENTIFIED)


@router.get(
    "/{case_id}",
    response_model=CaseSummary,
    summary="One case as the record store holds it",
    responses={404: {"model": Problem, "description": "No such case"}},
)
async def get_case(case_id: uuid.UUID, session: SessionDep) -> CaseSummary:
    case = await case_store.get_case(session, case_id)
    if case is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such case")
    return CaseSummary(
        case_id=case.id,
        unit_code=case.unit_code,
        trigger=case.trigger,
        stage=case.stage,
        opened_at=case.opened_at,
        closed_at=case.closed_at,
    )

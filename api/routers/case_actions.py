"""Case actions: `POST /api/v1/cases/{case_id}/<action>`, each mapped to a workflow update.

`execute_case_action` is the one path every action takes: function level (role, and for
some actions the track in the body), object level (a case the caller may not see is 404),
the access audit for sensitive actions, then `execute_update`. A validator's rejection is
409 with the workflow's reason; the case does not change.

Every action declared in models/case/actions.py gets its route here. (No `from __future__
import annotations` here: `expose` builds endpoints whose body type is a runtime value
FastAPI must see.)
"""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.access import scope_for
from api.auth import Caller
from api.deps import CallerDep, ContextDep, audit_refusal
from api.errors import FieldRejected, answered_within
from models.actions import CaseActionResult
from models.api import ActionAccepted, Problem, Role, ValidationProblem
from models.case import Track
from models.case.actions import (
    ACTIONS,
    OWN_INTERVENTION_TRACK,
    OWN_REQUEST_PARTY,
    ActionDeclaration,
)
from models.deadlines import STOCKHOLM
from models.instruments import InvalidAnswers
from models.plausible_dates import implausible_dates
from models.policy import get_policy
from models.screening import (
    Registry,
    SubmitFollowUpMeeting,
    SubmitMeetingOutcome,
    SubmitScreening,
    refuse_repeated_keys,
)
from store import case_queries, direct
from store.audit import record_access
from store.schema import CaseInformationRequest, CaseIntervention

router = APIRouter(prefix="/api/v1/cases", tags=["case actions"])

# Function level by body: (caller, body, session, case_id) -> may this caller do it?
BodyCheck = Callable[[Caller, Any, AsyncSession, uuid.UUID], Awaitable[bool]]
# A request body that is not the update's input (answers in, scores out) is turned into it,
# with the API's instruments; InvalidAnswers (field and reason, never the value) is a 422.
Prepare = Callable[[Any, Registry], BaseModel]


@dataclass(frozen=True)
class CaseAction:
    """One human action on a case: the workflow update it runs and who may run it."""

    update: str  # the workflow update's name
    input_model: type[BaseModel]
    roles: frozenset[Role]
    # Sensitive actions (screening, medical/social track, violence) are audited.
    sensitive: bool = False
    # Extra rules for roles that may take the action only for some bodies (e.g. a track).
    body_check: BodyCheck | None = None
    # Roles the body check does not apply to (they may take every form of the action).
    unrestricted: frozenset[Role] = field(default_factory=lambda: frozenset({Role.COORDINATOR}))
    prepare: Prepare | None = None


async def execute_case_action(
    action: CaseAction,
    case_id: uuid.UUID,
    body: BaseModel,
    caller: Caller,
    context: ContextDep,
) -> ActionAccepted:
    """Authorise, audit and run one case action; see the module docstring."""
    what = f"action.{action.update}"
    if caller.role not in action.roles:
        await audit_refusal(context, caller, what, case_id)
        raise HTTPException(status.HTTP_403_FORBIDDEN, "your role may not take this action")
    # Reads and at most one audit row, each committing on its own, on a connection that
    # goes back to the pool before the wait on Temporal.
    async with direct.connect(context.sessionmaker) as conn:
        case = await case_queries.visible_case_ref(conn, scope_for(caller), case_id)
        if case is None:
            await audit_refusal(context, caller, what, case_id)
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such case")
        # Dates outside the case policy's plausible windows, against the server's date: the
        # workflow would take them as they are, into the append-only timeline.
        windows = get_policy(case.policy_id, case.policy_version).date_windows
        implausible = implausible_dates(body, windows, datetime.now(STOCKHOLM).date())
        if implausible:
            raise FieldRejected(implausible[0].field, implausible[0].reason)
        if (
            action.body_check is not None
            and caller.role not in action.unrestricted
            and not await _passes(action.body_check, caller, body, context, case_id)
        ):
            await audit_refusal(context, caller, what, case_id)
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, "your role may not take this action here"
            )
        update_input = body
        if action.prepare is not None:
            try:
                update_input = action.prepare(body, context.instruments)
            except InvalidAnswers as invalid:
                raise FieldRejected(invalid.field, invalid.reason) from None
        if action.sensitive:
            await record_access(
                conn,
                subject=caller.subject,
                role=caller.role.value,
                case_id=case_id,
                what=what,
                allowed=True,
            )

    handle = context.temporal.get_workflow_handle(case.workflow_id)
    try:
        result = await answered_within(
            handle.execute_update(
                action.update,
                update_input,
                result_type=CaseActionResult,
                rpc_timeout=timedelta(seconds=context.settings.api.update_timeout_s),
            ),
            context.settings.api.update_timeout_s,
        )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        reason = cause.message if isinstance(cause, ApplicationError) else "the action was rejected"
        raise HTTPException(status.HTTP_409_CONFLICT, reason) from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise HTTPException(
                status.HTTP_409_CONFLICT, "the case no longer takes actions"
            ) from None
        raise
    return ActionAccepted(
        case_id=case_id,
        action=action.update,
        stage=result.stage,
        created_ids=list(result.created_ids),
    )


# ---------------------------------------------------------------- who may do what


async def _passes(
    check: BodyCheck, caller: Caller, body: Any, context: ContextDep, case_id: uuid.UUID
) -> bool:
    """A body check, with a session of its own: only some roles' actions need one."""
    async with context.autocommit() as session:
        return await check(caller, body, session, case_id)


async def _intervention_track_is_own(
    caller: Caller, body: Any, session: AsyncSession, case_id: uuid.UUID
) -> bool:
    track = getattr(getattr(body, "intervention", None), "track", None)
    if track is None:  # complete/cancel name an existing intervention by id
        stored = await session.scalar(
            select(CaseIntervention.track).where(
                CaseIntervention.id == body.intervention_id, CaseIntervention.case_id == case_id
            )
        )
        track = Track(stored) if stored is not None else None
    return track == OWN_INTERVENTION_TRACK.get(caller.role)


async def _request_is_to_caller(
    caller: Caller, body: Any, session: AsyncSession, case_id: uuid.UUID
) -> bool:
    """A party records the responses to the requests sent to it (OWN_REQUEST_PARTY), no others."""
    party = await session.scalar(
        select(CaseInformationRequest.party).where(
            CaseInformationRequest.id == body.request_id,
            CaseInformationRequest.case_id == case_id,
        )
    )
    return party is not None and party == OWN_REQUEST_PARTY.get(caller.role)


_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No valid bearer token"},
    403: {"model": Problem, "description": "The caller's role may not take this action"},
    404: {"model": Problem, "description": "No such case, or not visible to you"},
    409: {"model": Problem, "description": "The case's workflow rejected the action (reason)"},
    422: {"model": ValidationProblem, "description": "A field was rejected"},
    429: {"model": Problem, "description": "Too many requests from this caller"},
}


def expose(action: CaseAction, summary: str) -> CaseAction:
    """Add `POST /api/v1/cases/{case_id}/<update-with-dashes>` for `action`."""
    body_model = action.input_model

    async def endpoint(
        request: Request,
        case_id: uuid.UUID,
        body: body_model,  # type: ignore[valid-type]
        caller: CallerDep,
        context: ContextDep,
    ) -> ActionAccepted:
        if action.prepare is not None:
            # Answers: an item answered twice must not be decided by the parser.
            try:
                refuse_repeated_keys(await request.body())
            except InvalidAnswers as invalid:
                raise FieldRejected(invalid.field, invalid.reason) from None
        return await execute_case_action(action, case_id, body, caller, context)

    endpoint.__name__ = action.update
    roles = ", ".join(sorted(r.value for r in action.roles))
    router.add_api_route(
        f"/{{case_id}}/{action.update.replace('_', '-')}",
        endpoint,
        methods=["POST"],
        response_model=ActionAccepted,
        summary=summary,
        description=f"Runs the case workflow's update `{action.update}`. Roles: {roles}."
        + (" Written to the access audit." if action.sensitive else "")
        + (
            " Managers and occupational health only for their own track."
            if action.body_check is _intervention_track_is_own
            else ""
        )
        + (
            " Social services only for the requests sent to them."
            if action.body_check is _request_is_to_caller
            else ""
        ),
        responses=_RESPONSES,
        operation_id=action.update,
    )
    return action


def _to_update(
    body: SubmitScreening | SubmitMeetingOutcome | SubmitFollowUpMeeting, registry: Registry
) -> BaseModel:
    return body.to_update(registry)


def _case_action(declared: ActionDeclaration) -> CaseAction:
    return CaseAction(
        declared.name,
        declared.body,
        declared.roles,
        sensitive=declared.sensitive,
        body_check=(
            _intervention_track_is_own
            if declared.own_track_only
            else _request_is_to_caller
            if declared.own_requests_only
            else None
        ),
        prepare=_to_update if declared.body_model is not None else None,
    )


# One route per declared action (models/case/actions.py), in the declared order.
CASE_ACTIONS: dict[str, CaseAction] = {
    declared.name: expose(_case_action(declared), declared.summary) for declared in ACTIONS
}

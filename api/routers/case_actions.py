"""Case actions: `POST /api/v1/cases/{case_id}/<action>`, each mapped to a workflow update.

`execute_case_action` is the one path every action takes: function level (role, and for
some actions the track in the body), object level (a case the caller may not see is 404),
the access audit for sensitive actions, then `execute_update`. A validator's rejection is
409 with the workflow's reason; the case does not change.

Exposing an action is one `expose(...)` line. (No `from __future__ import annotations`
here: `expose` builds endpoints whose body type is a runtime value FastAPI must see.)
"""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
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
from api.deps import CallerDep, ContextDep, SessionDep, audit_refusal
from api.errors import FieldRejected
from models.actions import (
    AddIntervention,
    BookJointMeeting,
    CancelIntervention,
    CaseActionResult,
    CloseCase,
    CompleteIntervention,
    RecordConsent,
    RecordDeadlineMet,
    RecordReturnToWorkStep,
    ReportSickLeave,
    SetPlan,
    SetSickLeave,
)
from models.api import ActionAccepted, Problem, Role, ValidationProblem
from models.case import ConsentParty, Track
from models.information_requests import (
    CancelInformationRequest,
    RecordInformationResponse,
    RequestInformation,
)
from models.instruments import InvalidAnswers
from models.meetings import CancelMeeting, ChooseFhv, RecordNoShow, RescheduleMeeting
from models.screening import (
    Registry,
    SubmitFollowUpMeeting,
    SubmitMeetingOutcome,
    SubmitScreening,
    refuse_repeated_keys,
)
from store import case_queries
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
    session: AsyncSession,
) -> ActionAccepted:
    """Authorise, audit and run one case action; see the module docstring."""
    what = f"action.{action.update}"
    if caller.role not in action.roles:
        await audit_refusal(context, caller, what, case_id)
        raise HTTPException(status.HTTP_403_FORBIDDEN, "your role may not take this action")
    case = await case_queries.visible_case(session, scope_for(caller), case_id)
    if case is None:
        await audit_refusal(context, caller, what, case_id)
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such case")
    if (
        action.body_check is not None
        and caller.role not in action.unrestricted
        and not await action.body_check(caller, body, session, case_id)
    ):
        await audit_refusal(context, caller, what, case_id)
        raise HTTPException(status.HTTP_403_FORBIDDEN, "your role may not take this action here")
    update_input = body
    if action.prepare is not None:
        try:
            update_input = action.prepare(body, context.instruments)
        except InvalidAnswers as invalid:
            raise FieldRejected(invalid.field, invalid.reason) from None
    if action.sensitive:
        await record_access(
            session,
            subject=caller.subject,
            role=caller.role.value,
            case_id=case_id,
            what=what,
            allowed=True,
        )
    # End the read transaction (with its audit row) before waiting on Temporal.
    await session.commit()

    handle = context.temporal.get_workflow_handle(case.workflow_id)
    try:
        result = await handle.execute_update(
            action.update,
            update_input,
            result_type=CaseActionResult,
            rpc_timeout=timedelta(seconds=context.settings.api.update_timeout_s),
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
    return track == _OWN_TRACK.get(caller.role)


_OWN_TRACK = {Role.MANAGER: Track.WORK_ORIENTED, Role.FHV: Track.MEDICAL}


async def _request_is_to_caller(
    caller: Caller, body: Any, session: AsyncSession, case_id: uuid.UUID
) -> bool:
    """Social services record the responses to the requests sent to them, no others."""
    party = await session.scalar(
        select(CaseInformationRequest.party).where(
            CaseInformationRequest.id == body.request_id,
            CaseInformationRequest.case_id == case_id,
        )
    )
    return party is not None and party == _OWN_PARTY.get(caller.role)


_OWN_PARTY = {Role.SOCIAL_SERVICES: ConsentParty.SOCIAL_SERVICES.value}
_C, _M, _E, _FK, _FHV = Role.COORDINATOR, Role.MANAGER, Role.EMPLOYEE, Role.FK_OFFICER, Role.FHV
_SOC = Role.SOCIAL_SERVICES
_TRACK_ROLES = frozenset({_C, _M, _FHV})

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
        session: SessionDep,
    ) -> ActionAccepted:
        if action.prepare is not None:
            # Answers: an item answered twice must not be decided by the parser.
            try:
                refuse_repeated_keys(await request.body())
            except InvalidAnswers as invalid:
                raise FieldRejected(invalid.field, invalid.reason) from None
        return await execute_case_action(action, case_id, body, caller, context, session)

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


RECORD_CONSENT = expose(
    CaseAction("record_consent", RecordConsent, frozenset({_C, _E})),
    "Give or withdraw the employee's consent for an outside party",
)
BOOK_JOINT_MEETING = expose(
    CaseAction("book_joint_meeting", BookJointMeeting, frozenset({_C})), "Book the joint meeting"
)


def _to_update(
    body: SubmitScreening | SubmitMeetingOutcome | SubmitFollowUpMeeting, registry: Registry
) -> BaseModel:
    return body.to_update(registry)


RECORD_MEETING_OUTCOME = expose(
    CaseAction(
        "record_meeting_outcome",
        SubmitMeetingOutcome,
        frozenset({_C, _FK}),
        sensitive=True,
        prepare=_to_update,
    ),
    "Record the joint meeting: attendance, needs per track, next steps, the questions asked",
)
RECORD_FOLLOW_UP_MEETING = expose(
    CaseAction(
        "record_follow_up_meeting",
        SubmitFollowUpMeeting,
        frozenset({_C, _M, _FK, _FHV}),
        sensitive=True,
        prepare=_to_update,
    ),
    "Record a follow-up meeting: attendance, who held it, the questions asked again",
)
RECORD_SCREENING_RESULT = expose(
    CaseAction(
        "record_screening_result",
        SubmitScreening,
        frozenset({_C, _E}),
        sensitive=True,
        prepare=_to_update,
    ),
    "Submit the intake screening's answers; the server scores them",
)
SET_PLAN = expose(
    CaseAction("set_plan", SetPlan, frozenset({_C}), sensitive=True),
    "Set or revise the return-to-work plan",
)
ADD_INTERVENTION = expose(
    CaseAction(
        "add_intervention",
        AddIntervention,
        _TRACK_ROLES,
        sensitive=True,
        body_check=_intervention_track_is_own,
    ),
    "Add an intervention to the plan",
)
COMPLETE_INTERVENTION = expose(
    CaseAction(
        "complete_intervention",
        CompleteIntervention,
        _TRACK_ROLES,
        sensitive=True,
        body_check=_intervention_track_is_own,
    ),
    "Complete an intervention with its outcome",
)
CANCEL_INTERVENTION = expose(
    CaseAction(
        "cancel_intervention",
        CancelIntervention,
        _TRACK_ROLES,
        sensitive=True,
        body_check=_intervention_track_is_own,
    ),
    "Cancel an open intervention",
)
RECORD_RETURN_TO_WORK_STEP = expose(
    CaseAction("record_return_to_work_step", RecordReturnToWorkStep, frozenset({_C, _M})),
    "Record a graded return to work (25/50/75/100%)",
)
REPORT_SICK_LEAVE = expose(
    CaseAction("report_sick_leave", ReportSickLeave, frozenset({_C, _M})),
    "Report new sick leave after the return to work (a relapse)",
)
SET_SICK_LEAVE = expose(
    CaseAction("set_sick_leave", SetSickLeave, frozenset({_C, _M})),
    "Record or correct the sick leave's start and expected end",
)
RECORD_DEADLINE_MET = expose(
    CaseAction("record_deadline_met", RecordDeadlineMet, frozenset({_C, _M})),
    "Record that a deadline's obligation was fulfilled",
)
CLOSE_CASE = expose(
    CaseAction("close_case", CloseCase, frozenset({_C})), "Close the case with its outcome"
)
# Information requests: coordinator only, audited (which party was asked may reveal health
# or social matters). A request needs the employee's consent for the party, else 409.
REQUEST_INFORMATION = expose(
    CaseAction("request_information", RequestInformation, frozenset({_C}), sensitive=True),
    "Request information from an outside party (needs the employee's consent for it)",
)
RECORD_INFORMATION_RESPONSE = expose(
    CaseAction(
        "record_information_response",
        RecordInformationResponse,
        frozenset({_C, _SOC}),
        sensitive=True,
        body_check=_request_is_to_caller,
    ),
    "Record that the response to an information request was received",
)
CANCEL_INFORMATION_REQUEST = expose(
    CaseAction(
        "cancel_information_request", CancelInformationRequest, frozenset({_C}), sensitive=True
    ),
    "Cancel an open information request",
)

# Joint meetings booked through the unit's team (issue 7, meeting slots).
RESCHEDULE_MEETING = expose(
    CaseAction("reschedule_meeting", RescheduleMeeting, frozenset({_C})),
    "Move the joint meeting to the team's next slot with room (same calendar event)",
)
CANCEL_MEETING = expose(
    CaseAction("cancel_meeting", CancelMeeting, frozenset({_C})),
    "Call the joint meeting off: the slot is released and every invitee gets a cancellation",
)
RECORD_NO_SHOW = expose(
    CaseAction("record_no_show", RecordNoShow, frozenset({_C})),
    "The employee did not come: counted, and a team meeting is rebooked",
)
CHOOSE_FHV = expose(
    CaseAction("choose_fhv", ChooseFhv, frozenset({_C, _M})),
    "The employer's choice whether occupational health takes part in the joint meeting",
)

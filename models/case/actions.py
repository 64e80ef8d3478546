"""Every human action on a case, declared once.

A declaration names the workflow update, its input model (models/actions.py and friends),
the HTTP body when it differs (answers that the API scores), the roles that may take it,
its need-to-know track, the deadlines it meets, where in the case it fits, and its titles.
From it are derived: the API route and its OpenAPI text (api/routers/case_actions.py), the
workflow update (the one dynamic handler of workflows/rehab_case.py reads its input model
here), the access rules of the events it records (models/case/events.py) and the README's
action table (checked by a unit test).

Adding an action: one declaration here and its rule in models/case/rules.py. Pure: no I/O,
safe inside the workflow sandbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel

from models.actions import (
    AddIntervention,
    BookJointMeeting,
    CancelIntervention,
    CloseCase,
    CompleteIntervention,
    RecordConsent,
    RecordDeadlineMet,
    RecordFollowUpMeeting,
    RecordMeetingOutcome,
    RecordReturnToWorkStep,
    RecordScreeningResult,
    ReportSickLeave,
    SetPlan,
    SetSickLeave,
)
from models.api import Role
from models.case import Track as InterventionTrack
from models.case.events import Track
from models.information_requests import (
    CancelInformationRequest,
    RecordInformationResponse,
    RequestInformation,
)
from models.meetings import CancelMeeting, ChooseFhv, RecordNoShow, RescheduleMeeting
from models.screening import SubmitFollowUpMeeting, SubmitMeetingOutcome, SubmitScreening

_C, _M, _E, _FK, _FHV = Role.COORDINATOR, Role.MANAGER, Role.EMPLOYEE, Role.FK_OFFICER, Role.FHV

# Roles that may take an intervention action only in their own intervention track.
OWN_INTERVENTION_TRACK: Mapping[Role, InterventionTrack] = {
    Role.MANAGER: InterventionTrack.WORK_ORIENTED,
    Role.FHV: InterventionTrack.MEDICAL,
}
# Roles that may record information responses only to the requests sent to their party.
OWN_REQUEST_PARTY: Mapping[Role, str] = {Role.SOCIAL_SERVICES: "social_services"}


@dataclass(frozen=True)
class ActionDeclaration:
    """One case action: everything the API, the workflow and the docs need to agree on."""

    name: str  # the workflow update's name; the route is its name with dashes
    title: str  # a human title for pages and buttons
    summary: str  # the OpenAPI summary
    input_model: type[BaseModel]  # what the workflow update takes
    roles: frozenset[Role]
    track: Track  # the need-to-know track of the action and its main event
    fits: str  # where in the case it fits (the README's "allowed" column)
    # The deadline kinds (of any policy) this action meets when it is taken.
    meets: tuple[str, ...] = ()
    # The HTTP body when it is not the input: answers, which the API scores into the input.
    body_model: type[BaseModel] | None = None
    # Screening, medical/social track, violence: written to the access audit.
    sensitive: bool = False
    # Roles in OWN_INTERVENTION_TRACK may take it only for their own track's interventions.
    own_track_only: bool = False
    # Roles in OWN_REQUEST_PARTY may take it only for the requests sent to their party.
    own_requests_only: bool = False

    @property
    def path(self) -> str:
        return "/" + self.name.replace("_", "-")

    @property
    def body(self) -> type[BaseModel]:
        return self.body_model or self.input_model


_TRACK_ROLES = frozenset({_C, _M, _FHV})

ACTIONS: tuple[ActionDeclaration, ...] = (
    ActionDeclaration(
        "record_consent",
        "Record consent",
        "Give or withdraw the employee's consent for an outside party",
        RecordConsent,
        frozenset({_C, _E}),
        Track.CONSENT,
        "open case; withdrawing uninvites the party from the booked meeting",
    ),
    ActionDeclaration(
        "book_joint_meeting",
        "Book the joint meeting",
        "Book the joint meeting",
        BookJointMeeting,
        frozenset({_C}),
        Track.MEETING,
        "identified, joint_meeting (rebooking); invited outside parties need consent; "
        "back-registration up to the policy's bound in the past",
    ),
    ActionDeclaration(
        "record_meeting_outcome",
        "Record the meeting outcome",
        "Record the joint meeting: attendance, needs per track, next steps, the questions asked",
        RecordMeetingOutcome,
        frozenset({_C, _FK}),
        Track.MEETING,
        "joint_meeting, after the meeting started",
        meets=("dialogue_meeting_1",),
        body_model=SubmitMeetingOutcome,
        sensitive=True,
    ),
    ActionDeclaration(
        "record_follow_up_meeting",
        "Record a follow-up meeting",
        "Record a follow-up meeting: attendance, who held it, the questions asked again",
        RecordFollowUpMeeting,
        frozenset({_C, _M, _FK, _FHV}),
        Track.MEETING,
        "interventions, return_to_work, once the meeting started",
        body_model=SubmitFollowUpMeeting,
        sensitive=True,
    ),
    ActionDeclaration(
        "record_screening_result",
        "Submit the screening",
        "Submit the intake screening's answers; the server scores them",
        RecordScreeningResult,
        frozenset({_C, _E}),
        Track.SCREENING,
        "screening",
        body_model=SubmitScreening,
        sensitive=True,
    ),
    ActionDeclaration(
        "set_plan",
        "Set the return-to-work plan",
        "Set or revise the return-to-work plan",
        SetPlan,
        frozenset({_C}),
        Track.PLAN,
        "planning; revises in interventions/return_to_work",
        meets=("return_to_work_plan", "follow_up_plan"),
        sensitive=True,
    ),
    ActionDeclaration(
        "add_intervention",
        "Add an intervention",
        "Add an intervention to the plan",
        AddIntervention,
        _TRACK_ROLES,
        Track.PLAN,
        "interventions, return_to_work",
        sensitive=True,
        own_track_only=True,
    ),
    ActionDeclaration(
        "complete_intervention",
        "Complete an intervention",
        "Complete an intervention with its outcome",
        CompleteIntervention,
        _TRACK_ROLES,
        Track.PLAN,
        "an open intervention",
        sensitive=True,
        own_track_only=True,
    ),
    ActionDeclaration(
        "cancel_intervention",
        "Cancel an intervention",
        "Cancel an open intervention",
        CancelIntervention,
        _TRACK_ROLES,
        Track.PLAN,
        "an open intervention",
        sensitive=True,
        own_track_only=True,
    ),
    ActionDeclaration(
        "record_return_to_work_step",
        "Record a return-to-work step",
        "Record a graded return to work (25/50/75/100%)",
        RecordReturnToWorkStep,
        frozenset({_C, _M}),
        Track.WORK,
        "interventions, return_to_work; 25/50/75/100 %, rising",
    ),
    ActionDeclaration(
        "report_sick_leave",
        "Report new sick leave",
        "Report new sick leave after the return to work (a relapse)",
        ReportSickLeave,
        frozenset({_C, _M}),
        Track.SICK_LEAVE,
        "after the full return, inside the follow-up window",
    ),
    ActionDeclaration(
        "set_sick_leave",
        "Set the sick leave",
        "Record or correct the sick leave's start and expected end",
        SetSickLeave,
        frozenset({_C, _M}),
        Track.SICK_LEAVE,
        "open case before the full return",
    ),
    ActionDeclaration(
        "record_deadline_met",
        "Record a deadline as met",
        "Record that a deadline's obligation was fulfilled",
        RecordDeadlineMet,
        frozenset({_C, _M}),
        Track.DEADLINE,
        "an unmet deadline of the case (any kind, named in the input)",
    ),
    ActionDeclaration(
        "close_case",
        "Close the case",
        "Close the case with its outcome",
        CloseCase,
        frozenset({_C}),
        Track.GENERAL,
        "open case; `returned_*`/`new_*` outcomes need the full return",
    ),
    # Information requests: coordinator only, audited (which party was asked may reveal
    # health or social matters). A request needs the employee's consent for the party.
    ActionDeclaration(
        "request_information",
        "Request information",
        "Request information from an outside party (needs the employee's consent for it)",
        RequestInformation,
        frozenset({_C}),
        Track.RESTRICTED,
        "joint_meeting through return_to_work; needs the employee's consent for the party",
        sensitive=True,
    ),
    ActionDeclaration(
        "record_information_response",
        "Record an information response",
        "Record that the response to an information request was received",
        RecordInformationResponse,
        frozenset({_C, Role.SOCIAL_SERVICES}),
        Track.RESTRICTED,
        "an open information request",
        sensitive=True,
        own_requests_only=True,
    ),
    ActionDeclaration(
        "cancel_information_request",
        "Cancel an information request",
        "Cancel an open information request",
        CancelInformationRequest,
        frozenset({_C}),
        Track.RESTRICTED,
        "an open information request",
        sensitive=True,
    ),
    # Joint meetings booked through the unit's team.
    ActionDeclaration(
        "reschedule_meeting",
        "Reschedule the meeting",
        "Move the joint meeting to the team's next slot with room (same calendar event)",
        RescheduleMeeting,
        frozenset({_C}),
        Track.MEETING,
        "joint_meeting booked by the team, before it starts",
    ),
    ActionDeclaration(
        "cancel_meeting",
        "Cancel the meeting",
        "Call the joint meeting off: the slot is released and every invitee gets a cancellation",
        CancelMeeting,
        frozenset({_C}),
        Track.MEETING,
        "joint_meeting not yet held, or waiting for the team",
    ),
    ActionDeclaration(
        "record_no_show",
        "Record a no-show",
        "The employee did not come: counted, and a team meeting is rebooked",
        RecordNoShow,
        frozenset({_C}),
        Track.MEETING,
        "joint_meeting, after it started and before its outcome",
    ),
    ActionDeclaration(
        "choose_fhv",
        "Choose occupational health",
        "The employer's choice whether occupational health takes part in the joint meeting",
        ChooseFhv,
        frozenset({_C, _M}),
        Track.MEETING,
        "open case; choosing needs the employee's consent for FHV",
    ),
)

ACTION_BY_NAME: Mapping[str, ActionDeclaration] = {a.name: a for a in ACTIONS}


def action_table() -> str:
    """The README's table of actions, generated from the declarations."""
    lines = [
        "| action (route) | input | roles | fits | meets |",
        "|---|---|---|---|---|",
    ]
    for a in ACTIONS:
        roles = ", ".join(sorted(r.value for r in a.roles))
        if a.own_track_only:
            roles += " (manager, fhv: own track)"
        if a.own_requests_only:
            roles += " (social_services: requests sent to them)"
        lines.append(
            f"| `{a.name}` (`{a.path}`) | `{a.input_model.__name__}` | {roles} | {a.fits} | "
            + (", ".join(f"`{k}`" for k in a.meets) or "—")
            + " |"
        )
    return "\n".join(lines)

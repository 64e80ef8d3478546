"""The case actions the pages offer: the API's own declarations, with the stages they fit.

The forms are generated from these declarations (input model, roles) and submitted through
`api.routers.case_actions.execute_case_action`, the one path of the JSON API: the same
authorisation, audit, validation and 409. Only `STAGES` and `TITLES` are the pages' own;
they move to the per-action declarations (models/case/actions.py) once those exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from api.routers import case_actions
from api.routers.case_actions import CaseAction
from models.api import Role
from models.case import Stage

# Every exposed action, in the order the API declares them.
ACTIONS: Final[Mapping[str, CaseAction]] = {
    value.update: value for value in vars(case_actions).values() if isinstance(value, CaseAction)
}

_OPEN = frozenset(Stage) - {Stage.CLOSED}
_FOLLOW = frozenset({Stage.INTERVENTIONS, Stage.RETURN_TO_WORK})
_GATHERING = frozenset(
    {
        Stage.JOINT_MEETING,
        Stage.SCREENING,
        Stage.PLANNING,
        Stage.INTERVENTIONS,
        Stage.RETURN_TO_WORK,
    }
)
# The stages in which each action's form is offered; the workflow's validator still decides
# (a meeting that has not started, a deadline already met: 409 with its reason).
STAGES: Final[Mapping[str, frozenset[Stage]]] = {
    "record_consent": _OPEN,
    "book_joint_meeting": frozenset({Stage.IDENTIFIED, Stage.JOINT_MEETING}),
    "record_meeting_outcome": frozenset({Stage.JOINT_MEETING}),
    "record_follow_up_meeting": _FOLLOW,
    "record_screening_result": frozenset({Stage.SCREENING}),
    "set_plan": frozenset({Stage.PLANNING}) | _FOLLOW,
    "add_intervention": _FOLLOW,
    "complete_intervention": frozenset({Stage.PLANNING}) | _FOLLOW,
    "cancel_intervention": frozenset({Stage.PLANNING}) | _FOLLOW,
    "record_return_to_work_step": _FOLLOW,
    "report_sick_leave": frozenset({Stage.RETURN_TO_WORK}),
    "set_sick_leave": _OPEN,
    "record_deadline_met": _OPEN,
    "close_case": _OPEN,
    "request_information": _GATHERING,
    "record_information_response": _GATHERING,
    "cancel_information_request": _GATHERING,
    "reschedule_meeting": frozenset({Stage.JOINT_MEETING}),
    "cancel_meeting": frozenset({Stage.JOINT_MEETING}),
    "record_no_show": frozenset({Stage.JOINT_MEETING}),
    "choose_fhv": _OPEN,
}

# Headings of the forms (source language; translated by the catalog).
TITLES: Final[Mapping[str, str]] = {
    "record_consent": "Consent",
    "book_joint_meeting": "Book the joint meeting",
    "record_meeting_outcome": "Record the meeting outcome",
    "record_follow_up_meeting": "Record a follow-up meeting",
    "record_screening_result": "Screening",
    "set_plan": "Return-to-work plan",
    "add_intervention": "Add an intervention",
    "complete_intervention": "Complete an intervention",
    "cancel_intervention": "Cancel an intervention",
    "record_return_to_work_step": "Return to work",
    "report_sick_leave": "Report new sick leave",
    "set_sick_leave": "Sick leave dates",
    "record_deadline_met": "Deadline met",
    "close_case": "Close the case",
    "request_information": "Request information",
    "record_information_response": "Information received",
    "cancel_information_request": "Cancel an information request",
    "reschedule_meeting": "Move the meeting to the next slot",
    "cancel_meeting": "Cancel the meeting",
    "record_no_show": "The employee did not come",
    "choose_fhv": "Occupational health in the meeting",
}


def offered(role: Role, stage: Stage) -> list[CaseAction]:
    """The actions whose forms a role sees on a case in `stage`. The employee's consent is
    given per party on the employee's own page instead of a form."""
    return [
        action
        for name, action in ACTIONS.items()
        if role in action.roles
        and stage in STAGES.get(name, frozenset())
        and not (role is Role.EMPLOYEE and name == "record_consent")
    ]

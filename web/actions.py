"""The case actions the pages offer: the declarations of models/case/actions.py, by stage.

Each form is generated from a declaration (its body model, roles, title) and submitted
through `api.routers.case_actions.execute_case_action`, the JSON API's one path: the same
authorisation, audit, validation and 409. Only `STAGES` is the pages' own: the declarations
say where an action fits in words (`fits`), the pages need the stages to offer its form in;
the workflow's rules still decide, and say why when they refuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from api.routers.case_actions import CASE_ACTIONS, CaseAction
from models.api import Role
from models.case import Stage
from models.case.actions import ACTION_BY_NAME

# Every declared action, in the declared order, as the API runs it.
ACTIONS: Final[Mapping[str, CaseAction]] = CASE_ACTIONS
# Headings of the forms: the declared titles (source language; translated by the catalog).
TITLES: Final[Mapping[str, str]] = {name: ACTION_BY_NAME[name].title for name in ACTIONS}

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

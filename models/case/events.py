"""Every timeline event kind, declared once with its need-to-know track, and who sees which track.

The API's timeline (api/access.py) shows a role the events of the tracks it may see
(DESIGN.md, roles table). A kind that is not declared here falls to the restricted track,
which only the coordinator sees: it fails closed, and a unit test (tests/unit/test_case_
declarations.py) fails when the code emits a kind that is not declared.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from models.api import Role
from models.case import ConsentParty


class Track(StrEnum):
    """The need-to-know track of a timeline event."""

    GENERAL = "general"
    CONSENT = "consent"
    MEETING = "meeting"
    SICK_LEAVE = "sick_leave"
    # A deadline's steps (due, overdue, met): dates and the deadline's code, nothing else.
    DEADLINE = "deadline"
    PLAN = "plan"
    WORK = "work"
    MEDICAL = "medical"
    SOCIAL = "social"
    SCREENING = "screening"
    VIOLENCE = "violence"
    # Information requests to healthcare: coordinator only.
    HEALTHCARE = "healthcare"
    # A step no rule knows: coordinator only, until someone decides otherwise.
    RESTRICTED = "restricted"


class ByDetail(StrEnum):
    """Kinds whose track is the track of what they are about, read from their detail."""

    # An intervention's step belongs to the intervention's track (`detail.track`).
    INTERVENTION = "intervention"
    # An information request's step belongs to the party asked (`detail.party`).
    INFORMATION_PARTY = "information_party"


EVENT_KINDS: Mapping[str, Track | ByDetail] = {
    # the case as a whole
    "case_opened": Track.GENERAL,
    "case_closed": Track.GENERAL,
    "personal_data_erased": Track.GENERAL,
    # sick leave and its dates
    "case_planned": Track.SICK_LEAVE,
    "sick_leave_set": Track.SICK_LEAVE,
    "relapse_reported": Track.SICK_LEAVE,
    "long_term_track_entered": Track.SICK_LEAVE,
    "absence_observed": Track.SICK_LEAVE,
    # deadlines
    "deadline_due": Track.DEADLINE,
    "deadline_overdue": Track.DEADLINE,
    "deadline_reminder": Track.DEADLINE,
    "deadline_escalation": Track.DEADLINE,
    "deadline_met": Track.DEADLINE,
    # consent
    "consent_given": Track.CONSENT,
    "consent_withdrawn": Track.CONSENT,
    # meetings
    "joint_meeting_requested": Track.MEETING,
    "joint_meeting_booked": Track.MEETING,
    "joint_meeting_rebooked": Track.MEETING,
    "joint_meeting_held": Track.MEETING,
    "joint_meeting_cancelled": Track.MEETING,
    "joint_meeting_no_show": Track.MEETING,
    "joint_meeting_fhv_chosen": Track.MEETING,
    "joint_meeting_fhv_not_chosen": Track.MEETING,
    "meeting_team_unreachable": Track.MEETING,
    "meeting_follow_up_held": Track.MEETING,
    # screening: which instruments were used, never a score
    "screening_recorded": Track.SCREENING,
    # the plan and the return to work
    "plan_set": Track.PLAN,
    "plan_revised": Track.PLAN,
    "return_to_work_step": Track.WORK,
    # interventions, by the intervention's track (case and intervention workflows)
    "intervention_added": ByDetail.INTERVENTION,
    "intervention_outcome_recorded": ByDetail.INTERVENTION,
    "intervention_withdrawn": ByDetail.INTERVENTION,
    "intervention_overdue_flagged": ByDetail.INTERVENTION,
    "intervention_assigned": ByDetail.INTERVENTION,
    "intervention_completed": ByDetail.INTERVENTION,
    "intervention_cancelled": ByDetail.INTERVENTION,
    "intervention_reminder": ByDetail.INTERVENTION,
    "intervention_overdue": ByDetail.INTERVENTION,
    "intervention_escalated": ByDetail.INTERVENTION,
    # information requests, by the party asked (case and request workflows)
    "information_requested": ByDetail.INFORMATION_PARTY,
    "information_response_recorded": ByDetail.INFORMATION_PARTY,
    "information_request_withdrawn": ByDetail.INFORMATION_PARTY,
    "information_request_overdue_flagged": ByDetail.INFORMATION_PARTY,
    "information_request_sent": ByDetail.INFORMATION_PARTY,
    "information_request_answered": ByDetail.INFORMATION_PARTY,
    "information_request_cancelled": ByDetail.INFORMATION_PARTY,
    "information_request_reminder": ByDetail.INFORMATION_PARTY,
    "information_request_overdue": ByDetail.INFORMATION_PARTY,
    "information_request_reminded_again": ByDetail.INFORMATION_PARTY,
}

_INTERVENTION_TRACK = {
    "medical": Track.MEDICAL,
    "social": Track.SOCIAL,
    "work_oriented": Track.WORK,
}
_INFORMATION_TRACK = {
    ConsentParty.HEALTHCARE.value: Track.HEALTHCARE,
    ConsentParty.FHV.value: Track.MEDICAL,
    ConsentParty.SOCIAL_SERVICES.value: Track.SOCIAL,
    ConsentParty.ARBETSFORMEDLINGEN.value: Track.WORK,
}

# DESIGN.md, roles table: what each role may see of a case.
VISIBLE_TRACKS: Mapping[Role, frozenset[Track]] = {
    Role.COORDINATOR: frozenset(Track),
    # stage, dates, meetings, the work-oriented track and the plan
    Role.MANAGER: frozenset(
        {Track.GENERAL, Track.MEETING, Track.SICK_LEAVE, Track.DEADLINE, Track.PLAN, Track.WORK}
    ),
    # the own case and own consents
    Role.EMPLOYEE: frozenset(
        {
            Track.GENERAL,
            Track.CONSENT,
            Track.MEETING,
            Track.SICK_LEAVE,
            Track.DEADLINE,
            Track.PLAN,
            Track.WORK,
        }
    ),
    # meetings, the plan and sick-leave data
    Role.FK_OFFICER: frozenset({Track.GENERAL, Track.MEETING, Track.SICK_LEAVE, Track.PLAN}),
    # the medical track
    Role.FHV: frozenset({Track.GENERAL, Track.MEDICAL}),
    # Social services, with the employee's consent: the social track only.
    Role.SOCIAL_SERVICES: frozenset({Track.GENERAL, Track.SOCIAL}),
}

SENSITIVE_TRACKS = frozenset(
    {
        Track.MEDICAL,
        Track.SOCIAL,
        Track.HEALTHCARE,
        Track.SCREENING,
        Track.VIOLENCE,
        Track.RESTRICTED,
    }
)


def track_of(kind: str, detail: Mapping[str, Any] | None) -> Track:
    """The track of one event; an undeclared kind, or detail that names no known track,
    is restricted (coordinator only)."""
    declared = EVENT_KINDS.get(kind)
    detail = detail or {}
    match declared:
        case None:
            return Track.RESTRICTED
        case ByDetail.INTERVENTION:
            return _INTERVENTION_TRACK.get(str(detail.get("track", "")), Track.RESTRICTED)
        case ByDetail.INFORMATION_PARTY:
            return _INFORMATION_TRACK.get(str(detail.get("party", "")), Track.RESTRICTED)
        case _:
            return Track(declared)


def visible_to(role: Role, kind: str, detail: Mapping[str, Any] | None) -> bool:
    return track_of(kind, detail) in VISIBLE_TRACKS.get(role, frozenset())

"""Pure models of a rehabilitation case: its stages, triggers, workflow input and state."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class Stage(StrEnum):
    IDENTIFIED = "identified"
    JOINT_MEETING = "joint_meeting"
    SCREENING = "screening"
    PLANNING = "planning"
    INTERVENTIONS = "interventions"
    RETURN_TO_WORK = "return_to_work"
    CLOSED = "closed"


class CaseTrigger(StrEnum):
    MANAGER_CONCERN = "manager_concern"
    SELF_REFERRAL = "self_referral"
    REPEATED_SHORT_ABSENCE = "repeated_short_absence"
    LONG_ABSENCE = "long_absence"
    LONG_TERM = "long_term"


class ConsentParty(StrEnum):
    """Outside parties that may take part in, or hear about, a case only with consent."""

    FK = "fk"  # Försäkringskassan
    FHV = "fhv"  # occupational health service
    HEALTHCARE = "healthcare"
    SOCIAL_SERVICES = "social_services"
    ARBETSFORMEDLINGEN = "arbetsformedlingen"


MANUAL_TRIGGERS = frozenset({CaseTrigger.MANAGER_CONCERN, CaseTrigger.SELF_REFERRAL})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CaseInput(_Frozen):
    """What a case workflow starts from. Pseudonymous ids and unit codes only."""

    case_id: UUID
    employee_pseudonym: UUID
    unit_code: str
    trigger: CaseTrigger
    opened_at: datetime


class OpenCaseRecord(_Frozen):
    """The record store's projection of a newly opened case."""

    case_id: UUID
    workflow_id: str
    employee_pseudonym: UUID
    unit_code: str
    trigger: CaseTrigger
    opened_at: datetime


class CaseState(BaseModel):
    """Everything a case workflow must carry across continue-as-new."""

    input: CaseInput
    stage: Stage = Stage.IDENTIFIED
    recorded: bool = False


class CaseView(_Frozen):
    """What the `state` query returns: no personal data, safe for operations staff."""

    case_id: UUID
    unit_code: str
    trigger: CaseTrigger
    stage: Stage
    recorded: bool


class CaseResult(_Frozen):
    case_id: UUID
    stage: Stage


def case_workflow_id(case_id: UUID) -> str:
    return f"case-{case_id}"

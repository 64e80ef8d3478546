"""Request and response schemas of the admin API (pure pydantic, no I/O)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from models.case import CaseTrigger, Stage

UnitCode = Annotated[
    str,
    StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"),
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CreateCaseRequest(_Request):
    """A manual referral: the manager's concern or the employee's own request."""

    employee_ref: Annotated[str, StringConstraints(min_length=10, max_length=13)] = Field(
        description="The employee's personal identity number or coordination number "
        "(YYYYMMDD-XXXX, YYMMDD-XXXX or without the dash). Stored only encrypted.",
    )
    unit_code: UnitCode = Field(description="Code of a registered organisational unit.")
    trigger: Literal[CaseTrigger.MANAGER_CONCERN, CaseTrigger.SELF_REFERRAL] = Field(
        description="Why the case is opened: `manager_concern` or `self_referral`."
    )


class CaseCreated(BaseModel):
    case_id: UUID
    stage: Stage


class CaseSummary(BaseModel):
    """A case as the record store holds it; no personal data."""

    case_id: UUID
    unit_code: str
    trigger: CaseTrigger
    stage: Stage
    opened_at: datetime
    closed_at: datetime | None


class FieldError(BaseModel):
    field: str
    reason: str


class ValidationProblem(BaseModel):
    detail: list[FieldError]


class Problem(BaseModel):
    detail: str


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, Literal["ok", "unavailable"]]

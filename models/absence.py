"""Pure models of absence monitoring: what HR reports, what a monitor keeps, what it fires."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from models.case import CaseTrigger
from models.plausible_dates import DateOfKind
from models.sick_leave import Extent, SickPeriod, SickSpell

AbsenceKind = Literal["sick", "care_of_child", "other"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AbsenceRecord(_Frozen):
    """One absence as the monitor sees it: pseudonymous, already validated and stored."""

    event_id: str
    kind: AbsenceKind
    start: date
    end: date | None = None
    extent: Extent = 100
    expected_end: date | None = None


class AbsenceBatch(_Frozen):
    unit_code: str
    records: tuple[AbsenceRecord, ...]


class MonitorState(BaseModel):
    """What an employee's monitor carries across continue-as-new: only recent history."""

    employee_pseudonym: UUID
    unit_code: str
    policy_id: str = "se-default"
    policy_version: int = 1
    spells: list[SickSpell] = Field(default_factory=list)
    expected_end: date | None = None
    # Event ids of the kept spells: a redelivered batch changes nothing.
    seen_event_ids: list[str] = Field(default_factory=list)
    # Trigger keys already fired, e.g. "long_absence:2026-03-02"; pruned with the spells.
    fired: list[str] = Field(default_factory=list)
    # What the monitor believes of the employee's open case: every opening goes through it,
    # and every answer of the record store corrects it (a case closes without telling the
    # monitor). Only trusted when `knows_open_case`: a monitor whose state predates the
    # belief asks the record store until an answer tells it.
    knows_open_case: bool = False
    open_case_id: UUID | None = None


@dataclass(frozen=True)
class DueRule:
    """A rule of the monitor that has come due. Kept here, with the models the sandbox passes
    through, rather than in the workflow's module, which runs again for every new run."""

    key: str
    trigger: CaseTrigger | None  # None: tell an open case, never open one
    on: date
    period: SickPeriod


class MonitorInput(_Frozen):
    state: MonitorState
    # How many of the monitor's patches (workflows/absence_monitor.py MONITOR_PATCHES) the
    # code that started this run had: those it takes without a marker. 0: started before.
    patch_level: int = 0


class CaseTriggerRequest(_Frozen):
    """A monitor asks for a case: opened if the employee has none, else told to the open one."""

    employee_pseudonym: UUID
    unit_code: str
    # None: news for an open case (a new sick period, an expected end), never a new case.
    trigger: CaseTrigger | None
    trigger_key: str
    observed_on: date
    sick_start: date | None = None
    # The latest spell of the period: after a return to work, the new sick leave's start.
    spell_start: date | None = None
    expected_end: date | None = None
    # A manual referral names the case id and the moment it was made; a monitor's question
    # names the moment of its workflow task as the opening of any case it opens.
    case_id: UUID | None = None
    opened_at: datetime | None = None


class CaseTriggerRequests(_Frozen):
    """Everything due at one wake-up of a monitor, asked in order: each request sees the case
    an earlier one opened."""

    requests: tuple[CaseTriggerRequest, ...]


class CaseTriggerResult(_Frozen):
    # The employee's open case after the request(s): None when there is none.
    case_id: UUID | None
    opened: bool


class CaseReferral(_Frozen):
    """A manual referral, decided by the employee's monitor: the one writer of open cases."""

    # The id the new case gets: derived from the caller's Idempotency-Key when given, so a
    # retried referral finds the case it opened instead of being told there is one.
    case_id: UUID
    unit_code: str
    trigger: CaseTrigger
    opened_at: datetime


class CaseReferralResult(_Frozen):
    # The new case, or the employee's open case that the referral lost to.
    case_id: UUID
    opened: bool
    # The new case's first change is in the record store with its row: the API need not
    # wait for the case's workflow before it answers.
    recorded: bool = False


class MonitorView(_Frozen):
    """The `summary` query: counts and dates only."""

    sick_periods: int
    occasions_in_window: int
    current_period_start: date | None
    # When the next day-numbered rule (day 15, day 366) of the current period takes effect.
    next_rule_on: date | None
    fired: tuple[str, ...]
    # Events not yet applied, or a case being opened or told: the monitor is not done yet.
    busy: bool = False
    # The id of the last event applied: a sender knows its last event has been processed.
    last_event_id: str | None = None


def monitor_workflow_id(pseudonym: UUID) -> str:
    return f"absence-{pseudonym}"


EventId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
]
UnitCode = Annotated[
    str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]


class AbsenceEventIn(BaseModel):
    """One absence as HR/payroll reports it. `employee_ref` is a personal identity number."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, hide_input_in_errors=True)

    event_id: EventId = Field(description="The sender's unique id; a repeat is a duplicate.")
    employee_ref: Annotated[str, StringConstraints(min_length=10, max_length=13)] = Field(
        description="Personal identity number or coordination number; stored only encrypted."
    )
    unit_code: UnitCode
    kind: AbsenceKind
    start: Annotated[date, DateOfKind("absence")]
    end: Annotated[date | None, DateOfKind("absence")] = Field(
        default=None, description="Last day of absence; absent if ongoing."
    )
    extent: Literal[25, 50, 75, 100] = 100
    expected_end: Annotated[date | None, DateOfKind("sick_leave_expected_end")] = Field(
        default=None, description="When the sick leave is expected to end (from the certificate)."
    )

    @field_validator("end")
    @classmethod
    def _end_not_before_start(cls, end: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("start")
        if end is not None and start is not None and end < start:
            raise ValueError("the end is before the start")
        return end

    @field_validator("expected_end")
    @classmethod
    def _expected_end_not_before_start(
        cls, expected_end: date | None, info: ValidationInfo
    ) -> date | None:
        start = info.data.get("start")
        if expected_end is not None and start is not None and expected_end < start:
            raise ValueError("the expected end is before the start")
        return expected_end


class Rejection(BaseModel):
    """Why one event (by its position in the batch or file) was not taken: never its values."""

    index: int
    event_id: str | None
    field: str
    reason: str


class IngestResult(BaseModel):
    accepted: int = 0
    duplicate: int = 0
    rejected: list[Rejection] = Field(default_factory=list)

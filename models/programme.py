"""The programme around the cases: the yearly course for managers and APT dialogues.

Pure models and rules (no I/O), used by ProgrammeCycleWorkflow, its activities and the API.
From the Skaraborg method: once a year FK and HR give every manager joint training in
insurance medicine, and every work group holds APT dialogues on sustainable working life.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from models.deadlines import STOCKHOLM
from models.policy import CalendarOffset


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProgrammePolicy(_Frozen):
    """When the course and the dialogues fall due, and how reminders repeat."""

    course_valid_for: CalendarOffset = CalendarOffset(months=12)
    new_manager_within_days: int = Field(default=90, ge=1, le=730)
    apt_valid_for: CalendarOffset = CalendarOffset(months=12)
    # While still due, remind again this many days after the last reminder.
    remind_again_after_days: int = Field(default=30, ge=1, le=365)
    # Reminders go out at this local time (Europe/Stockholm) on their day.
    remind_at: time = time(8, 0)


DEFAULT_PROGRAMME_POLICY = ProgrammePolicy()


def course_due_on(
    appointed_on: date, last_trained_on: date | None, policy: ProgrammePolicy
) -> date:
    """A trained manager is due 12 months after the last course; a new one, a policy-set
    number of days after taking up the post."""
    if last_trained_on is not None:
        return policy.course_valid_for.after(last_trained_on)
    return appointed_on + timedelta(days=policy.new_manager_within_days)


def apt_due_on(registered_on: date, last_held_on: date | None, policy: ProgrammePolicy) -> date:
    """A unit is due 12 months after its last APT dialogue, or after it was registered."""
    return policy.apt_valid_for.after(last_held_on or registered_on)


def reminder_round(due_on: date, today: date, policy: ProgrammePolicy) -> int | None:
    """Which reminder is owed today (0 on the due date, 1 a period later, ...), None before."""
    if today < due_on:
        return None
    return (today - due_on).days // policy.remind_again_after_days


def next_reminder_on(due_on: date, today: date, policy: ProgrammePolicy) -> date:
    """The first day after `today` on which a reminder for `due_on` is owed."""
    if today < due_on:
        return due_on
    owed = reminder_round(due_on, today, policy) or 0
    return due_on + timedelta(days=(owed + 1) * policy.remind_again_after_days)


def reminder_instant(day: date, policy: ProgrammePolicy) -> datetime:
    return datetime.combine(day, policy.remind_at, tzinfo=STOCKHOLM).astimezone(UTC)


# ---------------------------------------------------------------- the workflow's interface

ORGANISATION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$"
Organisation = Annotated[str, StringConstraints(pattern=ORGANISATION_PATTERN)]
ThemeCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,31}$")]
# Themes of an APT dialogue on sustainable working life: codes, never text about persons.
APT_THEMES = frozenset(
    {
        "workload",
        "work_environment",
        "early_signals",
        "rehabilitation_routines",
        "return_to_work",
        "health_promotion",
        "violence_and_threats",
        "cooperation",
        "leadership",
        "sick_leave_figures",
    }
)


def programme_workflow_id(organisation: str) -> str:
    return f"programme-{organisation}"


class ProgrammeState(_Frozen):
    """What survives continue-as-new: counts only; every fact lives in the record store."""

    checks: int = 0
    reminders_sent: int = 0
    rounds_scheduled: int = 0


class ProgrammeInput(_Frozen):
    organisation: Organisation
    policy: ProgrammePolicy = DEFAULT_PROGRAMME_POLICY
    carried: ProgrammeState | None = None
    # A year of daily-or-sparser checks stays far below the history limits.
    checks_per_run: int = Field(default=120, ge=1, le=1000)


class ReminderCheck(_Frozen):
    on: date
    policy: ProgrammePolicy


class ReminderResult(_Frozen):
    sent: int
    next_on: date | None


class CourseSession(_Frozen):
    session_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.ends_at <= self.starts_at:
            raise ValueError("a session must end after it starts")
        return self


class ScheduleRound(_Frozen):
    """A year's course: its sessions; every manager in post is invited to one of them."""

    round_id: uuid.UUID
    year: int = Field(ge=2000, le=2100)
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    sessions: tuple[CourseSession, ...] = Field(min_length=1, max_length=50)


class RoundScheduled(_Frozen):
    round_id: uuid.UUID
    invited: int


class ProgrammeChanged(_Frozen):
    """Attendance, a manager or an APT dialogue was recorded: look again now."""


class ProgrammeView(_Frozen):
    organisation: str
    checks: int
    reminders_sent: int
    rounds_scheduled: int
    next_check_at: datetime | None


# ---------------------------------------------------------------- the API's bodies and views


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


UnitCodeField = Annotated[
    str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]


class AddManager(_Body):
    unit_code: UnitCodeField
    address: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$", max_length=320)] = (
        Field(description="The manager's work e-mail: where invitations and reminders go.")
    )
    appointed_on: date = Field(description="The day the manager took up the post.")


class ManagerAdded(_Frozen):
    manager_id: uuid.UUID


class NewSession(_Body):
    starts_at: datetime
    ends_at: datetime


class NewRound(_Body):
    year: int = Field(ge=2000, le=2100)
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    sessions: list[NewSession] = Field(min_length=1, max_length=50)


class RecordAttendance(_Body):
    manager_id: uuid.UUID
    attended: bool = True


class RecordAptDialogue(_Body):
    """An APT dialogue: codes and a count only, never text about persons."""

    unit_code: UnitCodeField
    held_on: date
    themes: list[ThemeCode] = Field(min_length=1, max_length=10)
    participants: int = Field(ge=1, le=500)


class AptRecorded(_Frozen):
    dialogue_id: uuid.UUID


class ManagerCourseStatus(_Frozen):
    manager_id: uuid.UUID
    unit_code: str
    appointed_on: date
    last_trained_on: date | None
    due_on: date

"""When a case's deadlines fire: dated obligations turned into instants, Europe/Stockholm.

A deadline is a date, and an obligation dated D may be fulfilled all through D. So:

- on its due date at 00:00 Europe/Stockholm the task opens ("due today");
- when the due date ends, at 24:00 (00:00 of D + 1), an unmet deadline is overdue;
- at the end of D + `overdue_reminder_after_days` the owner is reminded;
- at the end of D + `overdue_escalation_after_days` it is escalated.

Instants are computed from dates with zoneinfo, so daylight-saving changes move nothing:
midnight always exists in Stockholm (the clocks change at 02:00 and 03:00). The code is
pure and deterministic, so workflows may use it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from models.policy import MetByAction, Policy

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def start_of_day(day: date) -> datetime:
    """00:00 Europe/Stockholm on `day`, in UTC."""
    return datetime.combine(day, time.min, tzinfo=STOCKHOLM).astimezone(UTC)


def end_of_day(day: date) -> datetime:
    """24:00 Europe/Stockholm on `day` (the next day's 00:00), in UTC."""
    return start_of_day(day + timedelta(days=1))


def local_date(instant: datetime) -> date:
    """The Europe/Stockholm calendar date of an instant."""
    return instant.astimezone(STOCKHOLM).date()


class DeadlineStep(StrEnum):
    """What happens to an unmet deadline, in this order."""

    DUE = "due"
    OVERDUE = "overdue"
    REMINDER = "reminder"
    ESCALATION = "escalation"


class DeadlineStatus(StrEnum):
    PENDING = "pending"  # its due date has not come
    DUE = "due"  # due today
    OVERDUE = "overdue"
    MET = "met"


DeadlineSource = Literal["policy", "follow_up"]


class TrackedDeadline(BaseModel):
    """One deadline of the current sick period as the case workflow tracks it."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    source: DeadlineSource
    description: str
    sick_day: int | None = None
    due_on: date
    met_by_action: MetByAction | None = None
    met_on: date | None = None
    # Steps already recorded, or passed over because a later step superseded them.
    fired: list[DeadlineStep] = Field(default_factory=list)

    def instant(self, step: DeadlineStep, policy: Policy) -> datetime:
        match step:
            case DeadlineStep.DUE:
                return start_of_day(self.due_on)
            case DeadlineStep.OVERDUE:
                return end_of_day(self.due_on)
            case DeadlineStep.REMINDER:
                return end_of_day(self.due_on + timedelta(days=policy.overdue_reminder_after_days))
            case DeadlineStep.ESCALATION:
                return end_of_day(
                    self.due_on + timedelta(days=policy.overdue_escalation_after_days)
                )

    def next_step(self, policy: Policy) -> tuple[DeadlineStep, datetime] | None:
        """The next step still to fire and its instant; None once met or fully fired."""
        if self.met_on is not None:
            return None
        for step in DeadlineStep:
            if step not in self.fired:
                return step, self.instant(step, policy)
        return None

    def steps_to_fire(self, policy: Policy, now: datetime) -> list[DeadlineStep]:
        """The steps whose instant has passed, in order, leaving out superseded ones.

        A late deadline (e.g. from an import of last month's absences) is recorded overdue
        at once; its "due today" notice is then pointless, and a reminder is pointless when
        the escalation is already due. Those steps are marked fired without an event.
        """
        if self.met_on is not None:
            return []
        passed = [
            step
            for step in DeadlineStep
            if step not in self.fired and self.instant(step, policy) <= now
        ]
        if DeadlineStep.OVERDUE in passed and DeadlineStep.DUE in passed:
            passed.remove(DeadlineStep.DUE)
            self.fired.append(DeadlineStep.DUE)
        if DeadlineStep.ESCALATION in passed and DeadlineStep.REMINDER in passed:
            passed.remove(DeadlineStep.REMINDER)
            self.fired.append(DeadlineStep.REMINDER)
        return passed

    @property
    def overdue(self) -> bool:
        return self.met_on is None and DeadlineStep.OVERDUE in self.fired

    @property
    def status(self) -> DeadlineStatus:
        if self.met_on is not None:
            return DeadlineStatus.MET
        if DeadlineStep.OVERDUE in self.fired:
            return DeadlineStatus.OVERDUE
        if DeadlineStep.DUE in self.fired:
            return DeadlineStatus.DUE
        return DeadlineStatus.PENDING


class DeadlineView(BaseModel):
    """A deadline as queries and the record store show it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    description: str
    due_on: date
    status: DeadlineStatus
    met_on: date | None = None


def view_of(deadline: TrackedDeadline) -> DeadlineView:
    return DeadlineView(
        kind=deadline.kind,
        description=deadline.description,
        due_on=deadline.due_on,
        status=deadline.status,
        met_on=deadline.met_on,
    )

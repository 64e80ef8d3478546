"""What the evaluation reads of each case: codes and dates from the record store, nothing else.

No identity number, no screening, no violence disclosure and no protected-track intervention
ever becomes a fact (store/evaluation.py leaves them out in SQL).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True)
class EventFact:
    kind: str
    stage: str
    occurred_at: datetime
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeadlineFact:
    kind: str
    due_on: date
    status: str
    met_on: date | None


@dataclass(frozen=True)
class MeetingFact:
    kind: str
    status: str
    starts_at: datetime
    reinforced_support: bool | None


@dataclass(frozen=True)
class InterventionFact:
    track: str
    kind: str
    status: str
    outcome: str | None


@dataclass(frozen=True)
class InformationRequestFact:
    party: str
    requested_at: datetime
    due_on: date
    received_on: date | None
    status: str


@dataclass(frozen=True)
class CaseFacts:
    case_id: uuid.UUID
    employee: uuid.UUID
    unit: str
    policy_id: str
    policy_version: int
    opened_at: datetime
    sick_start: date | None
    stage: str
    closed_at: datetime | None
    sex: str | None
    birth_year: int | None
    events: tuple[EventFact, ...] = ()
    deadlines: tuple[DeadlineFact, ...] = ()
    meetings: tuple[MeetingFact, ...] = ()
    interventions: tuple[InterventionFact, ...] = ()
    information_requests: tuple[InformationRequestFact, ...] = ()


@dataclass(frozen=True)
class ManagerTrainingFact:
    """A manager of a unit and the dates of the training sessions they attended."""

    unit: str
    appointed_on: date
    attended_on: tuple[date, ...]


@dataclass(frozen=True)
class AptFact:
    unit: str
    held_on: date
    participants: int


@dataclass(frozen=True)
class ProgrammeFacts:
    """Manager training and APT dialogues: the programme around the cases."""

    units: tuple[str, ...] = ()
    managers: tuple[ManagerTrainingFact, ...] = ()
    apt_dialogues: tuple[AptFact, ...] = ()

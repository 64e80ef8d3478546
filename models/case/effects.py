"""What a rule asks the world to do: the effects the case workflow turns into Temporal commands.

The core (models/case/rules.py) changes the case's state and returns these, in the order
they must happen; the workflow shell (workflows/case/) runs them one after the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

from models.actions import InterventionFinish, InterventionInput
from models.case import CaseChange, ErasureRequest, MeetingBooking, Stage
from models.information_requests import InformationRequestFinish, InformationRequestInput
from models.meetings import MeetingRequest

ChildKind = Literal["intervention", "information_request"]


@dataclass(frozen=True)
class Record:
    """Write one change to the record store; `shown` is the (stage, overdue) the search
    attributes show from this change on."""

    change: CaseChange
    shown: tuple[Stage, bool]


@dataclass(frozen=True)
class StartChild:
    """Start an intervention or an information request as a child workflow."""

    kind: ChildKind
    child_id: UUID
    workflow_id: str
    input: InterventionInput | InformationRequestInput
    # Operations staff read summaries: they never name a party or a protected kind.
    summary: str


@dataclass(frozen=True)
class FinishChild:
    """Tell a running child it is completed, answered or cancelled."""

    kind: ChildKind
    workflow_id: str
    finish: InterventionFinish | InformationRequestFinish


@dataclass(frozen=True)
class AskTeam:
    """Look up the unit's joint-meeting team and, if it has one, ask it for a seat."""

    reason: str


@dataclass(frozen=True)
class RequestSeat:
    """Ask the team for a seat: the request is already in the state; on failure the core's
    `team_unreachable` is applied."""

    team_code: str
    request: MeetingRequest


@dataclass(frozen=True)
class ReleaseSeat:
    """Give the team's seat (or place in its queue) back."""

    team_code: str
    request_id: UUID


@dataclass(frozen=True)
class Erase:
    """Erase or anonymize the case's personal data; the core's `erased` follows."""

    request: ErasureRequest


@dataclass(frozen=True)
class RecordAll:
    """Consecutive records of one workflow task, written by one local activity."""

    records: tuple[Record, ...]


Effect = Record | RecordAll | StartChild | FinishChild | AskTeam | RequestSeat | ReleaseSeat | Erase


def batched(effects: list[Effect]) -> list[Effect]:
    """`effects` with each run of two or more consecutive records as one RecordAll."""
    out: list[Effect] = []
    run: list[Record] = []
    for effect in [*effects, None]:
        if isinstance(effect, Record):
            run.append(effect)
            continue
        if len(run) > 1:
            out.append(RecordAll(tuple(run)))
        else:
            out.extend(run)
        run = []
        if effect is not None:
            out.append(effect)
    return out


@dataclass(frozen=True)
class Outcome:
    """What an action returns to its caller, besides the effects."""

    created: tuple[UUID, ...] = ()


@dataclass(frozen=True)
class Continuing:
    """A rebooking that continues a meeting: same calendar event, higher sequence."""

    meeting: MeetingBooking
    after: datetime

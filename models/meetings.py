"""Joint-meeting teams: the biweekly cadence in Europe/Stockholm, its slots and seats, and
the order in which waiting cases are booked. Pure, so workflows and tests share it.

A team meets every second week on one weekday at one local time. A slot is one such
session; it has `capacity` seats of `meeting_minutes` each, one case per seat, back to
back, so that an employee never meets another employee's case. Slot instants are computed
from the local date and wall-clock time with zoneinfo for every slot on its own, so 09:00
stays 09:00 in Stockholm across daylight-saving changes while the UTC instant moves.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from models.deadlines import STOCKHOLM

CADENCE_DAYS = 14
TEAM_WORKFLOW_PREFIX = "meeting-team-"
# Slot ids are derived from the team and the date, so they survive continue-as-new and
# name the same slot in every view.
_SLOT_NAMESPACE = uuid.UUID("6a0f3d4e-2b7c-4f1a-9e55-31c9b8d2a7f4")
# Meetings are held in office hours: every local time from 06:00 to 20:00 exists exactly
# once on every day of the year (the clocks change at 02:00 and 03:00).
EARLIEST_START = time(6, 0)
LATEST_START = time(20, 0)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

# A team code, as safe as a unit code: it becomes part of a workflow id.
TeamCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _State(BaseModel):
    model_config = ConfigDict(extra="forbid")


def team_workflow_id(code: str) -> str:
    return f"{TEAM_WORKFLOW_PREFIX}{code}"


# ---------------------------------------------------------------- the cadence


class TeamConfig(_Frozen):
    """A joint-meeting team's cadence: configuration, not case data."""

    code: TeamCode
    weekday: int = Field(ge=1, le=7, description="ISO weekday: 1 Monday … 7 Sunday")
    starts_at: time = Field(description="local wall-clock time in Europe/Stockholm")
    meeting_minutes: int = Field(ge=15, le=240, description="length of one case's meeting")
    capacity: int = Field(ge=1, le=12, description="cases (seats) per slot")
    anchor_on: date = Field(description="any date in a week that has a meeting (the parity)")
    lead_hours: int = Field(
        ge=0, le=12 * 24, description="booking closes this long before the slot starts"
    )

    @model_validator(mode="after")
    def _office_hours(self) -> Self:
        if not EARLIEST_START <= self.starts_at <= LATEST_START:
            raise ValueError("a joint meeting starts between 06:00 and 20:00")
        if self.starts_at.tzinfo is not None:
            raise ValueError("the start time is a local wall-clock time, without a zone")
        session_end = datetime.combine(self.anchor_on, self.starts_at) + self.session_length
        if session_end.date() != self.anchor_on:
            raise ValueError("a slot's meetings must end on the day they start")
        return self

    @property
    def session_length(self) -> timedelta:
        return timedelta(minutes=self.meeting_minutes * self.capacity)

    @property
    def first_meeting_on(self) -> date:
        """The meeting day in the anchor's week; every slot is a multiple of 14 days from it."""
        monday = self.anchor_on - timedelta(days=self.anchor_on.isoweekday() - 1)
        return monday + timedelta(days=self.weekday - 1)

    def slot_on_or_after(self, day: date) -> date:
        offset = (day - self.first_meeting_on).days
        cycles = -(-offset // CADENCE_DAYS)  # ceiling division, also for negative offsets
        return self.first_meeting_on + timedelta(days=cycles * CADENCE_DAYS)

    def slot_after(self, slot_on: date) -> date:
        return self.slot_on_or_after(slot_on + timedelta(days=1))

    def is_slot_day(self, day: date) -> bool:
        return (day - self.first_meeting_on).days % CADENCE_DAYS == 0

    def starts(self, slot_on: date) -> datetime:
        """The slot's first meeting in UTC: the local wall-clock time on that date."""
        return datetime.combine(slot_on, self.starts_at, tzinfo=STOCKHOLM).astimezone(UTC)

    def ends(self, slot_on: date) -> datetime:
        return self.starts(slot_on) + self.session_length

    def seat_times(self, slot_on: date, seat: int) -> tuple[datetime, datetime]:
        start = self.starts(slot_on) + timedelta(minutes=self.meeting_minutes * seat)
        return start, start + timedelta(minutes=self.meeting_minutes)

    def cutoff(self, slot_on: date) -> datetime:
        """When booking into the slot closes and its waiting cases are booked."""
        return self.starts(slot_on) - timedelta(hours=self.lead_hours)

    def first_open_slot(self, now: datetime) -> date:
        """The first slot whose booking has not closed yet."""
        slot_on = self.slot_on_or_after(now.astimezone(STOCKHOLM).date())
        while self.cutoff(slot_on) <= now:
            slot_on = self.slot_after(slot_on)
        return slot_on

    def slot_id(self, slot_on: date) -> UUID:
        return uuid.uuid5(_SLOT_NAMESPACE, f"{self.code}:{slot_on.isoformat()}")


# ---------------------------------------------------------------- case <-> team messages


class TeamLookup(_Frozen):
    unit_code: str


class MeetingRequest(_Frozen):
    """A case asks its team for a seat (signal `request_meeting`).

    `earliest_deadline_on` orders the queue: the oldest deadline is booked first, ties by
    `requested_at`. A rebooking (reschedule, no-show) names the request whose seat it
    gives up in `releases` and takes the next slot with room that starts after `after`.
    """

    request_id: UUID
    case_id: UUID
    case_workflow_id: str
    earliest_deadline_on: date | None = None
    requested_at: datetime
    after: datetime | None = None
    releases: UUID | None = None

    @property
    def order_key(self) -> tuple[date, datetime, str]:
        return (self.earliest_deadline_on or date.max, self.requested_at, str(self.request_id))


class MeetingRelease(_Frozen):
    """A case gives up its seat or leaves the queue (signal `release_meeting`)."""

    request_id: UUID


class SlotAssignment(_Frozen):
    """The team's answer to a request (signal `meeting_slot_assigned` to the case)."""

    request_id: UUID
    team_code: str
    slot_id: UUID
    slot_on: date
    seat: int
    starts_at: datetime
    ends_at: datetime


# ---------------------------------------------------------------- the team's state


class Seat(_State):
    request_id: UUID
    case_id: UUID
    case_workflow_id: str


class SlotState(_State):
    """A slot with seats taken (or skipped while paused), kept until its meetings end."""

    slot_on: date
    seats: list[Seat | None]
    closed: bool = False  # its cut-off has passed
    skipped: bool = False  # its cut-off passed while the team was paused

    def free_seats(self) -> int:
        return sum(1 for seat in self.seats if seat is None)


class TeamState(_State):
    """Everything a team workflow carries across continue-as-new."""

    next_slot_on: date | None = None  # the slot whose cut-off comes next
    paused: bool = False
    waiting: list[MeetingRequest] = Field(default_factory=list)
    slots: list[SlotState] = Field(default_factory=list)
    booked_total: int = 0
    skipped_slots: int = 0


class TeamInput(_Frozen):
    config: TeamConfig
    # A year of slots per run; continue-as-new also when Temporal suggests it.
    slots_per_run: int = Field(default=26, ge=1)
    carried: TeamState | None = None


class Booking:
    """The booking rules, applied to a team's state. Pure: the workflow sends the signals."""

    def __init__(self, config: TeamConfig, state: TeamState) -> None:
        self.config = config
        self.state = state

    def slot(self, slot_on: date) -> SlotState:
        for slot in self.state.slots:
            if slot.slot_on == slot_on:
                return slot
        slot = SlotState(slot_on=slot_on, seats=[None] * self.config.capacity)
        self.state.slots.append(slot)
        self.state.slots.sort(key=lambda s: s.slot_on)
        return slot

    def _seat(self, slot: SlotState, request: MeetingRequest) -> SlotAssignment:
        index = slot.seats.index(None)
        slot.seats[index] = Seat(
            request_id=request.request_id,
            case_id=request.case_id,
            case_workflow_id=request.case_workflow_id,
        )
        self.state.booked_total += 1
        starts_at, ends_at = self.config.seat_times(slot.slot_on, index)
        return SlotAssignment(
            request_id=request.request_id,
            team_code=self.config.code,
            slot_id=self.config.slot_id(slot.slot_on),
            slot_on=slot.slot_on,
            seat=index,
            starts_at=starts_at,
            ends_at=ends_at,
        )

    def is_known(self, request_id: UUID) -> bool:
        return any(r.request_id == request_id for r in self.state.waiting) or any(
            seat is not None and seat.request_id == request_id
            for slot in self.state.slots
            for seat in slot.seats
        )

    def release(self, request_id: UUID) -> bool:
        """Free the request's seat or take it out of the queue; False if it was neither."""
        before = len(self.state.waiting)
        self.state.waiting = [r for r in self.state.waiting if r.request_id != request_id]
        released = len(self.state.waiting) != before
        for slot in self.state.slots:
            for index, seat in enumerate(slot.seats):
                if seat is not None and seat.request_id == request_id:
                    slot.seats[index] = None
                    released = True
        return released

    def request(self, request: MeetingRequest) -> SlotAssignment | None:
        """Queue a request; a rebooking takes the next slot with room at once if it can.

        A rebooking keeps its place: it was booked before, so it does not queue behind
        cases that asked later. It only takes slots whose booking is still open, so every
        invitee gets the team's lead time.
        """
        if self.is_known(request.request_id):
            return None
        if request.releases is not None:
            self.release(request.releases)
        # One request per case: a new one replaces what the case had waiting.
        self.state.waiting = [
            r for r in self.state.waiting if r.case_workflow_id != request.case_workflow_id
        ]
        if request.releases is not None and not self.state.paused:
            slot_on = self._next_slot_with_room(request.after)
            if slot_on is not None:
                return self._seat(self.slot(slot_on), request)
        self.state.waiting.append(request)
        return None

    def _next_slot_with_room(self, after: datetime | None, horizon: int = 26) -> date | None:
        assert self.state.next_slot_on is not None
        slot_on = self.state.next_slot_on
        for _ in range(horizon):
            if after is None or self.config.starts(slot_on) > after:
                existing = next((s for s in self.state.slots if s.slot_on == slot_on), None)
                if existing is None or existing.free_seats() > 0:
                    return slot_on
            slot_on = self.config.slot_after(slot_on)
        return None

    def close(self, slot_on: date, now: datetime) -> list[SlotAssignment]:
        """The slot's cut-off: book the waiting cases, oldest deadline first, up to capacity.

        Paused, or reached only after the slot began (a worker that was down), the slot is
        skipped and the cases wait for the next one.
        """
        slot = self.slot(slot_on)
        slot.closed = True
        if self.state.paused or self.config.starts(slot_on) <= now:
            slot.skipped = True
            self.state.skipped_slots += 1
            return []
        starts = self.config.starts(slot_on)
        eligible = sorted(
            (r for r in self.state.waiting if r.after is None or starts > r.after),
            key=lambda r: r.order_key,
        )
        booked = [self._seat(slot, r) for r in eligible[: slot.free_seats()]]
        taken = {a.request_id for a in booked}
        self.state.waiting = [r for r in self.state.waiting if r.request_id not in taken]
        return booked

    def forget_past(self, now: datetime) -> None:
        self.state.slots = [s for s in self.state.slots if self.config.ends(s.slot_on) > now]

    def view(self, now: datetime, *, ahead: int = 4) -> TeamView:
        """Upcoming slots (those with bookings and the next `ahead` of the cadence) and
        the queue in booking order."""
        assert self.state.next_slot_on is not None
        days = {s.slot_on for s in self.state.slots if self.config.ends(s.slot_on) > now}
        slot_on = self.state.next_slot_on
        for _ in range(ahead):
            days.add(slot_on)
            slot_on = self.config.slot_after(slot_on)
        known = {s.slot_on: s for s in self.state.slots}
        slots = []
        for day in sorted(days):
            state = known.get(day)
            seats = state.seats if state else [None] * self.config.capacity
            status: SlotStatus = "open"
            if state is not None and state.skipped:
                status = "skipped"
            elif state is not None and state.closed:
                status = "booked"
            slots.append(
                SlotView(
                    slot_id=self.config.slot_id(day),
                    slot_on=day,
                    starts_at=self.config.starts(day),
                    ends_at=self.config.ends(day),
                    cutoff_at=self.config.cutoff(day),
                    status=status,
                    capacity=self.config.capacity,
                    booked=tuple(seat.case_id for seat in seats if seat is not None),
                )
            )
        return TeamView(
            code=self.config.code,
            paused=self.state.paused,
            next_cutoff_at=self.config.cutoff(self.state.next_slot_on),
            slots=tuple(slots),
            waiting=tuple(
                WaitingView(
                    case_id=r.case_id,
                    earliest_deadline_on=r.earliest_deadline_on,
                    requested_at=r.requested_at,
                    after=r.after,
                )
                for r in sorted(self.state.waiting, key=lambda r: r.order_key)
            ),
            booked_total=self.state.booked_total,
            skipped_slots=self.state.skipped_slots,
        )


# ---------------------------------------------------------------- what operations see

SlotStatus = Literal["open", "booked", "skipped"]


class SlotView(_Frozen):
    slot_id: UUID
    slot_on: date
    starts_at: datetime
    ends_at: datetime
    cutoff_at: datetime
    # open: booking not closed yet; booked: closed and booked; skipped: closed while paused.
    status: SlotStatus
    capacity: int
    booked: tuple[UUID, ...]  # case ids, by seat

    @property
    def free(self) -> int:
        return self.capacity - len(self.booked)


class WaitingView(_Frozen):
    case_id: UUID
    earliest_deadline_on: date | None
    requested_at: datetime
    after: datetime | None


class TeamView(_Frozen):
    """What the `view` query (and the pause/resume updates) return: no personal data."""

    code: str
    paused: bool
    next_cutoff_at: datetime
    slots: tuple[SlotView, ...]
    waiting: tuple[WaitingView, ...]  # in booking order
    booked_total: int
    skipped_slots: int


class CadenceChange(_Frozen):
    """Input of the `pause` and `resume` updates (kept as a model so it can grow)."""


# ---------------------------------------------------------------- the case's side


class TeamBooking(_State):
    """A case's standing with its joint-meeting team (in CaseState)."""

    team_code: str
    request_id: UUID
    requested_at: datetime
    assigned: bool = False
    # A reschedule keeps the calendar event: same meeting id (UID), sequence + 1.
    continues_meeting: UUID | None = None
    continues_sequence: int = 0


class RescheduleMeeting(_Frozen):
    """Give up the team slot and take the next slot with room after it."""


class CancelMeeting(_Frozen):
    """Call the joint meeting off: the slot is released and every invitee gets a cancellation."""


class RecordNoShow(_Frozen):
    """The employee did not come: counted on the case; a team meeting is rebooked."""


class ChooseFhv(_Frozen):
    """The employer's choice whether occupational health (FHV) takes part in the meeting."""

    chosen: bool = True


# ---------------------------------------------------------------- the operations API


class TeamSummary(_Frozen):
    """A team as operations see it: its cadence and whether it runs. No case content."""

    code: str
    name: str
    units: tuple[str, ...]
    weekday: Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    starts_at: time = Field(description="local time, Europe/Stockholm")
    meeting_minutes: int
    capacity: int
    anchor_on: date
    lead_hours: int
    # not_running: the team's workflow does not answer (start it with starter.py add-team).
    status: Literal["running", "paused", "not_running"]
    next_cutoff_at: datetime | None = None


class TeamSlot(_Frozen):
    slot_id: UUID
    starts_at: datetime
    ends_at: datetime
    cutoff_at: datetime
    status: SlotStatus
    capacity: int
    booked: int
    free: int
    case_ids: tuple[UUID, ...] = Field(description="pseudonymous case ids, by seat")


class TeamDetail(TeamSummary):
    slots: tuple[TeamSlot, ...] = ()
    waiting: int = 0
    waiting_case_ids: tuple[UUID, ...] = Field(default=(), description="in booking order")
    booked_total: int = 0
    skipped_slots: int = 0

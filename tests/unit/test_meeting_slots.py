"""The biweekly cadence in Europe/Stockholm and the booking rules, without Temporal."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, date, datetime, time, timedelta

import pytest
from pydantic import ValidationError

from models.deadlines import STOCKHOLM
from models.meetings import Booking, MeetingRequest, TeamConfig, TeamState


def team(**changes: object) -> TeamConfig:
    values: dict[str, object] = {
        "code": "SKV-1",
        "weekday": 1,
        "starts_at": time(9, 0),
        "meeting_minutes": 45,
        "capacity": 2,
        "anchor_on": date(2026, 3, 23),
        "lead_hours": 48,
    }
    return TeamConfig.model_validate(values | changes)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_spring_dst_change_keeps_nine_oclock_local_and_moves_the_utc_instant() -> None:
    config = team()
    before, after = date(2026, 3, 23), date(2026, 4, 6)  # clocks go forward on 29 March

    assert config.slot_after(before) == after
    assert config.starts(before) == utc(2026, 3, 23, 8, 0)  # CET, UTC+1
    assert config.starts(after) == utc(2026, 4, 6, 7, 0)  # CEST, UTC+2
    for day in (before, after):
        assert config.starts(day).astimezone(STOCKHOLM).time() == time(9, 0)
    assert config.starts(after) - config.starts(before) == timedelta(days=14, hours=-1)


def test_autumn_dst_change_keeps_nine_oclock_local_and_moves_the_utc_instant() -> None:
    config = team()
    before, after = date(2026, 10, 19), date(2026, 11, 2)  # clocks go back on 25 October

    assert config.slot_on_or_after(date(2026, 10, 13)) == before
    assert config.slot_after(before) == after
    assert config.starts(before) == utc(2026, 10, 19, 7, 0)  # CEST
    assert config.starts(after) == utc(2026, 11, 2, 8, 0)  # CET
    assert config.starts(after) - config.starts(before) == timedelta(days=14, hours=1)
    # The cut-off is the lead time before the local start, whatever the offset.
    assert config.cutoff(after) == utc(2026, 10, 31, 8, 0)


def test_a_slot_on_the_day_of_the_change_itself_is_at_nine_local() -> None:
    config = team(weekday=7, anchor_on=date(2026, 3, 29))  # Sundays; 29 March is the change

    assert config.starts(date(2026, 3, 29)) == utc(2026, 3, 29, 7, 0)
    assert config.starts(date(2026, 3, 15)) == utc(2026, 3, 15, 8, 0)


def test_the_anchor_week_fixes_the_parity_and_the_weekday_the_day() -> None:
    # Any day of the anchor's week will do: Wednesday 25 March puts Mondays 23 March, …
    config = team(anchor_on=date(2026, 3, 25))

    assert config.slot_on_or_after(date(2026, 3, 24)) == date(2026, 4, 6)
    assert config.slot_on_or_after(date(2026, 3, 23)) == date(2026, 3, 23)
    # … and the cadence runs backwards from the anchor too.
    assert config.slot_on_or_after(date(2026, 3, 1)) == date(2026, 3, 9)
    days = [config.slot_on_or_after(date(2026, 1, 1))]
    for _ in range(30):
        days.append(config.slot_after(days[-1]))
    assert all(d.isoweekday() == 1 for d in days)
    assert {(b - a).days for a, b in itertools.pairwise(days)} == {14}


def test_seats_follow_each_other_so_no_employee_meets_another_case() -> None:
    config = team(capacity=3, meeting_minutes=40)
    slot = date(2026, 4, 6)

    seats = [config.seat_times(slot, i) for i in range(3)]

    assert [s.astimezone(STOCKHOLM).strftime("%H:%M") for s, _ in seats] == [
        "09:00",
        "09:40",
        "10:20",
    ]
    assert config.ends(slot) == seats[-1][1]


def test_the_first_open_slot_is_the_one_whose_booking_has_not_closed() -> None:
    config = team()
    # Monday 6 April 09:00 CEST closes 48 h before: Saturday 4 April 07:00 UTC.
    assert config.first_open_slot(utc(2026, 4, 4, 6, 59)) == date(2026, 4, 6)
    assert config.first_open_slot(utc(2026, 4, 4, 7, 0)) == date(2026, 4, 20)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"starts_at": time(2, 30)}, "between 06:00 and 20:00"),
        ({"starts_at": time(20, 0), "capacity": 12, "meeting_minutes": 60}, "end on the day"),
        ({"weekday": 8}, "less than or equal to 7"),
        ({"capacity": 0}, "greater than or equal to 1"),
    ],
)
def test_a_cadence_that_cannot_be_kept_is_refused(changes: dict[str, object], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        team(**changes)


# ---------------------------------------------------------------- booking


def request(
    deadline: date | None,
    minute: int,
    *,
    after: datetime | None = None,
    releases: uuid.UUID | None = None,
) -> MeetingRequest:
    case_id = uuid.uuid4()
    return MeetingRequest(
        request_id=uuid.uuid4(),
        case_id=case_id,
        case_workflow_id=f"case-{case_id}",
        earliest_deadline_on=deadline,
        requested_at=utc(2026, 3, 30, 8, minute),
        after=after,
        releases=releases,
    )


def booking(config: TeamConfig | None = None) -> Booking:
    config = config or team()
    return Booking(config, TeamState(next_slot_on=date(2026, 4, 6)))


def test_oldest_deadline_first_up_to_capacity_the_rest_wait_for_the_next_slot() -> None:
    b = booking()
    late, none, oldest, old = (
        request(date(2026, 5, 1), 0),
        request(None, 1),
        request(date(2026, 4, 10), 2),
        request(date(2026, 4, 20), 3),
    )
    for r in (late, none, oldest, old):
        assert b.request(r) is None  # new requests wait for the cut-off

    first = b.close(date(2026, 4, 6), now=utc(2026, 4, 4, 7, 0))
    second = b.close(date(2026, 4, 20), now=utc(2026, 4, 18, 7, 0))

    assert [a.request_id for a in first] == [oldest.request_id, old.request_id]
    assert [a.seat for a in first] == [0, 1]
    assert [a.request_id for a in second] == [late.request_id, none.request_id]
    assert b.state.waiting == []
    assert first[1].starts_at == utc(2026, 4, 6, 7, 45)


def test_equal_deadlines_are_booked_in_the_order_they_asked() -> None:
    b = booking(team(capacity=1))
    later, earlier = request(date(2026, 4, 10), 5), request(date(2026, 4, 10), 4)
    b.request(later)
    b.request(earlier)

    (booked,) = b.close(date(2026, 4, 6), now=utc(2026, 4, 4, 7, 0))

    assert booked.request_id == earlier.request_id


def test_a_rebooking_takes_the_next_slot_with_room_after_the_old_one_at_once() -> None:
    b = booking(team(capacity=1))
    first = request(date(2026, 4, 10), 0)
    b.request(first)
    (seat,) = b.close(date(2026, 4, 6), now=utc(2026, 4, 4, 7, 0))
    b.state.next_slot_on = date(2026, 4, 20)
    blocker = request(date(2026, 4, 12), 1, after=utc(2026, 4, 6, 8), releases=uuid.uuid4())
    assert b.request(blocker) is not None  # the 20 April seat is taken by another rebooking

    moved = b.request(
        request(date(2026, 4, 10), 2, after=seat.starts_at, releases=first.request_id)
    )

    assert moved is not None and moved.slot_on == date(2026, 5, 4)
    assert b.view(utc(2026, 4, 5)).slots[0].booked == ()  # the old seat is free again


def test_paused_cut_offs_are_skipped_and_the_cases_wait_without_moving_the_cadence() -> None:
    b = booking()
    waiting = request(date(2026, 4, 10), 0)
    b.request(waiting)
    b.state.paused = True

    assert b.close(date(2026, 4, 6), now=utc(2026, 4, 4, 7, 0)) == []
    b.state.paused = False
    (booked,) = b.close(date(2026, 4, 20), now=utc(2026, 4, 18, 7, 0))

    assert booked.request_id == waiting.request_id
    assert b.state.skipped_slots == 1


def test_a_cut_off_reached_after_the_slot_began_books_nobody_into_the_past() -> None:
    b = booking()
    b.request(request(date(2026, 4, 10), 0))

    assert b.close(date(2026, 4, 6), now=utc(2026, 4, 6, 7, 30)) == []
    assert len(b.state.waiting) == 1

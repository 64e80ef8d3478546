"""iCalendar (RFC 5545/5546) invitations for joint meetings, carrying no personal data."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, vCalAddress
from icalendar.enums import STATUS

from channels.message import CalendarInvite, MeetingSlot

STOCKHOLM = ZoneInfo("Europe/Stockholm")
SUMMARY = "Joint meeting (rehabflow)"
PRODID = "-//rehabflow//notifications//EN"


def meeting_uid(meeting_id: UUID) -> str:
    """One UID per meeting, so calendars update the same event on reschedule or cancel."""
    return f"meeting-{meeting_id}@rehabflow"


def build_invitation(
    meeting: MeetingSlot,
    *,
    method: Literal["REQUEST", "CANCEL"],
    link: str,
    stamped_at: datetime,
    organizer: str | None = None,
    summary: str = SUMMARY,
) -> CalendarInvite:
    """Build the invitation (or cancellation) for `meeting` in Europe/Stockholm time.

    `stamped_at` becomes DTSTAMP; passing the message's creation time keeps the output
    byte-identical when the same notification is rendered again.
    Attendees are left out on purpose: the list of invitees to a rehabilitation meeting
    would tell every recipient who else is involved in the case.
    """
    event = Event.new(
        uid=meeting_uid(meeting.meeting_id),
        sequence=meeting.sequence,
        stamp=stamped_at.astimezone(UTC),
        start=meeting.starts_at.astimezone(STOCKHOLM),
        end=meeting.ends_at.astimezone(STOCKHOLM),
        summary=summary,
        description=f"There is something for you in rehabflow: {link}",
        url=link,
        status=STATUS.CANCELLED if method == "CANCEL" else STATUS.CONFIRMED,
    )
    if organizer is not None:
        # Mail clients only offer accept/decline when the invitation names an organizer.
        event.add("organizer", vCalAddress(f"mailto:{organizer}"))
    calendar = Calendar.new(prodid=PRODID, method=method, subcomponents=[event])
    # Calendar.new invents a random calendar UID; without it the output is reproducible.
    calendar.pop("UID")
    # Outlook ignores TZID unless a VTIMEZONE travels along; the meeting's years suffice.
    calendar.add_missing_timezones(
        first_date=date(meeting.starts_at.year - 1, 1, 1),
        last_date=date(meeting.ends_at.year + 1, 12, 31),
    )
    return CalendarInvite(ics=calendar.to_ical(), method=method)

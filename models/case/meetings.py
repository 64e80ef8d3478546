"""The case's joint-meeting rules: booking by hand or through the unit's team, rebooking,
cancelling, no-shows and the employer's choice of occupational health."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from channels.message import NotificationType, RecipientRole
from models.actions import BookJointMeeting
from models.case import (
    PARTY_RECIPIENT,
    ConsentParty,
    MeetingBooking,
    MeetingRecord,
    NotificationRequest,
    Stage,
)
from models.meetings import (
    CancelMeeting,
    ChooseFhv,
    MeetingRequest,
    RecordNoShow,
    RescheduleMeeting,
    SlotAssignment,
    TeamBooking,
)

from . import planning
from .children import ChildRules
from .effects import Effect, Record, ReleaseSeat, RequestSeat

Applied = tuple[list[Effect], tuple[UUID, ...]]


class MeetingRules(ChildRules):
    def apply_book_joint_meeting(self, action: BookJointMeeting, now: datetime) -> Applied:
        s = self.state
        previous = s.meeting
        meeting_id = (
            action.meeting_id or (previous.meeting_id if previous else None) or self.new_id()
        )
        s.meeting = MeetingBooking(
            meeting_id=meeting_id,
            starts_at=action.starts_at,
            ends_at=action.ends_at,
            slot_id=action.slot_id,
            invited=list(dict.fromkeys(action.invite)),
            sequence=0 if previous is None else previous.sequence + 1,
        )
        s.stage = Stage.JOINT_MEETING
        # A meeting registered after it took place invites nobody: it is recorded next.
        notices: tuple[NotificationRequest, ...] = ()
        if action.starts_at > now:
            notices = self.meeting_notices(
                NotificationType.MEETING_INVITATION
                if previous is None
                else NotificationType.MEETING_RESCHEDULED,
                s.meeting,
            )
        effects: list[Effect] = [
            self.record(
                "joint_meeting_booked" if previous is None else "joint_meeting_rebooked",
                {
                    "meeting_id": str(meeting_id),
                    "starts_at": action.starts_at.isoformat(),
                    "invited": [p.value for p in s.meeting.invited],
                },
                now,
                meeting=self.meeting_record("booked"),
                notifications=notices,
            )
        ]
        # Booked by hand: the team's seat (or place in its queue) is given up.
        effects += self.leave_team()
        return effects, (meeting_id,)

    def apply_reschedule_meeting(self, action: RescheduleMeeting, now: datetime) -> Applied:
        """Give the team's slot back and take the next slot with room after it; the
        invitations are updated (same calendar event, higher sequence) once it is assigned."""
        s = self.state
        meeting, booking = s.meeting, s.team_booking
        assert meeting is not None and booking is not None
        s.meeting = None
        return self.request_seat(
            booking.team_code,
            "reschedule",
            now,
            after=meeting.starts_at,
            releases=booking.request_id,
            continues=meeting,
        ), ()

    def apply_cancel_meeting(self, action: CancelMeeting, now: datetime) -> Applied:
        s = self.state
        meeting = s.meeting
        detail: dict[str, str] = {}
        notices: tuple[NotificationRequest, ...] = ()
        row = None
        if meeting is not None:
            # A cancellation updates the calendar event: same UID, higher sequence.
            meeting.sequence += 1
            row = self.meeting_row(meeting, "cancelled")
            notices = self.meeting_notices(NotificationType.MEETING_CANCELLED, meeting)
            detail = {
                "meeting_id": str(meeting.meeting_id),
                "starts_at": meeting.starts_at.isoformat(),
            }
        s.meeting = None
        effects: list[Effect] = [
            self.record("joint_meeting_cancelled", detail, now, meeting=row, notifications=notices)
        ]
        return effects + self.leave_team(), ()

    def apply_record_no_show(self, action: RecordNoShow, now: datetime) -> Applied:
        """The employee did not come: counted; a team meeting goes to the next slot with room."""
        s = self.state
        meeting, booking = s.meeting, s.team_booking
        assert meeting is not None
        s.no_shows += 1
        s.meeting = None
        effects: list[Effect] = [
            self.record(
                "joint_meeting_no_show",
                {"meeting_id": str(meeting.meeting_id), "no_shows": s.no_shows},
                now,
                meeting=self.meeting_row(meeting, "no_show"),
            )
        ]
        if booking is not None and booking.assigned:
            effects += self.request_seat(
                booking.team_code,
                "no_show",
                now,
                after=meeting.starts_at,
                releases=booking.request_id,
            )
        return effects, ()

    def apply_choose_fhv(self, action: ChooseFhv, now: datetime) -> Applied:
        """The employer decides whether occupational health takes part in the joint meeting."""
        s = self.state
        s.fhv_chosen = action.chosen
        meeting = s.meeting
        notices: tuple[NotificationRequest, ...] = ()
        row = None
        if meeting is not None and not s.meeting_held:
            if action.chosen and ConsentParty.FHV not in meeting.invited:
                meeting.invited.append(ConsentParty.FHV)
                row = self.meeting_record("booked")
                notices = (self._notice(NotificationType.MEETING_INVITATION, RecipientRole.FHV),)
            elif not action.chosen and ConsentParty.FHV in meeting.invited:
                meeting.invited.remove(ConsentParty.FHV)
                notices = (self._notice(NotificationType.MEETING_CANCELLED, RecipientRole.FHV),)
        kind = "joint_meeting_fhv_chosen" if action.chosen else "joint_meeting_fhv_not_chosen"
        return [
            self.record(kind, {"fhv": action.chosen}, now, meeting=row, notifications=notices)
        ], ()

    # ------------------------------------------------------------------ the team

    def team_found(self, team_code: str | None, reason: str, now: datetime) -> list[Effect]:
        """The unit's team (or none): join the queue for its next slot with room."""
        s = self.state
        s.team_looked_up = True
        # A meeting booked by hand while the team was looked up stands.
        if team_code is not None and s.meeting is None and s.stage != Stage.CLOSED:
            return self.request_seat(team_code, reason, now)
        return []

    def request_seat(
        self,
        team_code: str,
        reason: str,
        now: datetime,
        *,
        after: datetime | None = None,
        releases: UUID | None = None,
        continues: MeetingBooking | None = None,
    ) -> list[Effect]:
        """Ask the team for a seat (a rebooking also gives up the seat it `releases`).

        The request carries the case's earliest open deadline, by which the team orders
        its queue. If the team's workflow is not running, the coordinator books by hand.
        """
        s = self.state
        upcoming = planning.next_deadline(s)
        request = MeetingRequest(
            request_id=self.new_id(),
            case_id=self.input.case_id,
            case_workflow_id=self.workflow_id,
            earliest_deadline_on=upcoming.due_on if upcoming else None,
            requested_at=now,
            after=after,
            releases=releases,
        )
        s.team_booking = TeamBooking(
            team_code=team_code,
            request_id=request.request_id,
            requested_at=request.requested_at,
            continues_meeting=continues.meeting_id if continues else None,
            continues_sequence=continues.sequence if continues else 0,
        )
        return [
            self.record("joint_meeting_requested", {"team": team_code, "reason": reason}, now),
            RequestSeat(team_code, request),
        ]

    def team_unreachable(self, team_code: str, now: datetime) -> Record:
        self.state.team_booking = None
        return self.record("meeting_team_unreachable", {"team": team_code}, now)

    def slot_assigned(self, assignment: SlotAssignment, now: datetime) -> list[Effect]:
        """The team's answer: a seat in a slot. A stale answer gives the seat back."""
        s = self.state
        booking = s.team_booking
        if booking is None or booking.request_id != assignment.request_id:
            return [ReleaseSeat(assignment.team_code, assignment.request_id)]
        if booking.assigned:
            return []  # the same answer twice
        booking.assigned = True
        rebooked = booking.continues_meeting is not None
        s.meeting = MeetingBooking(
            meeting_id=booking.continues_meeting or self.new_id(),
            starts_at=assignment.starts_at,
            ends_at=assignment.ends_at,
            slot_id=assignment.slot_id,
            invited=self.team_invitees(),
            sequence=booking.continues_sequence + 1 if rebooked else 0,
        )
        s.meeting_held = False
        s.stage = Stage.JOINT_MEETING
        meeting = s.meeting
        return [
            self.record(
                "joint_meeting_rebooked" if rebooked else "joint_meeting_booked",
                {
                    "meeting_id": str(meeting.meeting_id),
                    "starts_at": meeting.starts_at.isoformat(),
                    "invited": [p.value for p in meeting.invited],
                    "team": assignment.team_code,
                    "slot_id": str(assignment.slot_id),
                },
                now,
                meeting=self.meeting_record("booked"),
                notifications=self.meeting_notices(
                    NotificationType.MEETING_RESCHEDULED
                    if rebooked
                    else NotificationType.MEETING_INVITATION,
                    meeting,
                ),
            )
        ]

    def leave_team(self) -> list[Effect]:
        """Give up the team's seat or queue place (only cases of a team have one)."""
        booking = self.state.team_booking
        if booking is None:
            return []
        self.state.team_booking = None
        return [ReleaseSeat(booking.team_code, booking.request_id)]

    def team_invitees(self) -> list[ConsentParty]:
        """FK takes part whenever the employee consents, before any benefit case exists;
        FHV when the employer chose it for this case and the employee consents."""
        consents = self.state.consents
        invited = [ConsentParty.FK] if consents.get(ConsentParty.FK, False) else []
        if self.state.fhv_chosen and consents.get(ConsentParty.FHV, False):
            invited.append(ConsentParty.FHV)
        return invited

    def invite_to_team_meeting(self, party: ConsentParty) -> tuple[NotificationRequest, ...]:
        """Consent given after a team booking: the party joins the meeting if it should."""
        s = self.state
        meeting, booking = s.meeting, s.team_booking
        if meeting is None or s.meeting_held or booking is None or not booking.assigned:
            return ()
        role = PARTY_RECIPIENT.get(party)
        if role is None or party in meeting.invited or party not in self.team_invitees():
            return ()
        meeting.invited.append(party)
        return (self._notice(NotificationType.MEETING_INVITATION, role),)

    # ------------------------------------------------------------------ rows and notices

    def _notice(self, kind: NotificationType, role: RecipientRole) -> NotificationRequest:
        assert self.state.meeting is not None
        return NotificationRequest(
            notification_type=kind, recipient_role=role, meeting=self.state.meeting.slot
        )

    @staticmethod
    def meeting_notices(
        notification_type: NotificationType, meeting: MeetingBooking
    ) -> tuple[NotificationRequest, ...]:
        roles = [RecipientRole.EMPLOYEE, RecipientRole.MANAGER, RecipientRole.COORDINATOR]
        roles += [PARTY_RECIPIENT[p] for p in meeting.invited if p in PARTY_RECIPIENT]
        return tuple(
            NotificationRequest(
                notification_type=notification_type, recipient_role=r, meeting=meeting.slot
            )
            for r in roles
        )

    @staticmethod
    def meeting_row(
        meeting: MeetingBooking, status: Literal["cancelled", "no_show"]
    ) -> MeetingRecord:
        """The `meetings` row of a meeting that was called off or missed."""
        return MeetingRecord(
            meeting_id=meeting.meeting_id,
            starts_at=meeting.starts_at,
            ends_at=meeting.ends_at,
            sequence=meeting.sequence,
            status=status,
            invited=("employee", "manager", "coordinator", *(p.value for p in meeting.invited)),
        )

    def meeting_record(
        self,
        status: Literal["booked", "held"],
        attended: tuple[str, ...] | None = None,
        reinforced_support: bool | None = None,
        held_by: str | None = None,
    ) -> MeetingRecord:
        meeting = self.state.meeting
        assert meeting is not None
        return MeetingRecord(
            meeting_id=meeting.meeting_id,
            starts_at=meeting.starts_at,
            ends_at=meeting.ends_at,
            sequence=meeting.sequence,
            status=status,
            invited=("employee", "manager", "coordinator", *(p.value for p in meeting.invited)),
            attended=attended,
            reinforced_support=reinforced_support,
            held_by=held_by,
        )

"""Activities of the programme cycle: reminders that are due, and a course round's invitations.

Each reminder and invitation is written to the outbox under a key made of who, which due
date and which round of reminding, so a retried activity or a replayed check sends nothing
twice.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from channels.message import MeetingSlot, NotificationType, RecipientRole
from models.programme import (
    ReminderCheck,
    ReminderResult,
    RoundScheduled,
    ScheduleRound,
    apt_due_on,
    course_due_on,
    next_reminder_on,
    reminder_round,
)
from store.outbox import enqueue_staff_notification
from store.programme import apt_statuses, create_round, manager_statuses, mark_invited


class ProgrammeActivities:
    """Given its sessionmaker by the worker."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    @activity.defn
    async def send_due_reminders(self, check: ReminderCheck) -> ReminderResult:
        """Remind each manager whose course is due (and HR), and each unit whose APT dialogue
        is due (its managers and HR); return the next day a reminder will be owed."""
        today, policy = check.on, check.policy
        sent = 0
        upcoming = []
        async with self._sessionmaker.begin() as session:
            for manager in await manager_statuses(session, today):
                due = course_due_on(manager.appointed_on, manager.last_trained_on, policy)
                upcoming.append(next_reminder_on(due, today, policy))
                owed = reminder_round(due, today, policy)
                if owed is None:
                    continue
                key = f"programme:course-due:{manager.manager_id}:{due}:{owed}"
                sent += await enqueue_staff_notification(
                    session,
                    idempotency_key=f"{key}:manager",
                    notification_type=NotificationType.MANAGER_COURSE_DUE,
                    recipient_role=RecipientRole.MANAGER,
                    unit_code=manager.unit_code,
                    contact_ids=[manager.contact_id],
                    due_on=due,
                )
                sent += await enqueue_staff_notification(
                    session,
                    idempotency_key=f"{key}:hr",
                    notification_type=NotificationType.MANAGER_COURSE_DUE,
                    recipient_role=RecipientRole.COORDINATOR,
                    unit_code=manager.unit_code,
                    due_on=due,
                )
            for unit in await apt_statuses(session, today):
                due = apt_due_on(unit.registered_on, unit.last_held_on, policy)
                upcoming.append(next_reminder_on(due, today, policy))
                owed = reminder_round(due, today, policy)
                if owed is None:
                    continue
                for role in (RecipientRole.MANAGER, RecipientRole.COORDINATOR):
                    sent += await enqueue_staff_notification(
                        session,
                        idempotency_key=f"programme:apt-due:{unit.unit_code}:{due}:{owed}:{role}",
                        notification_type=NotificationType.APT_DIALOGUE_DUE,
                        recipient_role=role,
                        unit_code=unit.unit_code,
                        due_on=due,
                    )
        return ReminderResult(sent=sent, next_on=min(upcoming, default=None))

    @activity.defn
    async def schedule_course_round(self, round_: ScheduleRound) -> RoundScheduled:
        """Record the round and its sessions; invite every manager in post to one session
        (in turn, so the sessions fill evenly), each with an `.ics` invitation."""
        sessions = sorted(round_.sessions, key=lambda s: s.starts_at)
        first_day = sessions[0].starts_at.date()
        invited = 0
        async with self._sessionmaker.begin() as session:
            await create_round(
                session,
                round_.round_id,
                round_.year,
                round_.title,
                [(s.session_id, s.starts_at, s.ends_at) for s in sessions],
            )
            managers = await manager_statuses(session, first_day)
            for n, manager in enumerate(managers):
                course = sessions[n % len(sessions)]
                await mark_invited(
                    session, course.session_id, manager.manager_id, activity.info().started_time
                )
                invited += await enqueue_staff_notification(
                    session,
                    idempotency_key=(
                        f"programme:course-invitation:{course.session_id}:{manager.manager_id}"
                    ),
                    notification_type=NotificationType.MANAGER_COURSE_INVITATION,
                    recipient_role=RecipientRole.MANAGER,
                    unit_code=manager.unit_code,
                    contact_ids=[manager.contact_id],
                    meeting=MeetingSlot(
                        meeting_id=course.session_id,
                        starts_at=course.starts_at,
                        ends_at=course.ends_at,
                    ),
                )
        return RoundScheduled(round_id=round_.round_id, invited=invited)

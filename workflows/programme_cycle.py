"""ProgrammeCycleWorkflow: an organisation's yearly cycle of manager courses and APT dialogues.

A durable timer loop, one per organisation (id `programme-<organisation>`). Each turn an
activity reads the record store, sends the reminders that are owed today (a manager whose
course in insurance medicine is more than 12 months old, or a new manager without one after
the policy's number of days; a unit without an APT dialogue for 12 months) and says on which
day the next one will be owed; the loop sleeps until that day's reminder time. Recording
attendance, a manager or a dialogue signals `programme_changed`, which wakes it to look again.
A course round (`schedule_round`) is recorded and its invitations sent by an activity.

Why a timer loop and not a Temporal Schedule: the next reminder day follows from the data,
not from a fixed calendar, and the time-skipping test server skips timers while it does not
implement Schedules. Every fact lives in the record store, so the workflow's state is counts.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy, WorkflowIDConflictPolicy

with workflow.unsafe.imports_passed_through():
    from activities.programme import ProgrammeActivities
    from models.deadlines import local_date
    from models.programme import (
        ProgrammeChanged,
        ProgrammeInput,
        ProgrammeState,
        ProgrammeView,
        ReminderCheck,
        RoundScheduled,
        ScheduleRound,
        programme_workflow_id,
        reminder_instant,
    )

_ACTIVITY_TIMEOUT = timedelta(minutes=2)
_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
# Look again at least this often, even when nothing falls due (a new unit, a new manager
# recorded without a signal).
_LONGEST_SLEEP = timedelta(days=31)


class _Rejected(ValueError):
    """A round that does not fit; the message says why."""


@workflow.defn
class ProgrammeCycleWorkflow:
    @workflow.init
    def __init__(self, input: ProgrammeInput) -> None:
        self._input = input
        self._state = input.carried or ProgrammeState()
        self._changed = False
        self._next_check_at: datetime | None = None

    @workflow.run
    async def run(self, input: ProgrammeInput) -> None:
        for _ in range(input.checks_per_run):
            self._changed = False
            result = await workflow.execute_activity_method(
                ProgrammeActivities.send_due_reminders,
                ReminderCheck(on=local_date(workflow.now()), policy=input.policy),
                start_to_close_timeout=_ACTIVITY_TIMEOUT,
                retry_policy=_RETRY,
            )
            self._state = self._state.model_copy(
                update={
                    "checks": self._state.checks + 1,
                    "reminders_sent": self._state.reminders_sent + result.sent,
                }
            )
            wake_at = workflow.now() + _LONGEST_SLEEP
            if result.next_on is not None:
                wake_at = min(wake_at, reminder_instant(result.next_on, input.policy))
            self._next_check_at = wake_at
            self._publish()
            if wake_at > workflow.now():
                try:
                    await workflow.wait_condition(
                        lambda: self._changed, timeout=wake_at - workflow.now()
                    )
                except TimeoutError:
                    pass
            if workflow.info().is_continue_as_new_suggested():
                break
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(input.model_copy(update={"carried": self._state}))

    @workflow.signal
    def programme_changed(self, change: ProgrammeChanged) -> None:
        self._changed = True

    @workflow.update
    async def schedule_round(self, round_: ScheduleRound) -> RoundScheduled:
        result = await workflow.execute_activity_method(
            ProgrammeActivities.schedule_course_round,
            round_,
            start_to_close_timeout=_ACTIVITY_TIMEOUT,
            retry_policy=_RETRY,
        )
        self._state = self._state.model_copy(
            update={"rounds_scheduled": self._state.rounds_scheduled + 1}
        )
        # New invitations change nobody's due date, but a look costs little.
        self._changed = True
        return result

    @schedule_round.validator
    def _validate_schedule_round(self, round_: ScheduleRound) -> None:
        if min(s.starts_at for s in round_.sessions) <= workflow.now():
            raise _Rejected("every session of a round must start in the future")

    @workflow.query
    def view(self) -> ProgrammeView:
        return ProgrammeView(
            organisation=self._input.organisation,
            checks=self._state.checks,
            reminders_sent=self._state.reminders_sent,
            rounds_scheduled=self._state.rounds_scheduled,
            next_check_at=self._next_check_at,
        )

    def _publish(self) -> None:
        """The Temporal UI's current details: counts and the next instant, nothing else."""
        next_check = self._next_check_at.isoformat() if self._next_check_at else "-"
        workflow.set_current_details(
            "\n".join(
                [
                    f"**Organisation:** {self._input.organisation}",
                    f"**Next check:** {next_check}",
                    f"**Reminders sent:** {self._state.reminders_sent}",
                    f"**Course rounds:** {self._state.rounds_scheduled}",
                ]
            )
        )


async def ensure_programme_running(client: Client, task_queue: str, organisation: str) -> None:
    """Start the organisation's cycle, or leave the one that is already running alone."""
    await client.start_workflow(
        ProgrammeCycleWorkflow.run,
        ProgrammeInput(organisation=organisation),
        id=programme_workflow_id(organisation),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=f"Manager courses and APT dialogues of {organisation}",
    )

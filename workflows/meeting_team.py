"""MeetingTeamWorkflow: one joint-meeting team's biweekly cadence, as a durable timer loop.

The workflow owns the team's slots: it sleeps until the next slot's booking cut-off (slot
start minus lead time), books the waiting cases into it, oldest deadline first and up to the
slot's capacity, tells each case its seat by signal, and sleeps until the next cut-off two
weeks on. Cases ask and release by signal. Pausing skips cut-offs (the cases wait) without
moving the cadence. It continues as new after a year of slots, or when Temporal suggests.

Why not a Temporal Schedule: booking needs per-slot state (seats, the queue, its order)
that one workflow must own anyway, and a Schedule would only start a short workflow every
second week that has to find that state somewhere; the time-skipping test server also does
not implement Schedules, while a timer loop is skipped like any other timer.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from models.meetings import (
        Booking,
        CadenceChange,
        MeetingRelease,
        MeetingRequest,
        SlotAssignment,
        TeamConfig,
        TeamInput,
        TeamState,
        TeamView,
        team_workflow_id,
    )

# The case's signal, by name: the case workflow imports this module.
CASE_ASSIGNED_SIGNAL = "meeting_slot_assigned"


class _Rejected(ValueError):
    """An operation that does not fit the cadence's state; the message says why."""


@workflow.defn
class MeetingTeamWorkflow:
    @workflow.init
    def __init__(self, input: TeamInput) -> None:
        self._config = input.config
        state = input.carried.model_copy(deep=True) if input.carried else TeamState()
        if state.next_slot_on is None:
            # Set here, not in run: signals of the first activation are handled before it.
            state.next_slot_on = self._config.first_open_slot(workflow.now())
        self._booking = Booking(self._config, state)

    @property
    def _state(self) -> TeamState:
        return self._booking.state

    @workflow.run
    async def run(self, input: TeamInput) -> None:
        s = self._state
        for _ in range(input.slots_per_run):
            assert s.next_slot_on is not None
            slot_on = s.next_slot_on
            self._publish()
            cutoff = self._config.cutoff(slot_on)
            if cutoff > workflow.now():
                await workflow.sleep(cutoff - workflow.now())
            # The state changes before the first await, so a rebooking that arrives while
            # the cases are told already sees the next slot as the one that is open.
            booked = self._booking.close(slot_on, workflow.now())
            s.next_slot_on = self._config.slot_after(slot_on)
            self._booking.forget_past(workflow.now())
            for assignment in booked:
                await self._tell_case(assignment)
            if workflow.info().is_continue_as_new_suggested():
                break
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(input.model_copy(update={"carried": self._state}))

    # ------------------------------------------------------------------ from cases

    @workflow.signal
    async def request_meeting(self, request: MeetingRequest) -> None:
        assignment = self._booking.request(request)
        self._publish()
        if assignment is not None:
            await self._tell_case(assignment)

    @workflow.signal
    def release_meeting(self, release: MeetingRelease) -> None:
        self._booking.release(release.request_id)
        self._publish()

    # ------------------------------------------------------------------ operations

    @workflow.query
    def view(self) -> TeamView:
        return self._booking.view(workflow.now())

    @workflow.update
    def pause(self, change: CadenceChange) -> TeamView:
        self._state.paused = True
        self._publish()
        return self.view()

    @pause.validator
    def _validate_pause(self, change: CadenceChange) -> None:
        if self._state.paused:
            raise _Rejected("the cadence is already paused")

    @workflow.update
    def resume(self, change: CadenceChange) -> TeamView:
        self._state.paused = False
        self._publish()
        return self.view()

    @resume.validator
    def _validate_resume(self, change: CadenceChange) -> None:
        if not self._state.paused:
            raise _Rejected("the cadence is not paused")

    # ------------------------------------------------------------------ helpers

    async def _tell_case(self, assignment: SlotAssignment) -> None:
        seat = next(
            (
                seat
                for slot in self._state.slots
                for seat in slot.seats
                if seat is not None and seat.request_id == assignment.request_id
            ),
            None,
        )
        if seat is None:
            return  # released while earlier cases were being told
        try:
            await workflow.get_external_workflow_handle(seat.case_workflow_id).signal(
                CASE_ASSIGNED_SIGNAL, assignment
            )
        except FailureError:
            # The case no longer runs: its seat goes back to the slot.
            workflow.logger.warning("a case could not be told its seat; seat released")
            self._booking.release(assignment.request_id)
            self._publish()

    def _publish(self) -> None:
        """The Temporal UI's current details: the cadence, counts and instants only."""
        s = self._state
        view = self.view()
        lines = [
            f"**Cadence:** every second {_WEEKDAY[self._config.weekday]} at "
            f"{self._config.starts_at:%H:%M} Europe/Stockholm",
            f"**Status:** {'paused' if s.paused else 'running'}",
            f"**Next cut-off:** {view.next_cutoff_at.isoformat()}",
            f"**Waiting:** {len(view.waiting)}",
            "**Upcoming slots:**",
            *(
                f"- {slot.starts_at.isoformat()} · {slot.status} · "
                f"{len(slot.booked)}/{slot.capacity} booked"
                for slot in view.slots
            ),
        ]
        workflow.set_current_details("\n".join(lines))


_WEEKDAY = {
    1: "Monday",
    2: "Tuesday",
    3: "Wednesday",
    4: "Thursday",
    5: "Friday",
    6: "Saturday",
    7: "Sunday",
}


async def ensure_team_running(client: Client, task_queue: str, config: TeamConfig) -> None:
    """Start the team's workflow, or leave the one that is already running alone."""
    await client.start_workflow(
        MeetingTeamWorkflow.run,
        TeamInput(config=config),
        id=team_workflow_id(config.code),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=f"Joint-meeting team {config.code} · every second week",
    )

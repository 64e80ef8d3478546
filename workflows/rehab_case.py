"""RehabCaseWorkflow: the thin Temporal shell over the pure case core (models/case/).

Each update asks the core whether the action fits (`check`, the validator, run again in
the handler before any change), lets it change the state (`apply`) and runs the effects it
returns, in order: record-store writes, children started or finished, the meeting team
asked or released. The run loop sleeps until the core's next instant (a deadline step, the
long-term track, erasure) or until something changes, and fires what is due.

The lean shape (patch `case-lean`, every case started since): the deadline timer is
re-armed only when the next instant moves, search attributes are upserted only when they
change, and the case continues as new only when Temporal suggests it or its history passes
CONTINUE_AS_NEW_EVENTS. Cases started before keep their old command sequence (stage-
boundary continue-as-new, a timer per wake-up), so their saved histories replay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.meetings import MeetingTeamDirectory
    from activities.records import CaseRecords
    from models.actions import (
        AbsenceNews,
        CaseActionResult,
        InterventionOverdueNotice,
    )
    from models.case import (
        CaseChanges,
        CaseInput,
        CaseResult,
        CaseState,
        CaseView,
        DeadlinesView,
        OpenActionsView,
        OpenCaseRecord,
        ProtectedTrackView,
        Stage,
        planning,
    )
    from models.case.actions import ACTION_BY_NAME
    from models.case.effects import (
        AskTeam,
        Effect,
        Erase,
        FinishChild,
        Record,
        RecordAll,
        ReleaseSeat,
        RequestSeat,
        StartChild,
        batched,
    )
    from models.case.rules import CaseCore, initial_state
    from models.information_requests import (
        InformationRequestOverdueNotice,
    )
    from models.meetings import (
        MeetingRelease,
        SlotAssignment,
        TeamLookup,
        team_workflow_id,
    )
    from models.search_attributes import REHAB_OVERDUE, REHAB_STAGE, REHAB_UNIT
    from workflows.meeting_team import MeetingTeamWorkflow

from workflows.case_children import CaseChildren

# Record-store writes: retried with backoff for as long as the database is away,
# because a case must never stop just because PostgreSQL restarted.
RECORD_STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
)
RECORD_STORE_TIMEOUT = timedelta(seconds=30)
# Rejections raised by a handler that re-checks the core's rule (two actions in one
# workflow task can both pass validation; the second then fails here, state unchanged).
INVALID_ACTION = "InvalidCaseAction"
# Cases opened by the first version (which only recorded the case and waited) keep that path.
LIFECYCLE_PATCH = "case-lifecycle"
# Cases opened before joint-meeting teams existed book their meetings by hand only.
TEAM_MEETINGS_PATCH = "team-meetings"
# The lean shape (see the module docstring).
LEAN_PATCH = "case-lean"
# Continue as new above this many history events even without Temporal's suggestion (which
# comes at 4,096 events or 4 MiB): a lifecycle takes about 150 events, so a case that gets
# here is unusually long, and a shorter history replays faster when the cache drops it.
CONTINUE_AS_NEW_EVENTS = 2_000


def _started_with(stage: Stage) -> tuple[Stage, bool]:
    """The stage and overdue flag this run's search attributes had when it started."""
    started = workflow.info().typed_search_attributes
    shown = started.get(REHAB_STAGE)
    return (Stage(shown) if shown else stage, bool(started.get(REHAB_OVERDUE)))


@workflow.defn
class RehabCaseWorkflow(CaseChildren):
    @workflow.init
    def __init__(self, input: CaseInput) -> None:
        self._input = input
        self._core = CaseCore(
            input, initial_state(input), workflow.info().workflow_id, workflow.uuid4
        )
        self._record_lock = asyncio.Lock()
        self._wake = False
        # What this run last upserted; published only on change.
        self._published: tuple[Stage, bool] | None = None
        self._stage_at_start = self._state.stage
        self._lean: bool | None = None
        self._timer: asyncio.Task[None] | None = None
        self._timer_at: datetime | None = None
        # The opening, until the first change carries it (see CaseInput).
        self._opening: OpenCaseRecord | None = None
        self._init_children()

    @property
    def _state(self) -> CaseState:
        return self._core.state

    def _is_lean(self) -> bool:
        if self._lean is None:
            self._lean = self._patched(LEAN_PATCH)
        return self._lean

    def _patched(self, patch_id: str) -> bool:
        """A case opened with its first change was started by code that has every patch
        before it: it takes the new path without a marker (and its search-attribute upsert)."""
        return self._input.opened_with_first_change or workflow.patched(patch_id)

    def _opening_record(self) -> OpenCaseRecord:
        return self._input.opening_record(workflow.info().workflow_id)

    # ------------------------------------------------------------------ the run loop

    @workflow.run
    async def run(self, input: CaseInput) -> CaseResult:
        s = self._state
        if not s.recorded and input.opened_with_first_change:
            # Started with its stage and overdue flag; opened by its first change.
            self._published = (s.stage, s.overdue)
            if input.opening_recorded:
                # The opener wrote this same first change with the case's row.
                self._core.opening()
                if input.passed_recorded:
                    # ... and what had fallen due by then; the case started with the
                    # search attributes that leaves it with.
                    if self._core.passed_at_opening() is None:  # fails the task, not the case
                        raise RuntimeError("the opener recorded what this code would not")
                    self._published = _started_with(s.stage)
            else:
                self._opening = self._opening_record()
                await self._run([self._core.opened(workflow.now())])
            s.recorded = True
            if input.team_known and s.meeting is None:
                await self._run(
                    self._core.team_found(input.team_code, "identified", workflow.now())
                )
        elif not s.recorded:
            await workflow.execute_activity_method(
                CaseRecords.open_case,
                self._opening_record(),
                start_to_close_timeout=RECORD_STORE_TIMEOUT,
                retry_policy=RECORD_STORE_RETRY,
            )
            workflow.upsert_search_attributes(
                [REHAB_STAGE.value_set(s.stage.value), REHAB_UNIT.value_set(input.unit_code)]
            )
            if not workflow.patched(LIFECYCLE_PATCH):
                # A case opened by the first, stub version only waits to be closed.
                s.recorded = True
                await workflow.wait_condition(lambda: s.stage == Stage.CLOSED)
                return CaseResult(case_id=input.case_id, stage=s.stage, outcome=s.outcome)
            await self._run([self._core.opened(workflow.now())])
            # Recorded means the API finds the case with its sick leave and deadlines.
            s.recorded = True
        elif self._is_lean():
            # Search attributes carry over to a new run: publish only what changes.
            self._published = (s.stage, s.overdue)
        lean = self._is_lean()
        self._publish()
        if (
            s.stage == Stage.IDENTIFIED
            and s.meeting is None
            and not s.team_looked_up
            and self._patched(TEAM_MEETINGS_PATCH)
        ):
            await self._ask_team("identified")
        while not s.erased:
            await self._run(self._core.fire_due(workflow.now()))
            if s.erased:
                break
            if self._may_continue_as_new():
                # Every handler finishes (and records) before the state is handed over; a
                # finishing handler may have started children, so ask again after.
                await workflow.wait_condition(self._settled)
                if self._may_continue_as_new():
                    workflow.continue_as_new(input.model_copy(update={"carried": s}))
            self._wake = False
            next_at = planning.next_instant(s, input.policy)
            if next_at is not None and next_at <= workflow.now():
                continue
            if lean:
                self._arm(next_at)
                await workflow.wait_condition(lambda: self._wake or self._timer_done())
                continue
            timeout = None if next_at is None else next_at - workflow.now()
            try:
                await workflow.wait_condition(lambda: self._wake, timeout=timeout)
            except TimeoutError:
                pass
        await workflow.wait_condition(self._settled)
        return CaseResult(case_id=input.case_id, stage=s.stage, outcome=s.outcome)

    def _arm(self, at: datetime | None) -> None:
        """Keep the running timer when the next instant did not move; else replace it."""
        if at == self._timer_at and self._timer is not None and not self._timer.done():
            return
        if self._timer is not None and not self._timer.done():
            self._timer.cancel()
        self._timer_at = at
        self._timer = (
            None if at is None else asyncio.create_task(workflow.sleep(at - workflow.now()))
        )

    def _timer_done(self) -> bool:
        return self._timer is not None and self._timer.done()

    def _may_continue_as_new(self) -> bool:
        """Lean: when Temporal suggests it, or past CONTINUE_AS_NEW_EVENTS. Before: also at
        every stage boundary, once the children this run started have finished."""
        info = workflow.info()
        if info.is_continue_as_new_suggested():
            return True
        if self._is_lean():
            return info.get_current_history_length() > CONTINUE_AS_NEW_EVENTS
        return self._state.stage != self._stage_at_start and not self._running_children

    # ------------------------------------------------------------------ queries

    @workflow.query
    def state(self) -> CaseView:
        return planning.case_view(self._state, self._input)

    @workflow.query
    def deadlines(self) -> DeadlinesView:
        return DeadlinesView(deadlines=planning.deadline_views(self._state))

    @workflow.query
    def open_actions(self) -> OpenActionsView:
        """The coordinator's tasks, including the protected track's."""
        actions = planning.open_actions(self._state, include_protected=True)
        return OpenActionsView(actions=tuple(actions))

    @workflow.query
    def protected_track(self) -> ProtectedTrackView:
        """For the coordinator: whether a disclosure opened the track, and its interventions."""
        s = self._state
        return ProtectedTrackView(
            disclosed=s.violence_disclosed,
            interventions=tuple(iv.model_copy() for iv in s.interventions if iv.protected),
        )

    @workflow.update
    async def wait_until_recorded(self) -> Stage:
        """Returns (the stage) once the case is in the record store, so the API can answer
        consistently; the whole view is the `state` query's."""
        await workflow.wait_condition(lambda: self._state.recorded)
        return self._state.stage

    # ------------------------------------------------------------------ actions

    @workflow.update(dynamic=True)
    async def act(self, name: str, args: Sequence[RawValue]) -> CaseActionResult:
        """Every declared action (models/case/actions.py), by its update name.

        One handler for all of them: the sandbox builds the workflow class anew for every
        run it creates, and the SDK's checks of 22 typed updates and their validators were
        most of that cost. The declarations give each name its input model."""
        return await self._act(name, self._action(name, args))

    @act.validator
    def _check_act(self, name: str, args: Sequence[RawValue]) -> None:
        self._check(name, self._action(name, args))

    def _action(self, name: str, args: Sequence[RawValue]) -> BaseModel:
        declared = ACTION_BY_NAME.get(name)
        if declared is None:
            raise ApplicationError(
                "no such action on a case", type=INVALID_ACTION, non_retryable=True
            )
        try:
            (raw,) = args
            action = workflow.payload_converter().from_payload(raw.payload, declared.input_model)
        except Exception:
            # Never the rejected values: only the API's 422 names a field, and it has.
            raise ApplicationError(
                "the action's input does not fit it", type=INVALID_ACTION, non_retryable=True
            ) from None
        assert isinstance(action, BaseModel)
        return action

    # ------------------------------------------------------------------ signals

    @workflow.signal(name="absence_news")
    async def absence_news(self, news: AbsenceNews) -> None:
        """Sick leave from payroll data, applied as the action a coordinator would take;
        a signal, so the monitor never waits on this case."""
        await self._run(self._core.absence_news(news, workflow.now()))

    @workflow.signal(name="intervention_overdue")
    async def intervention_overdue(self, notice: InterventionOverdueNotice) -> None:
        await self._run(self._core.intervention_overdue(notice, workflow.now()))

    @workflow.signal(name="information_request_overdue")
    async def information_request_overdue(self, notice: InformationRequestOverdueNotice) -> None:
        await self._run(self._core.information_request_overdue(notice, workflow.now()))

    @workflow.signal(name="meeting_slot_assigned")
    async def meeting_slot_assigned(self, assignment: SlotAssignment) -> None:
        await self._run(self._core.slot_assigned(assignment, workflow.now()))

    # ------------------------------------------------------------------ running effects

    def _check(self, name: str, action: Any) -> None:
        reason = self._core.check(name, action, workflow.now())
        if reason is not None:
            raise ApplicationError(reason, type=INVALID_ACTION, non_retryable=True)

    async def _act(self, name: str, action: Any) -> CaseActionResult:
        # Checked again before any change: see INVALID_ACTION.
        self._check(name, action)
        effects, created = self._core.apply(name, action, workflow.now())
        await self._run(effects)
        s = self._state
        if self._is_lean():
            # The API keeps only the stage and the created ids.
            return CaseActionResult(stage=s.stage, created_ids=created)
        return CaseActionResult(stage=s.stage, created_ids=created, case=self.state())

    async def _run(self, effects: list[Effect]) -> None:
        if self._input.records_in_batches:
            effects = batched(effects)
        for effect in effects:
            match effect:
                case Record():
                    await self._record(effect)
                case RecordAll():
                    await self._record_all(effect.records)
                case StartChild() if self._input.records_locally:
                    self._in_background(self._start_child_or_log(effect), effect.workflow_id)
                case StartChild():
                    await self._start_child(effect)
                case FinishChild() if self._input.records_locally:
                    self._in_background(self._finish_child(effect))
                case FinishChild():
                    await self._finish_child_and_wait(effect)
                case AskTeam():
                    if self._patched(TEAM_MEETINGS_PATCH):
                        await self._ask_team(effect.reason)
                case RequestSeat():
                    try:
                        await workflow.get_external_workflow_handle_for(
                            MeetingTeamWorkflow.run, team_workflow_id(effect.team_code)
                        ).signal(MeetingTeamWorkflow.request_meeting, effect.request)
                    except FailureError:
                        await self._record(
                            self._core.team_unreachable(effect.team_code, workflow.now())
                        )
                case ReleaseSeat():
                    try:
                        await workflow.get_external_workflow_handle_for(
                            MeetingTeamWorkflow.run, team_workflow_id(effect.team_code)
                        ).signal(
                            MeetingTeamWorkflow.release_meeting,
                            MeetingRelease(request_id=effect.request_id),
                        )
                    except FailureError:
                        workflow.logger.warning("the meeting team could not be told of a release")
                case Erase():
                    await workflow.execute_activity_method(
                        CaseRecords.erase_personal_data,
                        effect.request,
                        start_to_close_timeout=RECORD_STORE_TIMEOUT,
                        retry_policy=RECORD_STORE_RETRY,
                    )
                    self._core.erased()
                    self._publish()

    async def _record(self, effect: Record) -> None:
        """One change; writes are serialized, and each carries what changed since the one
        before it, so the record store never goes back to older values."""
        self._publish(effect.shown)
        self._wake = True
        async with self._record_lock:
            change = self._core.as_sent(effect.change)
            if self._opening is not None:
                change = change.model_copy(update={"opening": self._opening})
                self._opening = None
            if self._input.records_locally:
                # Retried in the worker (beyond a minute, by a durable timer) for as long
                # as the database is away, like the activity; the write is idempotent.
                await workflow.execute_local_activity_method(
                    CaseRecords.record_change,
                    change,
                    start_to_close_timeout=RECORD_STORE_TIMEOUT,
                    retry_policy=RECORD_STORE_RETRY,
                )
                return
            await workflow.execute_activity_method(
                CaseRecords.record_change,
                change,
                start_to_close_timeout=RECORD_STORE_TIMEOUT,
                retry_policy=RECORD_STORE_RETRY,
            )

    async def _record_all(self, records: tuple[Record, ...]) -> None:
        """Changes that came together, written in one transaction; see `_record`."""
        self._publish(records[-1].shown)
        self._wake = True
        async with self._record_lock:
            changes = [self._core.as_sent(r.change) for r in records]
            if self._opening is not None:
                changes[0] = changes[0].model_copy(update={"opening": self._opening})
                self._opening = None
            await workflow.execute_local_activity_method(
                CaseRecords.record_changes,
                CaseChanges(changes=tuple(changes)),
                start_to_close_timeout=RECORD_STORE_TIMEOUT,
                retry_policy=RECORD_STORE_RETRY,
            )

    async def _ask_team(self, reason: str) -> None:
        """Find the unit's team; if it has one, join the queue for its next slot with room."""
        team = await workflow.execute_activity_method(
            MeetingTeamDirectory.team_of_unit,
            TeamLookup(unit_code=self._input.unit_code),
            start_to_close_timeout=RECORD_STORE_TIMEOUT,
            retry_policy=RECORD_STORE_RETRY,
        )
        code = team.code if team is not None else None
        await self._run(self._core.team_found(code, reason, workflow.now()))

    def _publish(self, shown: tuple[Stage, bool] | None = None) -> None:
        """Search attributes and the UI's current details: stage, dates, codes; no person."""
        s = self._state
        stage, overdue = shown or (s.stage, s.overdue)
        if self._published != (stage, overdue):
            self._published = (stage, overdue)
            workflow.upsert_search_attributes(
                [REHAB_STAGE.value_set(stage.value), REHAB_OVERDUE.value_set(overdue)]
            )
        upcoming = planning.next_deadline(s)
        lines = [
            f"**Stage:** {s.stage.value}",
            "**Next deadline:** "
            + (f"{upcoming.kind} on {upcoming.due_on.isoformat()}" if upcoming else "none"),
            f"**Overdue:** {'yes' if s.overdue else 'no'}",
            "**Open actions:**",
            *(
                f"- {a.action} ({a.reason})"
                for a in planning.open_actions(s, include_protected=False)
            ),
        ]
        workflow.set_current_details("\n".join(lines))

"""Activities of absence monitoring: opening a case, or telling the open one what happened."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import NamedTuple

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.records import append_event, write_changes
from core.case_start import start_case
from models.absence import (
    CaseReferralResult,
    CaseTriggerRequest,
    CaseTriggerRequests,
    CaseTriggerResult,
)
from models.actions import AbsenceNews
from models.case import CaseInput, case_workflow_id
from models.case.rules import CaseCore, initial_state
from store import direct
from store.cases import OpenCase, insert_case, open_case_of, policy_of_unit
from store.direct import Conn
from store.meeting_teams import team_of_unit

# Case ids opened by a monitor derive from the employee and the trigger, so a retried
# activity finds the case it already started instead of opening a second one.
_CASE_ID_NAMESPACE = uuid.UUID("1b3e9f52-4f0c-4a44-9d0e-6a3c1b7e2f10")


def rule_case_id(employee_pseudonym: uuid.UUID, trigger_key: str) -> uuid.UUID:
    """The id of the case a monitor's rule opens: the same for every retry of the rule."""
    return uuid.uuid5(_CASE_ID_NAMESPACE, f"{employee_pseudonym}:{trigger_key}")


def _no_ids() -> uuid.UUID:
    raise AssertionError("a case's opening creates no ids")


class Opening(NamedTuple):
    """A case's input as the opener wrote its opening, and whether the case starts overdue
    (its search attribute), which the opener knows when it wrote what had passed."""

    input: CaseInput
    overdue: bool = False


def _told_at_opening(
    opened_now: dict[uuid.UUID, CaseInput] | None, case_id: uuid.UUID, news: CaseTriggerRequest
) -> bool:
    """Whether the news only repeats the sick leave a case opened a moment ago started with.

    A monitor asks about everything due at one wake-up together: the rule that opens the case,
    then the sick period (and its expected end) that led to it. The new case already has those
    dates, so it would refuse the news as changing nothing. Not signalling it spares Temporal
    a signal, and the case the news's handling, for each case a monitor opens.
    """
    opening = None if opened_now is None else opened_now.get(case_id)
    return (
        opening is not None
        and news.sick_start == opening.sick_start
        and news.expected_end in (None, opening.expected_end)
    )


class CaseOpener:
    """Given the record store and a Temporal client by the worker."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], client: Client, task_queue: str
    ) -> None:
        self._sessionmaker = sessionmaker
        self._client = client
        self._task_queue = task_queue

    @activity.defn
    async def open_or_deliver(self, request: CaseTriggerRequest) -> CaseTriggerResult:
        return await self._open_or_deliver(request)

    @activity.defn
    async def open_or_deliver_all(self, requests: CaseTriggerRequests) -> CaseTriggerResult:
        """Everything due at one wake-up of a monitor, in order, in one activity.

        Each request sees the case an earlier one opened, as separate activities did, except
        that news which only repeats the sick leave that case was opened with is not signalled
        to it (see `_told_at_opening`). Retried
        as a whole, which is safe: a case id derives from its trigger key, and a timeline
        entry or a piece of news is written once per key. The result names the employee's
        open case after the last request (None: none), which the monitor goes on believing.
        """
        opened = False
        case_id = None
        # The cases this call opened, with what each was opened with.
        opened_now: dict[uuid.UUID, CaseInput] = {}
        for request in requests.requests:
            result = await self._open_or_deliver(request, opened_now)
            opened = opened or result.opened
            case_id = result.case_id
        return CaseTriggerResult(case_id=case_id, opened=opened)

    async def _open_or_deliver(
        self, request: CaseTriggerRequest, opened_now: dict[uuid.UUID, CaseInput] | None = None
    ) -> CaseTriggerResult:
        case_id = rule_case_id(request.employee_pseudonym, request.trigger_key)
        opening: Opening | None = None
        try:
            async with direct.begin(self._sessionmaker) as conn:
                case = await open_case_of(conn, request.employee_pseudonym)
                if case is not None and case.id != case_id:
                    # One open case per employee: later triggers and sick periods go to it.
                    await append_event(
                        conn,
                        case_id=case.id,
                        workflow_id=case.workflow_id,
                        step_key=f"monitor:{request.trigger_key}",
                        kind="absence_observed",
                        stage=case.stage,
                        occurred_at=datetime.now(UTC),
                        detail={
                            "rule": request.trigger.value if request.trigger else "sick_period",
                            "observed_on": request.observed_on.isoformat(),
                        },
                    )
                elif request.trigger is not None:
                    # No open case, or this trigger's own (a retry): open it, or finish
                    # opening it.
                    opening = await self._write_opening(
                        conn,
                        CaseInput(
                            case_id=case_id,
                            employee_pseudonym=request.employee_pseudonym,
                            unit_code=request.unit_code,
                            trigger=request.trigger,
                            # When the rule fired, the same for every attempt: named by
                            # the monitor's workflow task (a local activity), or else the
                            # activity's schedule.
                            opened_at=request.opened_at or activity.info().scheduled_time,
                            # The case dates its legal deadlines (FK notice, plan) from these.
                            sick_start=request.sick_start,
                            expected_end=request.expected_end,
                        ),
                    )
        except asyncpg.IntegrityConstraintViolationError:
            winner = await self._winner(request.employee_pseudonym, case_id)
            if winner is None:
                raise  # not the one-open-case index after all: retry
            return CaseTriggerResult(case_id=winner, opened=False)
        if case is not None and case.id != case_id:
            if not _told_at_opening(opened_now, case.id, request):
                await self._deliver_sick_leave(case, request)
            return CaseTriggerResult(case_id=case.id, opened=False)
        if opening is None:
            return CaseTriggerResult(case_id=None, opened=False)
        await self._start(opening)
        if opened_now is not None:
            opened_now[case_id] = opening.input
        activity.logger.info(
            "case opened by absence rule", extra={"rule": opening.input.trigger.value}
        )
        return CaseTriggerResult(case_id=case_id, opened=True)

    @activity.defn
    async def open_for_referral(self, request: CaseTriggerRequest) -> CaseReferralResult:
        """A manual referral: open the case unless the employee already has one open.

        Only the employee's monitor calls this, one opening at a time, so the check and the
        opening cannot interleave with another referral or an absence rule.
        """
        assert request.case_id is not None and request.opened_at is not None
        assert request.trigger is not None
        try:
            async with direct.begin(self._sessionmaker) as conn:
                case = await open_case_of(conn, request.employee_pseudonym)
                if case is not None and case.id != request.case_id:
                    # Any other open case wins.
                    return CaseReferralResult(case_id=case.id, opened=False)
                # No open case, or the referral's own (a retried request with the same
                # Idempotency-Key, or a retry of this activity): open it, or finish opening it.
                opening = await self._write_opening(
                    conn,
                    CaseInput(
                        case_id=request.case_id,
                        employee_pseudonym=request.employee_pseudonym,
                        unit_code=request.unit_code,
                        trigger=request.trigger,
                        opened_at=request.opened_at,
                    ),
                )
        except asyncpg.IntegrityConstraintViolationError:
            winner = await self._winner(request.employee_pseudonym, request.case_id)
            if winner is None:
                raise  # not the one-open-case index after all: retry
            return CaseReferralResult(case_id=winner, opened=False)
        await self._start(opening)
        activity.logger.info("case opened", extra={"trigger": request.trigger.value})
        return CaseReferralResult(
            case_id=request.case_id, opened=True, recorded=opening.input.opening_recorded
        )

    # An opening is the case's open row, written in the transaction that found no other
    # open case, and then its workflow.
    #
    # The row first: the one-open-case index has its say before any workflow exists, and
    # coordinators see the case as soon as it is decided, not a workflow start later (a
    # start took 0.1-0.3 s on a busy server). The row goes in now, not when the case's own
    # first activity runs, so that the next trigger finds the case open. A retry after a
    # crash between the two steps finds the row with this opening's own id: writing it
    # again changes nothing, and the start finds the workflow, or starts it at last.

    async def _write_opening(self, conn: Conn, case_input: CaseInput) -> Opening:
        """The case's row; the input its workflow starts with, policy and team included."""
        # The case takes a snapshot of its unit's policy when it starts, and learns its
        # unit's meeting team now rather than by an activity of its own.
        policy = await policy_of_unit(conn, case_input.unit_code)
        team = await team_of_unit(conn, case_input.unit_code)
        case_input = case_input.model_copy(
            update={
                "policy": policy,
                "opened_with_first_change": True,
                "records_locally": True,
                "records_in_batches": True,
                "team_known": True,
                "team_code": team.code if team is not None else None,
            }
        )
        workflow_id = case_workflow_id(case_input.case_id)
        record = case_input.opening_record(workflow_id)
        if not await insert_case(conn, record):
            # A retry after this opening committed: its workflow may have moved on since,
            # so its first change is not written again. Started now (it was not, if the
            # retry follows a crash before the start), the case writes it itself.
            return Opening(case_input)
        # The case's first change, as its workflow would write it when it starts, and what
        # had already fallen due by then (a late import's passed deadline steps): in this
        # transaction, so the case is whole in the record store once it is decided, and
        # the case's first workflow task writes nothing.
        core = CaseCore(case_input, initial_state(case_input), workflow_id, _no_ids)
        first = core.opening()
        passed = core.passed_at_opening()
        opened = first.model_copy(update={"opening": record})
        await write_changes(conn, [opened, *(passed or ())])
        recorded = case_input.model_copy(
            update={"opening_recorded": True, "passed_recorded": passed is not None}
        )
        return Opening(recorded, overdue=core.state.overdue)

    async def _start(self, opening: Opening) -> None:
        try:
            await start_case(self._client, opening.input, self._task_queue, overdue=opening.overdue)
        except WorkflowAlreadyStartedError:
            pass  # a retry: the case runs (or ran)

    async def _winner(self, pseudonym: uuid.UUID, mine: uuid.UUID) -> uuid.UUID | None:
        """After the record store refused a row: the other open case, if that was why.

        Another open case got in by a path that bypassed the employee's monitor (an older
        API during a rolling upgrade): the index refused a second open case, and no
        workflow of this one was started. None: some other integrity error.
        """
        async with direct.begin(self._sessionmaker) as conn:
            winner = await open_case_of(conn, pseudonym)
        if winner is None or winner.id == mine:
            return None
        activity.logger.warning("a second open case was refused by the record store")
        return winner.id

    async def _deliver_sick_leave(self, case: OpenCase, request: CaseTriggerRequest) -> None:
        """Signal the sick leave to the open case, which applies it as the fitting action.

        A signal rather than an update: this activity holds a worker slot, and must not
        wait for the case's workflow task (or its record-store activity) to get one.
        """
        if request.sick_start is None:
            return
        try:
            await self._client.get_workflow_handle(case.workflow_id).signal(
                "absence_news",
                AbsenceNews(
                    key=request.trigger_key,
                    sick_start=request.sick_start,
                    spell_start=request.spell_start or request.sick_start,
                    expected_end=request.expected_end,
                ),
            )
        except RPCError as exc:
            if exc.status is not RPCStatusCode.NOT_FOUND:
                raise
            # The record says open but the case no longer runs (ended, or stopped by
            # operations): retrying cannot help, and the news is on the timeline.
            activity.logger.warning(
                "open case has no running workflow; absence news kept on its timeline"
            )

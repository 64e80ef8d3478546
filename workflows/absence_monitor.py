"""AbsenceMonitorWorkflow: one per employee; opens a case on the day a policy rule says so."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from uuid import UUID

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.absences import CaseOpener
    from models.absence import (
        AbsenceBatch,
        AbsenceRecord,
        CaseReferral,
        CaseReferralResult,
        CaseTriggerRequest,
        CaseTriggerRequests,
        DueRule,
        MonitorInput,
        MonitorState,
        MonitorView,
    )
    from models.case import CaseTrigger
    from models.deadlines import local_date, start_of_day
    from models.policy import Policy, get_policy
    from models.sick_leave import (
        SickPeriod,
        SickSpell,
        count_occasions,
        date_of_sick_day,
        group_into_periods,
    )

# Opening a case waits until the case is in the record store; under a burst of imports
# that wait queues behind other workflow tasks, so the timeout is generous.
CASE_OPENER_TIMEOUT = timedelta(minutes=2)
CASE_OPENER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
)
# Continue-as-new well before Temporal's suggestion point for monitors that import years
# of history at once; a monitor only needs the last twelve months anyway.
MAX_BATCHES_PER_RUN = 200
# Monitors started before it did not tell an open case about a spell that continues a
# sick-pay period (a relapse within the gap days after a return to work).
SPELL_NEWS_PATCH = "absence-spell-news"
# Monitors started before it asked the record store once per due rule, even with no case to
# tell: now they ask once per wake-up, and not at all when they know there is no open case.
OPEN_CASE_BELIEF_PATCH = "absence-open-case-belief"
# Monitors since decide a referral with a local activity: in the workflow task of the
# update, so a referral costs the monitor one workflow task and no activity task.
LOCAL_REFERRAL_PATCH = "absence-local-referral"
# Monitors since ask the record store (open a case, or tell the open one) with a local
# activity too: the case is decided in the workflow task that saw the sick leave, with no
# activity task to wait for in the queue and no second workflow task for its result.
LOCAL_QUESTION_PATCH = "absence-local-question"
# Every patch above, oldest first. A monitor started by code that has the first N of them
# (`MonitorInput.patch_level`) takes their new paths without asking `workflow.patched`: no
# marker and no `TemporalChangeVersion` upsert, which cost a visibility write per monitor.
# A later patch is appended here; monitors started before it have a lower level and ask.
MONITOR_PATCHES = (
    SPELL_NEWS_PATCH,
    OPEN_CASE_BELIEF_PATCH,
    LOCAL_REFERRAL_PATCH,
    LOCAL_QUESTION_PATCH,
)


def new_monitor_input(state: MonitorState) -> MonitorInput:
    """The input of a monitor this code starts (or continues as new): it has every patch."""
    return MonitorInput(state=state, patch_level=len(MONITOR_PATCHES))


@workflow.defn
class AbsenceMonitorWorkflow:
    @workflow.init
    def __init__(self, input: MonitorInput) -> None:
        self._state = input.state.model_copy(deep=True)
        self._inbox: list[AbsenceBatch] = []
        self._batches = 0
        self._firing = False
        self._policy: Policy = get_policy(self._state.policy_id, self._state.policy_version)
        # Cases are opened (by a rule or by a referral) one at a time: the monitor is the
        # employee's single writer, so two openings can never both find no open case.
        self._opening = asyncio.Lock()
        self._patch_level = input.patch_level

    def _patched(self, patch_id: str) -> bool:
        return MONITOR_PATCHES.index(patch_id) < self._patch_level or workflow.patched(patch_id)

    @workflow.signal
    def record_absences(self, batch: AbsenceBatch) -> None:
        self._inbox.append(batch)

    @workflow.update
    async def open_case(self, referral: CaseReferral) -> CaseReferralResult:
        """Open a case on a manual referral, unless the employee has one open: then that one."""
        request = CaseTriggerRequest(
            employee_pseudonym=self._state.employee_pseudonym,
            unit_code=referral.unit_code,
            trigger=referral.trigger,
            trigger_key=f"referral:{referral.case_id}",
            observed_on=local_date(referral.opened_at),
            case_id=referral.case_id,
            opened_at=referral.opened_at,
        )
        async with self._opening:
            if self._patched(LOCAL_REFERRAL_PATCH):
                # Idempotent like the activity: the case id is the referral's, its start
                # and its row are each made once however often this runs.
                result = await workflow.execute_local_activity_method(
                    CaseOpener.open_for_referral,
                    request,
                    start_to_close_timeout=CASE_OPENER_TIMEOUT,
                    retry_policy=CASE_OPENER_RETRY,
                )
            else:
                result = await workflow.execute_activity_method(
                    CaseOpener.open_for_referral,
                    request,
                    start_to_close_timeout=CASE_OPENER_TIMEOUT,
                    retry_policy=CASE_OPENER_RETRY,
                )
            self._learn_open_case(result.case_id)
            return result

    @workflow.query
    def summary(self) -> MonitorView:
        today = local_date(workflow.now())
        periods = self._periods()
        current = periods[-1] if periods else None
        return MonitorView(
            sick_periods=len(periods),
            occasions_in_window=self._occasions(periods, today),
            current_period_start=current.start if current else None,
            next_rule_on=self._next_rule_day(),
            fired=tuple(self._state.fired),
            busy=bool(self._inbox) or self._firing,
            last_event_id=self._state.seen_event_ids[-1] if self._state.seen_event_ids else None,
        )

    @workflow.run
    async def run(self, input: MonitorInput) -> None:
        while True:
            await self._wait_for_events_or_next_day_rule()
            while self._inbox:
                self._apply(self._inbox.pop(0))
                self._batches += 1
            dues = self._due_now()
            if dues:
                await self._fire(dues)
            if (
                self._batches >= MAX_BATCHES_PER_RUN
                or workflow.info().is_continue_as_new_suggested()
            ):
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self._inbox:
                    self._prune()
                    workflow.continue_as_new(new_monitor_input(self._state))

    async def _wait_for_events_or_next_day_rule(self) -> None:
        if self._inbox:
            return
        wake = self._next_rule_day()
        if wake is None:
            await workflow.wait_condition(lambda: bool(self._inbox))
            return
        delay = start_of_day(wake) - workflow.now()
        if delay <= timedelta(0):
            return
        try:
            await workflow.wait_condition(lambda: bool(self._inbox), timeout=delay)
        except TimeoutError:
            pass  # the day of a rule has come

    # ------------------------------------------------------------ state

    def _periods(self) -> list[SickPeriod]:
        return group_into_periods(self._state.spells, self._policy.relapse_gap_days)

    def _occasions(self, periods: list[SickPeriod], today: date) -> int:
        return count_occasions(
            [p for p in periods if p.start <= today], today, self._policy.repeated_absence_window
        )

    def _apply(self, batch: AbsenceBatch) -> None:
        self._state.unit_code = batch.unit_code
        for record in batch.records:
            if record.event_id in self._state.seen_event_ids:
                continue
            self._state.seen_event_ids.append(record.event_id)
            if record.kind != "sick":
                continue  # care of a child or other leave is not sick leave
            if record.expected_end is not None:
                self._state.expected_end = record.expected_end
            self._add_spell(record)

    def _add_spell(self, record: AbsenceRecord) -> None:
        spell = SickSpell(start=record.start, end=record.end, extent=record.extent)
        # An event with the start of the ongoing spell reports how it went on (e.g. its end).
        kept = [s for s in self._state.spells if not (s.end is None and s.start == spell.start)]
        candidate = sorted([*kept, spell], key=lambda s: s.start)
        try:
            group_into_periods(candidate, self._policy.relapse_gap_days)
        except ValueError:
            # The ingestion API refuses overlaps; should one slip through, keep what we have
            # rather than fail the workflow task in a loop.
            workflow.logger.warning("overlapping sick spell ignored")
            return
        self._state.spells = candidate

    def _current_period(self, periods: list[SickPeriod], today: date) -> SickPeriod | None:
        """The latest period, unless it ended longer ago than the policy's window.

        A late import of last month's long absence still opens a case (its deadlines then
        show as overdue at once); an absence that ended over a year ago does not."""
        if not periods:
            return None
        latest = periods[-1]
        horizon = self._policy.repeated_absence_window.before(today)
        if latest.end is None or latest.end > horizon:
            return latest
        return None

    def _rule_days(self, period: SickPeriod) -> list[DueRule]:
        policy = self._policy
        rules = (
            (CaseTrigger.LONG_ABSENCE, policy.long_absence_trigger_day),
            (CaseTrigger.LONG_TERM, policy.long_term_trigger_day),
        )
        dues = []
        for trigger, day in rules:
            on = date_of_sick_day(period, day)
            if on is not None:
                dues.append(DueRule(f"{trigger.value}:{period.start}", trigger, on, period))
        return dues

    def _due_now(self) -> list[DueRule]:
        today = local_date(workflow.now())
        periods = self._periods()
        fired = set(self._state.fired)
        due: list[DueRule] = []
        current = self._current_period(periods, today)
        if current is not None:
            day_rules = [
                d for d in self._rule_days(current) if d.key not in fired and d.on <= today
            ]
            if len(day_rules) == 2:
                # First seen past day 365: the long-term track, not early identification.
                self._state.fired.append(day_rules[0].key)
                day_rules = day_rules[1:]
            due += day_rules
            if f"period:{current.start}" not in fired:
                due.append(DueRule(f"period:{current.start}", None, current.start, current))
            spell = current.spells[-1]
            if (
                spell.start != current.start
                and f"spell:{spell.start}" not in fired
                and self._patched(SPELL_NEWS_PATCH)
            ):
                due.append(DueRule(f"spell:{spell.start}", None, spell.start, current))
            if self._state.expected_end is not None:
                key = f"expected_end:{current.start}:{self._state.expected_end}"
                if key not in fired:
                    due.append(DueRule(key, None, today, current))
        occasions = [p for p in periods if p.start <= today]
        if occasions and self._occasions(periods, today) >= self._policy.repeated_absence_occasions:
            latest = occasions[-1]
            key = f"{CaseTrigger.REPEATED_SHORT_ABSENCE.value}:{latest.start}"
            if key not in fired:
                due.append(DueRule(key, CaseTrigger.REPEATED_SHORT_ABSENCE, latest.start, latest))
        return due

    def _next_rule_day(self) -> date | None:
        today = local_date(workflow.now())
        current = self._current_period(self._periods(), today)
        if current is None:
            return None
        fired = set(self._state.fired)
        upcoming = [d.on for d in self._rule_days(current) if d.key not in fired and d.on > today]
        return min(upcoming, default=None)

    async def _fire(self, dues: list[DueRule]) -> None:
        if not self._patched(OPEN_CASE_BELIEF_PATCH):
            for due in dues:
                await self._fire_one(due)
            return
        self._firing = True
        try:
            async with self._opening:
                await self._ask_once(dues)
        finally:
            self._firing = False
        self._state.fired.extend(due.key for due in dues)

    async def _fire_one(self, due: DueRule) -> None:
        """One question per due rule: how monitors started before the patch go on."""
        self._firing = True
        try:
            async with self._opening:
                await self._open_or_deliver(due)
        finally:
            self._firing = False
        self._state.fired.append(due.key)

    async def _ask_once(self, dues: list[DueRule]) -> None:
        """One question to the record store for everything due now, and only if it can matter.

        News (a sick period, an expected end) is only for an open case. When the monitor
        knows the employee has none, news before the first rule that opens one has nowhere
        to go, and without such a rule nothing needs asking. That holds because every case
        of the employee is opened through this monitor (a rule or a referral), which learns
        of it from the answer. A case that closed since is found gone by the next question,
        which clears the belief."""
        if self._state.knows_open_case and self._state.open_case_id is None:
            opening = [i for i, due in enumerate(dues) if due.trigger is not None]
            dues = dues[opening[0] :] if opening else []
        if not dues:
            return
        requests = CaseTriggerRequests(requests=tuple(self._request(due) for due in dues))
        if self._patched(LOCAL_QUESTION_PATCH):
            # A case opened now is dated by this workflow task, the same for every attempt.
            opened_at = workflow.now()
            requests = CaseTriggerRequests(
                requests=tuple(
                    r.model_copy(update={"opened_at": opened_at}) for r in requests.requests
                )
            )
            result = await workflow.execute_local_activity_method(
                CaseOpener.open_or_deliver_all,
                requests,
                start_to_close_timeout=CASE_OPENER_TIMEOUT,
                retry_policy=CASE_OPENER_RETRY,
            )
        else:
            result = await workflow.execute_activity_method(
                CaseOpener.open_or_deliver_all,
                requests,
                start_to_close_timeout=CASE_OPENER_TIMEOUT,
                retry_policy=CASE_OPENER_RETRY,
            )
        self._learn_open_case(result.case_id)

    def _learn_open_case(self, case_id: UUID | None) -> None:
        self._state.knows_open_case = True
        self._state.open_case_id = case_id

    def _request(self, due: DueRule) -> CaseTriggerRequest:
        return CaseTriggerRequest(
            employee_pseudonym=self._state.employee_pseudonym,
            unit_code=self._state.unit_code,
            trigger=due.trigger,
            trigger_key=due.key,
            observed_on=due.on,
            sick_start=due.period.start,
            spell_start=due.period.spells[-1].start,
            expected_end=self._state.expected_end,
        )

    async def _open_or_deliver(self, due: DueRule) -> None:
        result = await workflow.execute_activity_method(
            CaseOpener.open_or_deliver,
            self._request(due),
            start_to_close_timeout=CASE_OPENER_TIMEOUT,
            retry_policy=CASE_OPENER_RETRY,
        )
        self._learn_open_case(result.case_id)

    def _prune(self) -> None:
        """Forget what no rule can look at again: periods that ended over a window ago."""
        today = local_date(workflow.now())
        horizon = self._policy.repeated_absence_window.before(today) - timedelta(days=1)
        keep_periods = [
            p for p in self._periods() if p.end is None or p.end >= horizon or p.start >= horizon
        ]
        spells = [s for p in keep_periods for s in p.spells]
        # Keys name a period's or a spell's start; a period's start is its first spell's.
        starts = {str(s.start) for s in spells}
        self._state.spells = spells
        self._state.fired = [k for k in self._state.fired if any(s in k for s in starts)]
        # Older event ids are still refused by the record store's unique event id.
        self._state.seen_event_ids = self._state.seen_event_ids[-2000:]

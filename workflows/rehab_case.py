"""RehabCaseWorkflow: one employee's rehabilitation case, from identification to closure."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.records import CaseRecords
    from models.case import (
        CaseInput,
        CaseResult,
        CaseState,
        CaseView,
        OpenCaseRecord,
        Stage,
    )
    from models.search_attributes import REHAB_STAGE, REHAB_UNIT

# Record-store writes: retried with backoff for as long as the database is away,
# because a case must never stop just because PostgreSQL restarted.
RECORD_STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
)
RECORD_STORE_TIMEOUT = timedelta(seconds=30)


@workflow.defn
class RehabCaseWorkflow:
    @workflow.init
    def __init__(self, input: CaseInput) -> None:
        self._state = CaseState(input=input)

    @workflow.run
    async def run(self, input: CaseInput) -> CaseResult:
        await workflow.execute_activity_method(
            CaseRecords.open_case,
            OpenCaseRecord(
                case_id=input.case_id,
                workflow_id=workflow.info().workflow_id,
                employee_pseudonym=input.employee_pseudonym,
                unit_code=input.unit_code,
                trigger=input.trigger,
                opened_at=input.opened_at,
            ),
            start_to_close_timeout=RECORD_STORE_TIMEOUT,
            retry_policy=RECORD_STORE_RETRY,
        )
        self._state.recorded = True
        workflow.upsert_search_attributes(
            [REHAB_STAGE.value_set(self._state.stage.value), REHAB_UNIT.value_set(input.unit_code)]
        )
        await workflow.wait_condition(lambda: self._state.stage == Stage.CLOSED)
        return CaseResult(case_id=input.case_id, stage=self._state.stage)

    @workflow.query
    def state(self) -> CaseView:
        s = self._state
        return CaseView(
            case_id=s.input.case_id,
            unit_code=s.input.unit_code,
            trigger=s.input.trigger,
            stage=s.stage,
            recorded=s.recorded,
        )

    @workflow.update
    async def wait_until_recorded(self) -> CaseView:
        """Returns once the case is in the record store, so the API can answer consistently."""
        await workflow.wait_condition(lambda: self._state.recorded)
        return self.state()

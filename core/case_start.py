"""Starting a case workflow: the one way the API and the absence monitors open a case."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy

from models.case import CaseInput, CaseResult, Stage, case_workflow_id
from models.search_attributes import REHAB_OVERDUE, REHAB_STAGE, REHAB_UNIT

# By name, not by class: activities start cases, and the workflow modules import the
# activities, so importing the workflow class here would close an import cycle.
CASE_WORKFLOW = "RehabCaseWorkflow"
WAIT_UNTIL_RECORDED = "wait_until_recorded"


async def start_case(
    client: Client, input: CaseInput, task_queue: str, *, overdue: bool = False
) -> WorkflowHandle[Any, CaseResult]:
    """Start the case's workflow; raises WorkflowAlreadyStartedError if that case exists.

    `overdue`: the case starts overdue, as the opener found it when it wrote what had
    already passed (`CaseInput.passed_recorded`)."""
    return await client.start_workflow(
        CASE_WORKFLOW,
        input,
        result_type=CaseResult,
        id=case_workflow_id(input.case_id),
        task_queue=task_queue,
        # A case id is never reused, not even after the case is closed and erased.
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        # A case's workflow task writes the record store itself (local activities): on a
        # worker saturated by a burst of openings, 10 s (the default) timed some out, and a
        # timed-out task is done again. A dead worker's task now waits 30 s for another.
        task_timeout=timedelta(seconds=30),
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(REHAB_STAGE, Stage.IDENTIFIED.value),
                SearchAttributePair(REHAB_UNIT, input.unit_code),
                SearchAttributePair(REHAB_OVERDUE, overdue),
            ]
        ),
        # Shown in the Temporal UI: unit and trigger only, never who the case is about.
        static_summary=f"Rehabilitation case · unit {input.unit_code} · {input.trigger.value}",
        # Started from the worker's own activities (the opener): the server hands the first
        # workflow task back with the start, to this worker, instead of through the queue.
        request_eager_start=True,
    )

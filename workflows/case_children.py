"""The case's children: interventions and information requests, started and finished.

A mixin of RehabCaseWorkflow (workflows/rehab_case.py), kept apart so the shell stays short.
Cases opened since the lean opening (`CaseInput.records_locally`) start and finish children
without waiting for Temporal to confirm, so the update that caused it answers in the same
workflow task; a finish waits for its child's start, and the run waits for both before it
continues as new or ends. Older cases wait for each, as they always did.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any
from uuid import UUID

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError, FailureError

with workflow.unsafe.imports_passed_through():
    from models.case.effects import FinishChild, StartChild
    from workflows.information_request import InformationRequestWorkflow
    from workflows.intervention import InterventionWorkflow

# Children, by kind: the workflow to start and the signal that finishes it.
_CHILDREN: dict[str, tuple[Any, Any]] = {
    "intervention": (InterventionWorkflow.run, InterventionWorkflow.finish),
    "information_request": (InformationRequestWorkflow.run, InformationRequestWorkflow.finish),
}


class CaseChildren:
    # Set by the workflow's run loop's owner: a child that ends wakes the loop.
    _wake: bool

    def _init_children(self) -> None:
        # Children this run started and that are still running (see _may_continue_as_new).
        self._running_children: set[UUID] = set()
        # Child starts and finishes not waited for, and the starts by child workflow id, so
        # that a finish follows its start.
        self._background: set[asyncio.Task[None]] = set()
        self._child_starts: dict[str, asyncio.Task[None]] = {}

    async def _finish_child_and_wait(self, effect: FinishChild) -> None:
        run, finish = _CHILDREN[effect.kind]
        await workflow.get_external_workflow_handle_for(run, effect.workflow_id).signal(
            finish, effect.finish
        )

    async def _start_child(self, effect: StartChild) -> None:
        """Interventions and information requests alike: started with ABANDON (they outlive
        a continue-as-new), followed until they end."""
        run, _ = _CHILDREN[effect.kind]
        handle = await workflow.start_child_workflow(
            run,
            effect.input,
            id=effect.workflow_id,
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            static_summary=effect.summary,
        )
        self._running_children.add(effect.child_id)
        asyncio.create_task(self._follow_child(effect.child_id, handle))  # noqa: RUF006

    def _in_background(self, work: Coroutine[Any, Any, None], child: str | None = None) -> None:
        """Run `work` without waiting for it; its commands go out with this task's completion."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        if child is not None:
            self._child_starts[child] = task

    def _settled(self) -> bool:
        return workflow.all_handlers_finished() and not self._background

    async def _start_child_or_log(self, effect: StartChild) -> None:
        try:
            await self._start_child(effect)
        except FailureError:  # no update waits for it: the log says it
            workflow.logger.error("a child workflow could not be started")

    async def _finish_child(self, effect: FinishChild) -> None:
        """Finish a child once it has started (it may still be starting)."""
        started = self._child_starts.pop(effect.workflow_id, None)
        if started is not None:
            await started
        try:
            await self._finish_child_and_wait(effect)
        except FailureError:
            workflow.logger.warning("a child workflow could not be told it is finished")

    async def _follow_child(
        self, child_id: UUID, handle: workflow.ChildWorkflowHandle[Any, Any]
    ) -> None:
        try:
            await handle
        except ChildWorkflowError:
            workflow.logger.warning("a child workflow ended without a result")
        finally:
            self._running_children.discard(child_id)
            self._wake = True

"""The lean sandbox (core/sandbox.py) labels every payload as the SDK's stock sandbox does."""

from __future__ import annotations

import importlib
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from core.codec import payload_workflow_id
from core.sandbox import LeanSandboxedWorkflowRunner, lean_instance_supported
from core.temporal import PASSTHROUGH_MODULES, workflow_runner
from tests.sandbox_probe import SandboxProbe, SandboxProbeChild, echo


def _labels(event: HistoryEvent) -> list[tuple[str, str | None]]:
    """(event type, the workflow id its payloads are labelled with) for each payload."""
    name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
    found: list[Payload] = []

    def walk(value: object) -> None:
        if isinstance(value, Payload):
            found.append(value)
        elif isinstance(value, Message):
            for _, inner in value.ListFields():
                walk(inner)
        elif isinstance(value, Mapping):
            for inner in value.values():
                walk(inner)
        elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
            for inner in value:
                walk(inner)

    walk(event)
    return [(name, payload_workflow_id(p)) for p in found]


async def _run_probe(client: Client, runner: SandboxedWorkflowRunner) -> tuple[list[str], list]:
    queue = f"sandbox-{uuid.uuid4().hex[:8]}"
    workflow_id = f"probe-{queue}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[SandboxProbe, SandboxProbeChild],
        activities=[echo],
        workflow_runner=runner,
    ):
        result = await client.execute_workflow(
            SandboxProbe.run, "x", id=workflow_id, task_queue=queue
        )
    labels = []
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        # Relative to the run, so both runs can be compared.
        labels += [
            (kind, (label or "").replace(workflow_id, "{run}")) for kind, label in _labels(event)
        ]
    return result, labels


async def test_the_lean_sandbox_labels_payloads_as_the_stock_sandbox_does(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    client = time_skipping_env.client
    assert lean_instance_supported()
    assert isinstance(workflow_runner(), LeanSandboxedWorkflowRunner)
    stock = SandboxedWorkflowRunner(
        restrictions=SandboxedWorkflowRunner().restrictions.with_passthrough_modules(
            *PASSTHROUGH_MODULES
        )
    )

    stock_result, stock_labels = await _run_probe(client, stock)
    lean_result, lean_labels = await _run_probe(client, workflow_runner())

    assert lean_result == stock_result == ["x-a", "x-l", "x-c"]
    assert lean_labels == stock_labels
    # What the codec server's need-to-know check reads: the activity's input and the local
    # activity's marker carry the workflow's label, the child's input the child's own.
    assert ("ACTIVITY_TASK_SCHEDULED", "{run}") in lean_labels
    assert ("MARKER_RECORDED", "{run}") in lean_labels
    assert ("START_CHILD_WORKFLOW_EXECUTION_INITIATED", "{run}-child") in lean_labels


_PROBE_SOURCE = """
from temporalio import workflow

VERSION = "{version}"


@workflow.defn
class ReadOnceProbe:
    @workflow.run
    async def run(self) -> str:
        return VERSION
"""


async def test_a_worker_runs_the_workflow_code_it_read_first_even_if_the_file_changes(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sandbox imports a workflow's module for every new run. It reads the file once per
    process: a file changed under a running worker (a deploy in progress) does not give
    later runs other code than the worker registered, which could not replay their history."""
    name = f"read_once_probe_{uuid.uuid4().hex}"
    source = tmp_path / f"{name}.py"
    source.write_text(_PROBE_SOURCE.format(version="first"))
    monkeypatch.syspath_prepend(str(tmp_path))
    probe = importlib.import_module(name).ReadOnceProbe
    client = time_skipping_env.client
    task_queue = f"read-once-{uuid.uuid4()}"
    async with Worker(
        client, task_queue=task_queue, workflows=[probe], workflow_runner=workflow_runner()
    ):
        first = await client.execute_workflow(
            probe.run, id=f"read-once-{uuid.uuid4()}", task_queue=task_queue
        )
        source.write_text(_PROBE_SOURCE.format(version="second"))
        later = os.stat(source).st_mtime + 10  # newer than any cached bytecode, surely
        os.utime(source, (later, later))
        second = await client.execute_workflow(
            probe.run, id=f"read-once-{uuid.uuid4()}", task_queue=task_queue
        )
    assert (first, second) == ("first", "first")

"""Workflows for tests/test_sandbox.py: one of each command whose payloads carry a context.

Only temporalio and the standard library, so the sandbox imports it as it would a workflow.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="probe_echo")
async def echo(text: str) -> str:
    return text


@workflow.defn(name="SandboxProbeChild")
class SandboxProbeChild:
    @workflow.run
    async def run(self, text: str) -> str:
        return text


@workflow.defn(name="SandboxProbe")
class SandboxProbe:
    """An activity, a local activity and a child, each given input and giving a result."""

    @workflow.run
    async def run(self, text: str) -> list[str]:
        timeout = timedelta(seconds=30)
        return [
            await workflow.execute_activity(echo, f"{text}-a", start_to_close_timeout=timeout),
            await workflow.execute_local_activity(
                echo, f"{text}-l", start_to_close_timeout=timeout
            ),
            await workflow.execute_child_workflow(
                SandboxProbeChild.run, f"{text}-c", id=f"{workflow.info().workflow_id}-child"
            ),
        ]

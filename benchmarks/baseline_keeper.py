"""The ingestion benchmark's plain-Temporal baseline: a workflow that keeps what it is sent.

A module of its own, importing only temporalio and pydantic, so the sandbox re-imports as
little for it as it does for an absence monitor (whose module imports only pure models).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from temporalio import workflow


class KeptBatch(BaseModel):
    """One employee's events of one batch, as the benchmark read them."""

    events: list[dict[str, Any]]


class KeeperView(BaseModel):
    events: int
    last_event_id: str | None


@workflow.defn
class BaselineKeeper:
    """Keeps the events it is signalled in a list; never finishes."""

    def __init__(self) -> None:
        self._events: list[dict[str, Any]] = []

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal
    def keep(self, batch: KeptBatch) -> None:
        self._events.extend(batch.events)

    @workflow.query
    def view(self) -> KeeperView:
        last = self._events[-1]["event_id"] if self._events else None
        return KeeperView(events=len(self._events), last_event_id=last)

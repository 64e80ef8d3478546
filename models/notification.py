"""Pure models of the notification dispatcher: its workflow input, state and activity I/O."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DISPATCHER_WORKFLOW_ID = "notification-dispatcher"
DISPATCH_DUE_ACTIVITY = "dispatch_due"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DispatchRequest(_Frozen):
    """One activity run: keep polling the outbox for `run_for_s` seconds, then return.

    0 means a single pass (used by tests and by a manual drain).
    """

    run_for_s: float = Field(default=60.0, ge=0)


class DispatchResult(_Frozen):
    """Counts only: which notifications went where stays in the record store."""

    passes: int = 0
    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0


class DispatcherInput(_Frozen):
    """The dispatcher's settings and the counters it carries across continue-as-new."""

    run_for_s: float = Field(default=60.0, gt=0)
    # Continue-as-new after this many activity runs (or when Temporal suggests it).
    runs_per_history: int = Field(default=200, ge=1)
    total: DispatchResult = DispatchResult()

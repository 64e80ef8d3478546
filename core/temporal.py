"""Connecting to Temporal with rehabflow's data converter (pydantic, encrypted payloads), the
sandbox every worker and replayer runs workflows in, and queries that survive a busy worker."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    QueryWorkflowInput,
    WorkflowHandle,
)
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode, TLSConfig
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from core.codec import KeyRing, build_data_converter
from core.sandbox import LeanSandboxedWorkflowRunner, lean_instance_supported
from core.secrets import Secrets
from core.settings import Settings, TemporalSettings

R = TypeVar("R")
log = logging.getLogger(__name__)

# Deterministic, stateless modules that workflow code uses: imported once per process and
# shared by every run, instead of re-imported by the sandbox for each new run. Workflow modules
# import them inside `workflow.unsafe.imports_passed_through()` already; naming them here keeps
# that true for every import of them, wherever it is written.
PASSTHROUGH_MODULES = (
    "models",
    "channels.message",
    "activities",
    "workflows.due_date_timers",
)

# What a query meets when the worker is merely slow to answer or the server is busy: worth
# another try. Anything else (no such workflow, a failing query handler) is an answer.
_TRANSIENT = frozenset(
    {
        RPCStatusCode.DEADLINE_EXCEEDED,
        # A deadline that ran out on this side of the connection ("Timeout expired").
        RPCStatusCode.CANCELLED,
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.RESOURCE_EXHAUSTED,
    }
)


def data_converter(secrets: Secrets, *, compact: bool = True) -> DataConverter:
    """The one converter that client, worker, tests and replayer must share."""
    return build_data_converter(KeyRing.from_config(secrets.payload_keys), compact=compact)


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox of every worker and replayer, so that saved histories replay as they run.

    The lean runner (core/sandbox.py) when this SDK still has what it relies on.
    """
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    if lean_instance_supported():
        return LeanSandboxedWorkflowRunner(restrictions=restrictions)
    log.warning("this temporalio's sandbox changed: running workflows on the stock sandbox")
    return SandboxedWorkflowRunner(restrictions=restrictions)


def tls_config(temporal: TemporalSettings) -> TLSConfig | bool:
    """The TLS part of the connection: False (plain), or a TLSConfig read from the files."""
    tls = temporal.tls
    files = (tls.ca_file, tls.client_cert_file, tls.client_key_file)
    enabled = tls.enabled
    if enabled is None:
        enabled = (
            any(f is not None for f in files)
            or tls.server_name is not None
            or (temporal.api_key is not None)
        )
    if not enabled:
        return False
    return TLSConfig(
        server_root_ca_cert=tls.ca_file.read_bytes() if tls.ca_file else None,
        domain=tls.server_name,
        client_cert=tls.client_cert_file.read_bytes() if tls.client_cert_file else None,
        client_private_key=tls.client_key_file.read_bytes() if tls.client_key_file else None,
    )


async def connect(
    settings: Settings,
    secrets: Secrets,
    *,
    lazy: bool = False,
    interceptors: Sequence[Interceptor] = (),
    runtime: Runtime | None = None,
) -> Client:
    """A client for the configured namespace; `lazy` defers the connection to first use.

    Worker, API and command line all connect here, so TLS, mTLS and the API key apply to each.
    """
    temporal = settings.temporal
    return await Client.connect(
        temporal.target,
        namespace=temporal.namespace,
        data_converter=data_converter(secrets, compact=settings.security.compact_payloads),
        tls=tls_config(temporal),
        api_key=temporal.api_key.get_secret_value() if temporal.api_key else None,
        interceptors=interceptors,
        runtime=runtime,
        lazy=lazy,
    )


def is_transient(error: BaseException) -> bool:
    """Whether a failed call only met a busy worker or server ("query deadline exceeded")."""
    return isinstance(error, RPCError) and error.status in _TRANSIENT


def attempt_timeout(attempt: int) -> timedelta:
    """How long the n-th attempt of a query may take: short at first, longer when retried.

    A query sent while its workflow continues as new can go unanswered until the server
    gives up; a short first deadline turns that into a quick retry, which the new run answers.
    """
    return timedelta(seconds=min(5 * attempt, 30))


async def retry_transient(
    call: Callable[[timedelta], Awaitable[R]],
    *,
    attempts: int = 8,
    first_backoff_s: float = 0.2,
    max_backoff_s: float = 5.0,
) -> R:
    """`call(timeout)`, retried with exponential backoff while it only meets a busy worker
    or server; each attempt gets the deadline `attempt_timeout` gives it."""
    backoff = first_backoff_s
    for attempt in range(1, attempts + 1):
        try:
            return await call(attempt_timeout(attempt))
        except RPCError as exc:
            if not is_transient(exc) or attempt == attempts:
                raise
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, max_backoff_s)
    raise AssertionError("unreachable: the last attempt returns or raises")


async def query_with_retry(
    handle: WorkflowHandle[Any, Any],
    query: Callable[..., R],
    *args: Any,
    gate: asyncio.Semaphore | None = None,
) -> R:
    """`handle.query(query, *args)`, retried with backoff while it only times out.

    A query is answered by the worker between workflow tasks; a saturated worker answers some
    too late ("query deadline exceeded"). Callers that query many workflows pass one `gate`
    (a semaphore) to bound how many queries are in flight: a flood of them is what saturates
    the worker.
    """

    async def once(rpc_timeout: timedelta) -> R:
        if gate is None:
            result: R = await handle.query(query, *args, rpc_timeout=rpc_timeout)
            return result
        async with gate:
            return await handle.query(query, *args, rpc_timeout=rpc_timeout)

    return await retry_transient(once)


class RetryingQueries(Interceptor):
    """A client interceptor: every query of this client retries as `query_with_retry` does.

    For clients whose callers wait for an answer anyway (tests, command-line tools); the API
    does not use it, so that a request is not held for long.
    """

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _RetryingQueriesOutbound(next)


class _RetryingQueriesOutbound(OutboundInterceptor):
    async def query_workflow(self, input: QueryWorkflowInput) -> Any:
        async def once(rpc_timeout: timedelta) -> Any:
            attempt = dataclasses.replace(input, rpc_timeout=input.rpc_timeout or rpc_timeout)
            return await self.next.query_workflow(attempt)

        return await retry_transient(once)

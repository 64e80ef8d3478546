"""Error responses, always JSON: the field and the reason (never the rejected value), and
503/504 with a hint to retry when a part the API depends on is away or slow."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from core.i18n import requested_language, translate_reason
from models.api import FieldError, Problem, ValidationProblem

log = structlog.get_logger(__name__)

T = TypeVar("T")

# Seconds a client should wait before retrying when a dependency is unavailable.
RETRY_AFTER_S = 5


class CaseDidNotAnswer(Exception):
    """A case's workflow took longer than the API waits; the action may still take effect."""


async def answered_within(awaitable: Awaitable[T], seconds: float) -> T:
    """The awaited answer, or CaseDidNotAnswer (504) after `seconds`.

    A hard deadline over the whole call: once the workflow has accepted an update, the SDK
    waits for its outcome without a limit (for instance while its activity retries against
    a database that is down). Giving up here does not undo the update.
    """
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except TimeoutError:
        raise CaseDidNotAnswer from None


class FieldRejected(Exception):
    """A domain rule rejected one field of an otherwise well-formed request."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _field_name(loc: tuple[int | str, ...]) -> str:
    # ("body", "unit_code") -> "unit_code"; keeps "query."/"path." prefixes visible.
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


# Messages of these error types quote fragments of the input; say the rule instead.
_REASONS_BY_TYPE = {
    "uuid_parsing": "must be a UUID",
    "uuid_type": "must be a UUID",
    "json_invalid": "the body is not valid JSON",
}


def _validation_response(request: Request, errors: list[FieldError]) -> JSONResponse:
    # The reason in the language the client asked for (Swedish or English); field names
    # are codes and stay as they are.
    language = requested_language(request.headers.get("accept-language"))
    errors = [
        FieldError(field=e.field, reason=translate_reason(language, e.reason)) for e in errors
    ]
    return JSONResponse(status_code=422, content=ValidationProblem(detail=errors).model_dump())


async def _on_request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # pydantic's messages describe the rule ("at most 32 characters"); its "input"
    # and "ctx" entries can carry the rejected value, so they are dropped.
    return _validation_response(
        request,
        [
            FieldError(
                field=_field_name(tuple(e["loc"])),
                reason=_REASONS_BY_TYPE.get(e["type"], e["msg"]),
            )
            for e in exc.errors()
        ],
    )


async def _on_field_rejected(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FieldRejected)
    return _validation_response(request, [FieldError(field=exc.field, reason=exc.reason)])


def _problem(status_code: int, detail: str, *, retry: bool = False) -> JSONResponse:
    # The security headers are set here as well: a 500 is answered by Starlette's outermost
    # middleware, outside the one that adds them to every other response.
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    if retry:
        headers["Retry-After"] = str(RETRY_AFTER_S)
    return JSONResponse(
        status_code=status_code, content=Problem(detail=detail).model_dump(), headers=headers
    )


def _unavailable(what: str) -> JSONResponse:
    return _problem(503, f"{what} is unavailable; nothing was changed, retry later", retry=True)


# RPC statuses that mean "Temporal is not there or too busy right now", not a refusal.
_TEMPORAL_AWAY = frozenset(
    {RPCStatusCode.UNAVAILABLE, RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.UNKNOWN}
)


async def _on_update_timeout(_: Request, exc: Exception) -> JSONResponse:
    # The action was handed to the case but no answer came in time: it may still take
    # effect, so the client must look (or retry with its Idempotency-Key) before repeating.
    log.warning("case did not answer in time", error=type(exc).__name__)
    return _problem(
        504, "the case did not answer in time; the action may still take effect", retry=True
    )


async def _on_temporal_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RPCError)
    if exc.status == RPCStatusCode.DEADLINE_EXCEEDED:
        return await _on_update_timeout(_, exc)
    if exc.status in _TEMPORAL_AWAY:
        log.warning("temporal unavailable", status=exc.status.name)
        return _unavailable("the workflow service")
    log.error("temporal refused a request", status=exc.status.name)
    return _problem(500, "internal error")


# Driver errors that mean "the server is not there (or going away)", not "the query is wrong".
_DATABASE_AWAY = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    # "the database system is shutting down / starting up", "terminating connection due to
    # administrator command"
    asyncpg.exceptions.OperatorInterventionError,
)


def _database_away(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError):
        return (
            exc.connection_invalidated
            or isinstance(exc, OperationalError | InterfaceError)
            or _database_away(exc.orig)  # type: ignore[arg-type]
        )
    if isinstance(exc, (*_DATABASE_AWAY, PoolTimeout)):
        return True
    # SQLAlchemy's adapter wraps the driver's error; the driver's own is its cause.
    return exc.__cause__ is not None and _database_away(exc.__cause__)


async def _on_database_error(_: Request, exc: Exception) -> JSONResponse:
    # Connection-level failures only: a constraint violation is a bug, not an outage.
    if not _database_away(exc):
        return await _on_unexpected(_, exc)
    log.warning("database unavailable", error=type(exc).__name__)
    return _unavailable("the record store")


async def _on_runtime_error(_: Request, exc: Exception) -> JSONResponse:
    # The SDK's lazy client reports a server it cannot reach this way, not as an RPCError.
    if str(exc).startswith("Failed client connect"):
        log.warning("temporal unreachable")
        return _unavailable("the workflow service")
    return await _on_unexpected(_, exc)


async def _on_unexpected(_: Request, exc: Exception) -> JSONResponse:
    # Only the type is logged: the message of a library error can quote request data.
    log.error("unexpected error", error=type(exc).__name__)
    return _problem(500, "internal error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(FieldRejected, _on_field_rejected)
    app.add_exception_handler(WorkflowUpdateRPCTimeoutOrCancelledError, _on_update_timeout)
    app.add_exception_handler(CaseDidNotAnswer, _on_update_timeout)
    app.add_exception_handler(RPCError, _on_temporal_error)
    for database_error in (
        DBAPIError,
        PoolTimeout,
        asyncpg.PostgresConnectionError,
        asyncpg.InterfaceError,
        # Raised as it is by the statements run on asyncpg straight (store.direct): "the
        # database system is shutting down", "terminating connection due to administrator
        # command".
        asyncpg.exceptions.OperatorInterventionError,
        # A refused or vanished socket (the embedded server's unix socket file is gone).
        OSError,
    ):
        app.add_exception_handler(database_error, _on_database_error)
    app.add_exception_handler(RuntimeError, _on_runtime_error)
    app.add_exception_handler(Exception, _on_unexpected)

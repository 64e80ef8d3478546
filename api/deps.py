"""Dependency aliases shared by the routers: clients, the caller, and role checks."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api.auth import Caller, InvalidToken, NoRole
from api.context import ApiContext
from core.identity import IdentityProtector
from core.settings import Settings
from models.api import Role
from store.audit import record_access

# The cookie the codec server accepts from a browser (see api/routers/codec.py).
CODEC_COOKIE = "rehabflow_codec_token"

_bearer = HTTPBearer(
    auto_error=False,
    description="A JWT from the organisation's OIDC provider (or a dev token of `make up`).",
)
_codec_cookie = APIKeyCookie(
    name=CODEC_COOKIE,
    auto_error=False,
    description="Set by POST /codec/session, for the Temporal UI's cross-origin requests.",
)
_UNAUTHENTICATED = {"WWW-Authenticate": 'Bearer realm="rehabflow"'}
_INVALID = {"WWW-Authenticate": 'Bearer realm="rehabflow", error="invalid_token"'}


def get_context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


# Dependencies are coroutines, even the trivial ones: FastAPI runs a plain function in a
# worker thread: a thread hop each, four to six of them per request.
async def _context(request: Request) -> ApiContext:
    return get_context(request)


ContextDep = Annotated[ApiContext, Depends(_context)]


async def get_session(context: ContextDep) -> AsyncIterator[AsyncSession]:
    async with context.sessionmaker() as session:
        yield session


async def get_autocommit_session(context: ContextDep) -> AsyncIterator[AsyncSession]:
    """Each statement its own transaction (store.db.create_autocommit_sessionmaker)."""
    async with context.autocommit() as session:
        yield session


async def get_temporal(context: ContextDep) -> Client:
    return context.temporal


async def get_identity(context: ContextDep) -> IdentityProtector:
    return context.identity


async def get_settings(context: ContextDep) -> Settings:
    return context.settings


SessionDep = Annotated[AsyncSession, Depends(get_session)]
AutocommitSessionDep = Annotated[AsyncSession, Depends(get_autocommit_session)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
IdentityDep = Annotated[IdentityProtector, Depends(get_identity)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def _spend(context: ApiContext, bucket: str) -> None:
    wait_s = context.limiter.take(bucket)
    if wait_s > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many requests from this caller",
            headers={"Retry-After": context.limiter.retry_after_header(wait_s)},
        )


def client_address(request: Request) -> str:
    """The peer's address; behind a proxy, uvicorn's --proxy-headers puts the client's here."""
    return request.client.host if request.client else "unknown"


async def authenticate(context: ApiContext, token: str | None, address: str) -> Caller:
    """401 without a valid token, 403 for a valid token without a role, 429 over the limit.

    A verified caller spends from its own bucket (its `sub`); a caller without a valid token
    has no identity to key on, so it spends from its address's bucket, and guessing tokens
    or hammering without one is limited like any other traffic.
    """
    if not token:
        _spend(context, f"address:{address}")
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "a bearer token is required", headers=_UNAUTHENTICATED
        )
    try:
        caller = await context.verifier.verify(token)
    except InvalidToken:
        _spend(context, f"address:{address}")
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "the bearer token is not valid", headers=_INVALID
        ) from None
    except NoRole as exc:
        _spend(context, f"address:{address}")
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    _spend(context, f"sub:{caller.subject}")
    return caller


async def get_caller(
    request: Request,
    context: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    return await authenticate(
        context, credentials.credentials if credentials else None, client_address(request)
    )


async def get_codec_caller(
    request: Request,
    context: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_codec_cookie)],
) -> Caller:
    """The bearer token if sent (UI with OIDC and "pass access token"), else the cookie."""
    return await authenticate(
        context, credentials.credentials if credentials else cookie, client_address(request)
    )


CallerDep = Annotated[Caller, Depends(get_caller)]
CodecCallerDep = Annotated[Caller, Depends(get_codec_caller)]


async def audit_refusal(
    context: ApiContext, caller: Caller, what: str, case_id: uuid.UUID | None
) -> None:
    """A refused attempt, in its own short transaction (there is no read to join)."""
    async with context.sessionmaker.begin() as session:
        await record_access(
            await session.connection(),
            subject=caller.subject,
            role=caller.role.value,
            case_id=case_id,
            what=what,
            allowed=False,
        )


def _path_case_id(request: Request) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(request.path_params.get("case_id")))
    except ValueError:
        return None


def require_roles(what: str, *roles: Role) -> Callable[..., Awaitable[Caller]]:
    """Function level: 403 (and an audit row) unless the caller has one of `roles`."""
    allowed = frozenset(roles)

    async def check(request: Request, context: ContextDep, caller: CallerDep) -> Caller:
        if caller.role not in allowed:
            await audit_refusal(context, caller, what, _path_case_id(request))
            raise HTTPException(status.HTTP_403_FORBIDDEN, "your role may not do this")
        return caller

    return check

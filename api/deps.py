"""Dependency aliases shared by the routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api.context import ApiContext
from core.identity import IdentityProtector
from core.settings import Settings


def get_context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


ContextDep = Annotated[ApiContext, Depends(get_context)]


async def get_session(context: ContextDep) -> AsyncIterator[AsyncSession]:
    async with context.sessionmaker() as session:
        yield session


def get_temporal(context: ContextDep) -> Client:
    return context.temporal


def get_identity(context: ContextDep) -> IdentityProtector:
    return context.identity


def get_settings(context: ContextDep) -> Settings:
    return context.settings


SessionDep = Annotated[AsyncSession, Depends(get_session)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
IdentityDep = Annotated[IdentityProtector, Depends(get_identity)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

"""Engine and session factory for the record store; built once per process and passed down."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from core.settings import Settings


def create_engine(settings: Settings, *, url: str | None = None) -> AsyncEngine:
    engine = create_async_engine(
        url or settings.database_url(),
        pool_size=settings.database.pool_size,
        connect_args={"server_settings": {"application_name": settings.database.application_name}},
    )
    event.listen(engine.sync_engine.pool, "checkout", _refuse_closed_connection)
    return engine


def _refuse_closed_connection(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """A pooled connection the server has closed (a restart, an idle timeout) is replaced.

    asyncpg learns of a closed socket as soon as the event loop reads its end, so this costs
    no round trip, where `pool_pre_ping` spent two (BEGIN and ROLLBACK) on every checkout: a
    third of all statements of a case's lifecycle. A connection that breaks in use anyway
    fails that one statement; SQLAlchemy then recycles the whole pool, an API request answers
    503 and an activity retries.
    """
    if record.driver_connection.is_closed():
        raise exc.DisconnectionError("the server closed this pooled connection")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def create_autocommit_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose every statement commits on its own: no BEGIN and COMMIT round trips.

    For a request that only reads, or writes one independent row (an access audit): a case
    action's checks took BEGIN, SELECT and COMMIT where one SELECT will do.
    """
    return async_sessionmaker(
        engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
    )

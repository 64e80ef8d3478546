"""Hot statements, run straight on asyncpg with SQL that SQLAlchemy compiled once.

A case change is a handful of small statements in one transaction. Through SQLAlchemy's
async session each of them cost about twice the client CPU of the same statement sent by
asyncpg (a greenlet switch each way, the execution context, result processing), and the
session's own BEGIN and COMMIT as much again. So the record-store activities take a pooled
connection from the engine, open the transaction on asyncpg itself and run their
statements there; so does a case action's access check and audit row in the API, each
statement committing on its own. A connection that breaks in use fails its statement (an
activity is retried, the API answers 503) and is replaced when it is next checked out
(`store.db`). The statements stay SQLAlchemy Core, defined once on the tables: each is
compiled once per set of parameter names, for the asyncpg dialect, into the SQL and the
order of its parameters, and asyncpg prepares it once per connection.

Helpers that write take a `Conn`: a `Direct` here, or a SQLAlchemy `AsyncConnection` where
a caller already holds a session (the API, tests, rare activities). Both answer
`execute(statement, parameters)` with rows that have `.one()` and `.first()`, and
`scalar(statement, parameters)`.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, Protocol, cast
from weakref import WeakKeyDictionary

import asyncpg
from opentelemetry import trace
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable

Parameters = Mapping[str, Any]


class Rows(Protocol):
    def one(self) -> Any: ...

    def first(self) -> Any: ...


class Conn(Protocol):
    """What the record-store helpers need of a connection in a transaction."""

    async def execute(
        self, statement: Executable, parameters: Parameters | Sequence[Parameters] | None = None
    ) -> Rows: ...

    async def scalar(self, statement: Executable, parameters: Parameters | None = None) -> Any: ...


_DIALECT = PGDialect_asyncpg()


@dataclass(frozen=True)
class _Compiled:
    sql: str
    operation: str  # its first word, which names its span
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    # The values the statement itself binds (a LIMIT, a literal in a WHERE clause).
    constants: tuple[Any, ...]

    def arguments(self, parameters: Parameters) -> list[Any]:
        values = [
            parameters.get(name, constant)
            for name, constant in zip(self.names, self.constants, strict=True)
        ]
        return [
            value if process is None else process(value)
            for value, process in zip(values, self.processors, strict=True)
        ]


# Bounded: statements are meant to be built once (module constants), but one built per
# call would otherwise keep every copy alive here; it is then merely compiled each time.
@lru_cache(maxsize=1024)
def compiled(statement: Executable, names: frozenset[str]) -> _Compiled:
    """The statement's SQL for these parameter names, compiled on first use."""
    return _compile(statement, names)


def _compile(statement: Executable, names: frozenset[str]) -> _Compiled:
    # `for_executemany`: no implicit RETURNING of a new row's key, which nobody reads.
    element = cast(ClauseElement, statement)
    sql = cast(
        SQLCompiler,
        element.compile(dialect=_DIALECT, column_keys=sorted(names), for_executemany=True),
    )
    if sql.insert_prefetch or sql.update_prefetch:
        # A column default computed in Python would silently be left out here.
        raise ValueError("a statement run directly must name every column with a Python default")
    order = tuple(sql.positiontup or ())
    binds = [sql.binds[name] for name in order]
    missing = [bind.key for bind in binds if bind.key not in names and bind.required]
    if missing:
        raise ValueError(f"the statement needs parameters {sorted(missing)}")
    processors = tuple(bind.type.dialect_impl(_DIALECT).bind_processor(_DIALECT) for bind in binds)
    constants = tuple(None if bind.required else bind.effective_value for bind in binds)
    return _Compiled(sql.string, sql.string.split(None, 1)[0], order, processors, constants)


@cache
def _shape(columns: tuple[str, ...]) -> Callable[..., tuple[Any, ...]]:
    return namedtuple("Row", columns, rename=True)


class _Rows:
    """Fetched rows as named tuples: `row.column` and `a, b = row`, as SQLAlchemy gives."""

    __slots__ = ("_rows",)

    def __init__(self, records: list[asyncpg.Record]) -> None:
        if records:
            shape = _shape(tuple(records[0].keys()))
            self._rows = [shape(*record.values()) for record in records]
        else:
            self._rows = []

    def one(self) -> Any:
        if len(self._rows) != 1:
            raise LookupError(f"expected one row, found {len(self._rows)}")
        return self._rows[0]

    def first(self) -> Any:
        return self._rows[0] if self._rows else None


@dataclass(frozen=True)
class _Tracing:
    """Spans for the statements of one engine, as its SQLAlchemy instrumentation makes them."""

    tracer: trace.Tracer
    database: str

    def span(self, sql: _Compiled) -> AbstractContextManager[trace.Span]:
        return self.tracer.start_as_current_span(
            f"{sql.operation} {self.database}",
            kind=trace.SpanKind.CLIENT,
            # The statement with its placeholders, never the bound values.
            attributes={
                "db.system": "postgresql",
                "db.name": self.database,
                "db.statement": sql.sql,
            },
        )


_tracing: WeakKeyDictionary[Engine, _Tracing] = WeakKeyDictionary()


def trace_statements(engine: AsyncEngine, tracer: trace.Tracer) -> None:
    """Statements run directly on this engine's connections get a span each, like the ones
    SQLAlchemy's instrumentation makes for the engine's own."""
    _tracing[engine.sync_engine] = _Tracing(tracer, engine.url.database or "")


class Direct:
    """A transaction's statements, sent by asyncpg on the connection it holds."""

    __slots__ = ("_connection", "_tracing")

    def __init__(self, connection: asyncpg.Connection, tracing: _Tracing | None = None) -> None:
        self._connection = connection
        self._tracing = tracing

    async def execute(
        self, statement: Executable, parameters: Parameters | Sequence[Parameters] | None = None
    ) -> _Rows:
        if parameters is None or isinstance(parameters, Mapping):
            given = parameters or {}
            sql = compiled(statement, frozenset(given))
            with self._span(sql):
                return _Rows(await self._connection.fetch(sql.sql, *sql.arguments(given)))
        if not parameters:
            return _Rows([])
        # Every row of a many-row write names the same columns, as with SQLAlchemy.
        sql = compiled(statement, frozenset(parameters[0]))
        with self._span(sql):
            await self._connection.executemany(sql.sql, [sql.arguments(row) for row in parameters])
        return _Rows([])

    async def scalar(self, statement: Executable, parameters: Parameters | None = None) -> Any:
        given = parameters or {}
        sql = compiled(statement, frozenset(given))
        with self._span(sql):
            return await self._connection.fetchval(sql.sql, *sql.arguments(given))

    def _span(self, sql: _Compiled) -> AbstractContextManager[Any]:
        return nullcontext() if self._tracing is None else self._tracing.span(sql)


@asynccontextmanager
async def begin(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[Direct]:
    """One transaction on a connection of the sessionmaker's engine, committed on success."""
    async with connect(sessionmaker) as conn:
        async with conn._connection.transaction():
            yield conn


@asynccontextmanager
async def connect(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[Direct]:
    """A connection of the sessionmaker's engine on which each statement commits on its own.

    The connection comes from the engine's pool, with its checks on checkout; SQLAlchemy
    starts no transaction on it, so handing it back costs no ROLLBACK.
    """
    engine = sessionmaker.kw.get("bind")
    if not isinstance(engine, AsyncEngine):
        raise TypeError("the sessionmaker must be bound to an AsyncEngine")
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver: asyncpg.Connection = raw.driver_connection
        yield Direct(driver, _tracing.get(engine.sync_engine))

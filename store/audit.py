"""The access audit: one append-only row per sensitive read and per refused attempt."""

from __future__ import annotations

import uuid

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.direct import Conn
from store.schema import AccessAudit, table_of


async def record_access(
    conn: Conn,
    *,
    subject: str,
    role: str,
    case_id: uuid.UUID | None,
    what: str,
    allowed: bool,
) -> None:
    """Add the row to the connection's transaction: it commits (or not) with the read itself."""
    await conn.execute(
        _INSERT_ROW,
        {"subject": subject, "role": role, "case_id": case_id, "what": what, "allowed": allowed},
    )


# Built once and run with its values as parameters: every sensitive request writes a row,
# and a statement built per call cost its construction and cache key each time.
_INSERT_ROW = insert(table_of(AccessAudit))


async def audit_rows(session: AsyncSession, case_id: uuid.UUID | None = None) -> list[AccessAudit]:
    """The audit trail, oldest first; of one case when `case_id` is given."""
    query = select(AccessAudit).order_by(AccessAudit.id)
    if case_id is not None:
        query = query.where(AccessAudit.case_id == case_id)
    return list((await session.scalars(query)).all())

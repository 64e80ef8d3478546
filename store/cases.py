"""Reading the case projection that the workflows keep up to date."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.schema import Case, Unit


async def get_case(session: AsyncSession, case_id: uuid.UUID) -> Case | None:
    return await session.get(Case, case_id)


async def open_case_of(session: AsyncSession, pseudonym: uuid.UUID) -> Case | None:
    return await session.scalar(
        select(Case).where(Case.employee_pseudonym == pseudonym, Case.closed_at.is_(None)).limit(1)
    )


async def unit_exists(session: AsyncSession, code: str) -> bool:
    return await session.get(Unit, code) is not None

"""Reading the case projection that the workflows keep up to date."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.case import OpenCaseRecord, Stage
from models.policy import Policy, get_policy
from store.schema import Case, Unit, table_of


async def get_case(session: AsyncSession, case_id: uuid.UUID) -> Case | None:
    return await session.get(Case, case_id)


async def open_case_of(session: AsyncSession, pseudonym: uuid.UUID) -> Case | None:
    return await session.scalar(
        select(Case).where(Case.employee_pseudonym == pseudonym, Case.closed_at.is_(None)).limit(1)
    )


async def unit_exists(session: AsyncSession, code: str) -> bool:
    return await session.get(Unit, code) is not None


async def policy_of_unit(session: AsyncSession, code: str) -> Policy:
    """The policy a case of this unit takes a snapshot of when it starts (latest version)."""
    policy_id = await session.scalar(select(Unit.policy_id).where(Unit.code == code))
    return get_policy(policy_id or "se-default")


async def insert_case(session: AsyncSession, record: OpenCaseRecord) -> bool:
    """The case's row at `identified`; nothing happens when it is already there. True when
    this call wrote it."""
    conn = await session.connection()
    written = await conn.scalar(
        _INSERT_CASE,
        {
            "id": record.case_id,
            "workflow_id": record.workflow_id,
            "employee_pseudonym": record.employee_pseudonym,
            "unit_code": record.unit_code,
            "trigger": record.trigger.value,
            "stage": Stage.IDENTIFIED.value,
            "policy_id": record.policy_id,
            "policy_version": record.policy_version,
            "opened_at": record.opened_at,
        },
    )
    return written is not None


# Built once on the table, compiled once: every opening writes it.
_CASES = table_of(Case)
_INSERT_CASE = insert(_CASES).on_conflict_do_nothing(index_elements=["id"]).returning(_CASES.c.id)

"""Reading the case projection that the workflows keep up to date."""

from __future__ import annotations

import uuid
from typing import NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.case import OpenCaseRecord, Stage
from models.policy import Policy, get_policy
from store.direct import Conn
from store.schema import Case, Unit, table_of


async def get_case(session: AsyncSession, case_id: uuid.UUID) -> Case | None:
    return await session.get(Case, case_id)


class OpenCase(NamedTuple):
    """What deciding an opening needs of the employee's open case."""

    id: uuid.UUID
    workflow_id: str
    stage: str


# Built once on the tables, compiled once: every opening and every referral asks them.
_CASES = table_of(Case)
_UNITS = table_of(Unit)
_OPEN_CASE = (
    select(_CASES.c.id, _CASES.c.workflow_id, _CASES.c.stage)
    .where(_CASES.c.employee_pseudonym == bindparam("pseudonym"), _CASES.c.closed_at.is_(None))
    .limit(1)
)
_UNIT_POLICY = select(_UNITS.c.policy_id).where(_UNITS.c.code == bindparam("code"))


async def open_case_of(conn: Conn, pseudonym: uuid.UUID) -> OpenCase | None:
    row = (await conn.execute(_OPEN_CASE, {"pseudonym": pseudonym})).first()
    return None if row is None else OpenCase(*row)


async def unit_exists(session: AsyncSession, code: str) -> bool:
    return await session.get(Unit, code) is not None


async def policy_of_unit(conn: Conn, code: str) -> Policy:
    """The policy a case of this unit takes a snapshot of when it starts (latest version)."""
    policy_id = await conn.scalar(_UNIT_POLICY, {"code": code})
    return get_policy(policy_id or "se-default")


async def insert_case(conn: Conn, record: OpenCaseRecord) -> bool:
    """The case's row at `identified`; nothing happens when it is already there. True when
    this call wrote it."""
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
_INSERT_CASE = insert(_CASES).on_conflict_do_nothing(index_elements=["id"]).returning(_CASES.c.id)

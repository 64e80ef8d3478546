"""The employee directory: personal identity number in, pseudonym out."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.identity import IdentityProtector, PersonalIdentityNumber
from store.schema import Employee


async def pseudonym_for(
    session: AsyncSession,
    protector: IdentityProtector,
    pin: PersonalIdentityNumber,
    unit_code: str,
) -> uuid.UUID:
    """The employee's pseudonym, creating the mapping on first sight."""
    lookup = protector.lookup_hash(pin)
    # ON CONFLICT keeps two concurrent first sightings from creating two pseudonyms.
    await session.execute(
        insert(Employee)
        .values(
            pseudonym=uuid.uuid4(),
            pin_lookup=lookup,
            pin_encrypted=protector.encrypt(pin),
            unit_code=unit_code,
        )
        .on_conflict_do_nothing(index_elements=[Employee.pin_lookup])
    )
    pseudonym = await session.scalar(
        select(Employee.pseudonym).where(Employee.pin_lookup == lookup)
    )
    assert pseudonym is not None
    return pseudonym

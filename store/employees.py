"""The employee directory: personal identity number in, pseudonym out."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.identity import IdentityProtector, PersonalIdentityNumber
from store.schema import Employee


def coded_attributes(pin: PersonalIdentityNumber) -> dict[str, object]:
    """Sex and birth year, coded at intake for the evaluation's breakdowns (README: legal
    basis and purpose). Nothing else of the number is kept in the clear."""
    return {"sex": pin.legal_sex, "birth_year": pin.birth_date.year}


def backfilling_coded_attributes(statement: Insert) -> Insert:
    """On a known employee, fill in coded attributes that an older version did not store."""
    return statement.on_conflict_do_update(
        index_elements=[Employee.pin_lookup],
        set_={"sex": statement.excluded.sex, "birth_year": statement.excluded.birth_year},
        where=Employee.sex.is_(None),
    )


async def pseudonym_for(
    session: AsyncSession,
    protector: IdentityProtector,
    pin: PersonalIdentityNumber,
    unit_code: str,
) -> uuid.UUID:
    """The employee's pseudonym, creating the mapping on first sight."""
    lookup = protector.lookup_hash(pin)
    # ON CONFLICT keeps two concurrent first sightings from creating two pseudonyms.
    statement = insert(Employee).values(
        pseudonym=uuid.uuid4(),
        pin_lookup=lookup,
        pin_encrypted=protector.encrypt(pin),
        unit_code=unit_code,
        **coded_attributes(pin),
    )
    await session.execute(backfilling_coded_attributes(statement))
    pseudonym = await session.scalar(
        select(Employee.pseudonym).where(Employee.pin_lookup == lookup)
    )
    assert pseudonym is not None
    return pseudonym

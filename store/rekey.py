"""Re-encrypt the record store's personal data under the active key; rehash the lookup index.

Run by `starter.py rekey-records` after a rotation: once every token is under the new
active key, the old keys can leave the ring. A new lookup key needs every row rehashed at
once, because the index is a deterministic HMAC: run it while the API and the ingestion
are stopped, then start them with the new key.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.identity import IdentityProtector
from store.contacts import ContactProtector
from store.schema import Employee, EmployeeContact


@dataclass(frozen=True)
class RekeySummary:
    identities: int
    contacts: int


async def rekey_records(
    session: AsyncSession,
    identities: IdentityProtector,
    contacts: ContactProtector,
    *,
    new_lookup: IdentityProtector | None = None,
) -> RekeySummary:
    """In the caller's transaction: every token decrypted with the ring, encrypted anew.

    `new_lookup` (same ring, the new lookup key) also recomputes every lookup hash.
    """
    rows = (
        await session.execute(
            select(Employee.pseudonym, Employee.pin_encrypted)
            .where(Employee.pin_encrypted.is_not(None))
            .with_for_update()
        )
    ).all()
    for pseudonym, token in rows:
        assert token is not None  # selected so
        pin = identities.decrypt(token)
        values: dict[str, object] = {"pin_encrypted": identities.encrypt(pin)}
        if new_lookup is not None:
            values["pin_lookup"] = new_lookup.lookup_hash(pin)
        await session.execute(
            update(Employee).where(Employee.pseudonym == pseudonym).values(**values)
        )
    contact_rows = (
        await session.execute(
            select(
                EmployeeContact.employee_pseudonym, EmployeeContact.address_encrypted
            ).with_for_update()
        )
    ).all()
    for pseudonym, token in contact_rows:
        await session.execute(
            update(EmployeeContact)
            .where(EmployeeContact.employee_pseudonym == pseudonym)
            .values(address_encrypted=contacts.encrypt(contacts.decrypt(token)))
        )
    return RekeySummary(identities=len(rows), contacts=len(contact_rows))

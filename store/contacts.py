"""Who receives notifications: unit contacts per role, and the employee's protected contact."""

from __future__ import annotations

import os
from typing import Literal
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.codec import NONCE_BYTES, KeyRing
from core.i18n import DEFAULT_LANGUAGE, Language
from store.schema import EmployeeContact, UnitContact

ContactChannel = Literal["email", "webhook"]
UnitContactRole = Literal[
    "manager",
    "coordinator",
    "fk_officer",
    "fhv",
    "healthcare",
    "social_services",
    "arbetsformedlingen",
]

_TOKEN_VERSION = 1
# Binds a token to its purpose, so a contact token cannot pass for an identity token.
_PURPOSE = b"rehabflow:employee-contact"


class ContactDecryptionError(ValueError):
    """An employee contact token could not be decrypted (unknown key id, tampered bytes)."""


class ContactProtector:
    """Encrypts the employee's own address with AES-GCM under the record store's key ring.

    The address is personal data that no query needs to search, so unlike the personal
    identity number it has no lookup hash. Token layout as for identity numbers:
    version | key id length | key id | nonce | ciphertext+tag, the header authenticated.
    """

    def __init__(self, keys: KeyRing) -> None:
        self._active = keys.active_key_id
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.keys.items()}

    def encrypt(self, address: str) -> bytes:
        key_id = self._active.encode()
        header = bytes([_TOKEN_VERSION, len(key_id)]) + key_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self._active].encrypt(nonce, address.encode(), header + _PURPOSE)
        return header + nonce + sealed

    def decrypt(self, token: bytes) -> str:
        if len(token) < 2 or token[0] != _TOKEN_VERSION:
            raise ContactDecryptionError("unknown contact token version")
        header_end = 2 + token[1]
        header, key_id = token[:header_end], token[2:header_end].decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise ContactDecryptionError(f"contact token uses key {key_id!r}, not in the ring")
        nonce_end = header_end + NONCE_BYTES
        try:
            nonce, sealed = token[header_end:nonce_end], token[nonce_end:]
            plain = cipher.decrypt(nonce, sealed, header + _PURPOSE)
        except InvalidTag:
            raise ContactDecryptionError("contact token failed authentication") from None
        return plain.decode()


async def add_unit_contact(
    session: AsyncSession,
    *,
    unit_code: str,
    role: UnitContactRole,
    channel: ContactChannel,
    address: str,
    language: Language = DEFAULT_LANGUAGE,
) -> int:
    """Register a recipient for a unit and role; idempotent, returns the contact's id. A
    registered contact keeps its language unless it is given again (then it changes)."""
    await session.execute(
        insert(UnitContact)
        .values(unit_code=unit_code, role=role, channel=channel, address=address, language=language)
        .on_conflict_do_update(
            constraint="uq_unit_contacts_unit_code", set_={"language": language, "active": True}
        )
    )
    contact_id = await session.scalar(
        select(UnitContact.id).where(
            UnitContact.unit_code == unit_code,
            UnitContact.role == role,
            UnitContact.channel == channel,
            UnitContact.address == address,
        )
    )
    assert contact_id is not None
    return contact_id


async def set_employee_contact(
    session: AsyncSession,
    protector: ContactProtector,
    *,
    employee_pseudonym: UUID,
    channel: ContactChannel,
    address: str,
    language: Language = DEFAULT_LANGUAGE,
) -> None:
    """Store (or replace) the employee's own contact, encrypted, and the language the
    employee's notifications are written in."""
    token = protector.encrypt(address)
    await session.execute(
        insert(EmployeeContact)
        .values(
            employee_pseudonym=employee_pseudonym,
            channel=channel,
            address_encrypted=token,
            language=language,
        )
        .on_conflict_do_update(
            index_elements=[EmployeeContact.employee_pseudonym],
            set_={"channel": channel, "address_encrypted": token, "language": language},
        )
    )


async def erase_employee_contact(session: AsyncSession, employee_pseudonym: UUID) -> None:
    """GDPR erasure of the contact; pending notifications to it then dead-letter."""
    row = await session.get(EmployeeContact, employee_pseudonym)
    if row is not None:
        await session.delete(row)

"""Swedish personal identity numbers: validation, masking, encryption and a blind lookup index."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import re
from datetime import date

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.codec import NONCE_BYTES, DecryptionError, KeyRing

# [0-9], not \d: \d also matches non-ASCII digits such as Arabic-Indic ones.
_FORMAT = re.compile(
    r"(?P<century>[0-9]{2})?(?P<yymmdd>[0-9]{6})(?P<separator>[-+]?)(?P<serial>[0-9]{4})"
)
_NORMALISED = re.compile(r"[0-9]{12}")
_COORDINATION_DAY_OFFSET = 60
_CENTENARIAN_AGE = 100
_TOKEN_VERSION = 1
_TAG_BYTES = 16
_MIN_LOOKUP_KEY_BYTES = 32


class InvalidPersonalIdentityNumber(ValueError):
    """The input is not a valid personnummer; the message names the reason, never the input."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid personal identity number: {reason}")
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class PersonalIdentityNumber:
    """A validated personnummer or samordningsnummer, normalised to 12 digits (YYYYMMDDNNNC).

    Build it with `parse_personnummer`; repr and str are masked so it cannot leak into logs.
    """

    value: str

    def __post_init__(self) -> None:
        if not _NORMALISED.fullmatch(self.value):
            raise InvalidPersonalIdentityNumber("wrong format")

    @property
    def is_coordination_number(self) -> bool:
        return int(self.value[6:8]) > _COORDINATION_DAY_OFFSET

    @property
    def birth_date(self) -> date:
        day = int(self.value[6:8])
        if day > _COORDINATION_DAY_OFFSET:
            day -= _COORDINATION_DAY_OFFSET
        return date(int(self.value[0:4]), int(self.value[4:6]), day)

    @property
    def legal_sex(self) -> str:
        """`F` or `M`: the second-last digit is even for women, odd for men (Skatteverket)."""
        return "F" if int(self.value[10]) % 2 == 0 else "M"

    def __repr__(self) -> str:
        return "PersonalIdentityNumber(****)"

    __str__ = __repr__


def parse_personnummer(value: str, *, today: date) -> PersonalIdentityNumber:
    """Validate and normalise YYYYMMDD-XXXX, YYYYMMDD+XXXX, YYYYMMDDXXXX, YYMMDD-XXXX,
    YYMMDDXXXX or YYMMDD+XXXX.

    `today` resolves the century of 10-digit forms and rejects future birth dates.
    """
    match = _FORMAT.fullmatch(value.strip())
    if match is None:
        raise InvalidPersonalIdentityNumber("wrong format")
    yymmdd, serial = match["yymmdd"], match["serial"]

    if match["century"]:
        year = int(match["century"] + yymmdd[:2])
    else:
        # Skatteverket switches '-' to '+' from the year the person turns 100, so without '+'
        # the birth year is within the last 99 years, and with '+' a century before that.
        year = today.year - (today.year - int(yymmdd[:2])) % 100
        if match["separator"] == "+":
            year -= 100

    day = int(yymmdd[4:6])
    if day > _COORDINATION_DAY_OFFSET:
        day -= _COORDINATION_DAY_OFFSET
    try:
        birth_date = date(year, int(yymmdd[2:4]), day)
    except ValueError:
        raise InvalidPersonalIdentityNumber("not a valid date") from None
    if birth_date > today:
        raise InvalidPersonalIdentityNumber("date is in the future")
    # '+' marks a person who turns 100 this year or earlier, in either form; the 12-digit
    # form states the century, so there it must agree with that.
    if match["century"] and match["separator"] == "+" and today.year - year < _CENTENARIAN_AGE:
        raise InvalidPersonalIdentityNumber("'+' is only used from the year of the 100th birthday")
    # Skatteverket never issues the birth number 000 (the serial's first three digits).
    if serial[:3] == "000":
        raise InvalidPersonalIdentityNumber("serial number 000 is never issued")
    if _luhn_check_digit(yymmdd + serial[:3]) != int(serial[3]):
        raise InvalidPersonalIdentityNumber("check digit does not match")
    return PersonalIdentityNumber(f"{year:04d}{yymmdd[2:]}{serial}")


def _luhn_check_digit(nine_digits: str) -> int:
    total = 0
    for position, char in enumerate(nine_digits):
        product = int(char) * (2 if position % 2 == 0 else 1)
        total += product // 10 + product % 10
    return (10 - total % 10) % 10


class IdentityProtector:
    """Encrypts personnummer for storage and derives the keyed hash that indexes them.

    Token layout: version (1 byte) | key id length (1 byte) | key id | nonce | ciphertext+tag.
    The header is the AES-GCM associated data, so it cannot be altered undetected.
    """

    def __init__(self, encryption_keys: KeyRing, lookup_key: bytes) -> None:
        # Personnummer are few and guessable, so the hash is only as strong as this key.
        if len(lookup_key) < _MIN_LOOKUP_KEY_BYTES:
            raise ValueError(f"lookup key must be at least {_MIN_LOOKUP_KEY_BYTES} bytes")
        self._active_key_id = encryption_keys.active_key_id
        self._ciphers = {key_id: AESGCM(key) for key_id, key in encryption_keys.keys.items()}
        self._lookup_key = lookup_key

    def encrypt(self, pnr: PersonalIdentityNumber) -> bytes:
        key_id = self._active_key_id.encode()
        header = bytes([_TOKEN_VERSION, len(key_id)]) + key_id
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = self._ciphers[self._active_key_id].encrypt(nonce, pnr.value.encode(), header)
        return header + nonce + ciphertext

    def decrypt(self, token: bytes) -> PersonalIdentityNumber:
        if len(token) < 2 or token[0] != _TOKEN_VERSION:
            raise DecryptionError("unknown identity token version")
        header_end = 2 + token[1]
        if len(token) < header_end + NONCE_BYTES + _TAG_BYTES:
            raise DecryptionError("identity token is truncated")
        header, key_id = token[:header_end], token[2:header_end].decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise DecryptionError(f"identity token uses key {key_id!r}, not in the key ring")
        nonce_end = header_end + NONCE_BYTES
        nonce, ciphertext = token[header_end:nonce_end], token[nonce_end:]
        try:
            plaintext = cipher.decrypt(nonce, ciphertext, header)
        except InvalidTag:
            raise DecryptionError("identity token failed authentication") from None
        return PersonalIdentityNumber(plaintext.decode())

    def lookup_hash(self, pnr: PersonalIdentityNumber) -> str:
        """HMAC-SHA256 hex of the 12-digit form: a unique index that never stores the number.

        Deterministic by design, so the lookup key cannot rotate without rehashing every row.
        """
        return hmac.new(self._lookup_key, pnr.value.encode(), hashlib.sha256).hexdigest()

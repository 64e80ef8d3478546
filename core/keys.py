"""New key rings for an installation, and new active keys for rotating them.

The three secrets (core.secrets.Secrets) in the form their settings take:
- the payload key ring (Temporal payloads): `id:key,...`, the first key encrypts;
- the personal-identity-number key ring (record store tokens), same form;
- the lookup key: one base64url HMAC key, which cannot be a ring (see store.rekey).
"""

from __future__ import annotations

import base64
import secrets
from datetime import date

from core.codec import KeyRing

PAYLOAD_KEYS_ENV = "REHABFLOW_SECURITY__PAYLOAD_KEYS"
PIN_KEYS_ENV = "REHABFLOW_SECURITY__PIN_ENCRYPTION_KEYS"
LOOKUP_KEY_ENV = "REHABFLOW_SECURITY__PIN_LOOKUP_KEY"


def new_key_id(prefix: str, today: date) -> str:
    """`<prefix><yyyymmdd>-<random>`: sortable by creation, unique without coordination."""
    return f"{prefix}{today:%Y%m%d}-{secrets.token_hex(3)}"


def new_lookup_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def with_new_active_key(ring: str | None, prefix: str, today: date) -> str:
    """`ring` with a fresh key in front: it encrypts from now on, the old keys still decrypt."""
    fresh = KeyRing.generate(new_key_id(prefix, today)).to_config()
    if not ring:
        return fresh
    KeyRing.from_config(ring)  # refuse to extend a ring that does not parse
    return f"{fresh},{ring}"


def generate(
    today: date,
    *,
    payload_ring: str | None = None,
    pin_ring: str | None = None,
    lookup_key: str | None = None,
) -> dict[str, str]:
    """Settings for the three secrets; given rings get a new active key, a given lookup key
    is kept (rotating it needs `starter.py rekey-records`)."""
    return {
        PAYLOAD_KEYS_ENV: with_new_active_key(payload_ring, "k", today),
        PIN_KEYS_ENV: with_new_active_key(pin_ring, "p", today),
        LOOKUP_KEY_ENV: lookup_key or new_lookup_key(),
    }

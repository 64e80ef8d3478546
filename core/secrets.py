"""Where the process's keys come from: settings in production, a generated file when embedded."""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass

from core.settings import Settings

SECRETS_FILE = "secrets.json"


class MissingSecret(RuntimeError):
    pass


@dataclass(frozen=True)
class Secrets:
    payload_keys: str
    pin_encryption_keys: str
    pin_lookup_key: bytes

    def __repr__(self) -> str:
        return "Secrets(****)"


def _new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _embedded_file(settings: Settings) -> dict[str, str]:
    """Keys for the one-machine setup: made once, kept under the data directory (mode 600)."""
    path = settings.data_dir / SECRETS_FILE
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text())
        return stored
    path.parent.mkdir(parents=True, exist_ok=True)
    generated = {
        "payload_keys": f"k{secrets.token_hex(3)}:{_new_key()}",
        "pin_encryption_keys": f"p{secrets.token_hex(3)}:{_new_key()}",
        "pin_lookup_key": _new_key(),
    }
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process of the stack made it first
        return _embedded_file(settings)
    with os.fdopen(fd, "w") as fh:
        json.dump(generated, fh)
    return generated


def load_secrets(settings: Settings) -> Secrets:
    sec = settings.security
    given = {
        "payload_keys": sec.payload_keys,
        "pin_encryption_keys": sec.pin_encryption_keys,
        "pin_lookup_key": sec.pin_lookup_key,
    }
    values = {name: value.get_secret_value() for name, value in given.items() if value is not None}
    missing = [name for name in given if name not in values]
    if missing:
        if not (settings.temporal.is_embedded and settings.database.is_embedded):
            # Against external services, a generated key would silently fork the key ring.
            raise MissingSecret(
                "set " + ", ".join(f"REHABFLOW_SECURITY__{m.upper()}" for m in missing)
            )
        stored = _embedded_file(settings)
        values.update({m: stored[m] for m in missing})
    return Secrets(
        payload_keys=values["payload_keys"],
        pin_encryption_keys=values["pin_encryption_keys"],
        pin_lookup_key=base64.urlsafe_b64decode(values["pin_lookup_key"]),
    )

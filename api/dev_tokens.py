"""Dev tokens of the embedded stack: one per role, made at the first `make up`.

Run `python -m api.dev_tokens --role manager --unit HT-1` to mint a narrower one.
Only for `auth.mode = embedded`: the key lives under the data directory.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from pathlib import Path

import jwt

from api.auth import ALL_UNITS, AUTH_DIR, EmbeddedIssuer
from core.settings import Settings
from models.api import Role

DEV_TOKENS_FILE = "dev-tokens.json"
DEV_TOKEN_LIFETIME_S = 365 * 24 * 3600
# Re-mint when a token has less than this left, so a running stack never holds a dead one.
_RENEW_BEFORE_S = 7 * 24 * 3600


def dev_tokens_path(settings: Settings) -> Path:
    return settings.data_dir / AUTH_DIR / DEV_TOKENS_FILE


def _still_valid(tokens: dict[str, str], issuer: EmbeddedIssuer) -> bool:
    if set(tokens) != {r.value for r in Role}:
        return False
    now = time.time()
    for token in tokens.values():
        try:
            claims = jwt.decode(
                token,
                issuer.private_key.public_key(),
                algorithms=["RS256"],
                audience=issuer.config.audience,
                issuer=issuer.config.issuer,
            )
        except jwt.InvalidTokenError:
            return False
        if claims["exp"] - now < _RENEW_BEFORE_S:
            return False
    return True


def ensure_dev_tokens(settings: Settings) -> tuple[Path, dict[str, str], bool]:
    """The dev tokens (role -> JWT), minted if missing or stale; True when new ones were made.

    Managers and coordinators get every unit of this machine (`*`, honoured only in
    embedded mode); the employee token names a fresh pseudonym that matches no case.
    """
    issuer = EmbeddedIssuer.load_or_create(settings)
    path = dev_tokens_path(settings)
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text())
        if _still_valid(stored, issuer):
            return path, stored, False
    tokens = {
        role.value: issuer.mint(
            role,
            subject=f"dev-{role.value}",
            units=[ALL_UNITS] if role in (Role.MANAGER, Role.COORDINATOR) else [],
            employee_pseudonym=uuid.uuid4() if role is Role.EMPLOYEE else None,
            lifetime_s=DEV_TOKEN_LIFETIME_S,
        )
        for role in Role
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(tokens, fh, indent=1)
    return path, tokens, True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Mint a dev token for the embedded stack.")
    parser.add_argument("--role", required=True, choices=[r.value for r in Role])
    parser.add_argument("--unit", action="append", default=[], help="unit code (repeatable)")
    parser.add_argument("--employee", type=uuid.UUID, help="employee pseudonym (role employee)")
    parser.add_argument("--subject", help="the token's sub (default dev-<role>)")
    parser.add_argument("--hours", type=int, default=8)
    args = parser.parse_args(argv)
    settings = Settings()
    if settings.auth.mode != "embedded":
        parser.error("dev tokens exist only with REHABFLOW_AUTH__MODE=embedded")
    token = EmbeddedIssuer.load_or_create(settings).mint(
        Role(args.role),
        subject=args.subject,
        units=args.unit,
        employee_pseudonym=args.employee,
        lifetime_s=args.hours * 3600,
    )
    print(token)  # a command-line tool: its output is the token
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

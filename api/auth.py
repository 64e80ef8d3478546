"""Who is calling: bearer JWTs verified against the issuer's JWKS, mapped to a role and scope.

Production tokens come from the organisation's OIDC provider and are checked against its
JWKS (`PyJWKClient`). The embedded stack signs its dev tokens with a key generated under
the data directory and verifies them on the same path, with the JWKS built from that key.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt import PyJWK, PyJWKClient, PyJWKSet

from core.settings import AuthSettings, Settings
from models.api import Role

AUTH_DIR = "auth"
SIGNING_KEY_FILE = "signing-key.pem"
# Dev tokens of the embedded stack carry this unit: every unit on this machine. Honoured
# only in embedded mode, so a production token can never widen its scope with it.
ALL_UNITS = "*"


class InvalidToken(Exception):
    """The bearer token is missing, malformed, expired, or not from the trusted issuer."""


class NoRole(Exception):
    """The token is valid but maps to no (or more than one) rehabflow role."""


@dataclass(frozen=True)
class Caller:
    """The authenticated caller. `subject` is the only personal datum the audit keeps."""

    subject: str
    role: Role
    units: frozenset[str] = frozenset()
    all_units: bool = False
    employee_pseudonym: uuid.UUID | None = None

    def covers_unit(self, unit_code: str) -> bool:
        return self.all_units or unit_code in self.units


class SigningKeys(Protocol):
    """Finds the public key that signed a token (by its `kid`)."""

    async def key_for(self, token: str) -> PyJWK: ...


class JwksEndpointKeys:
    """The issuer's JWKS over HTTPS, cached by `PyJWKClient` (refetched on an unknown kid)."""

    def __init__(self, jwks_url: str) -> None:
        self._client = PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=10)

    async def key_for(self, token: str) -> PyJWK:
        try:
            # PyJWKClient does blocking I/O; keep it off the event loop.
            return await asyncio.to_thread(self._client.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientError as exc:
            raise InvalidToken("no signing key for this token") from exc
        except jwt.DecodeError as exc:
            raise InvalidToken("malformed token") from exc


class StaticKeys:
    """A JWKS held in memory: the embedded stack's own key."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self._keys = PyJWKSet.from_dict(jwks)

    async def key_for(self, token: str) -> PyJWK:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.DecodeError as exc:
            raise InvalidToken("malformed token") from exc
        for key in self._keys.keys:
            if key.key_id == kid:
                return key
        raise InvalidToken("no signing key for this token")


# A verified token's caller is kept, so a caller's next requests skip the RSA check and the
# claim parsing (about a tenth of the API's CPU per action). Kept by the token's exact text,
# which only the issuer's key can have signed; until the token expires, as the check itself
# would allow, and at most VERIFIED_RECHECK_S, so a key the issuer withdraws stops its
# tokens as soon as the JWKS cache (five minutes) lets any check see it gone.
VERIFIED_KEPT = 4096
VERIFIED_RECHECK_S = 60.0


class TokenVerifier:
    """Verifies signature, algorithm, issuer, audience and expiry, then maps the claims."""

    def __init__(
        self, config: AuthSettings, keys: SigningKeys, clock: Callable[[], float] = time.time
    ) -> None:
        self._config = config
        self._keys = keys
        self._clock = clock
        # token -> (caller, the instant it is next checked in full)
        self._verified: OrderedDict[str, tuple[Caller, float]] = OrderedDict()

    async def verify(self, token: str) -> Caller:
        now = self._clock()
        kept = self._verified.get(token)
        if kept is not None:
            caller, check_again_at = kept
            if now < check_again_at:
                self._verified.move_to_end(token)
                return caller
            del self._verified[token]
        claims = await self._verified_claims(token)
        caller = self._caller(claims)
        expires_at = float(claims["exp"]) + self._config.leeway_s
        self._verified[token] = (caller, min(expires_at, now + VERIFIED_RECHECK_S))
        if len(self._verified) > VERIFIED_KEPT:
            self._verified.popitem(last=False)
        return caller

    async def _verified_claims(self, token: str) -> dict[str, Any]:
        key = await self._keys.key_for(token)
        try:
            claims = jwt.decode(
                token,
                key.key,
                # The fixed list from settings, never the token's own `alg` header.
                algorithms=self._config.algorithms,
                audience=self._config.audience,
                issuer=self._config.issuer,
                leeway=self._config.leeway_s,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(type(exc).__name__) from exc
        return claims

    def _caller(self, claims: dict[str, Any]) -> Caller:
        c = self._config
        raw_roles = claims.get(c.role_claim)
        names = [raw_roles] if isinstance(raw_roles, str) else list(raw_roles or [])
        roles = {Role(n) for n in names if isinstance(n, str) and n in Role.__members__.values()}
        if len(roles) != 1:
            raise NoRole("the token must carry exactly one rehabflow role")
        role = roles.pop()
        raw_units = claims.get(c.units_claim) or []
        units = (
            frozenset(u for u in raw_units if isinstance(u, str))
            if isinstance(raw_units, list)
            else frozenset()
        )
        all_units = c.mode == "embedded" and ALL_UNITS in units
        employee = None
        if role is Role.EMPLOYEE:
            try:
                employee = uuid.UUID(str(claims.get(c.employee_claim)))
            except ValueError:
                raise NoRole("an employee token must name the employee's pseudonym") from None
        return Caller(
            subject=str(claims["sub"])[:200],
            role=role,
            units=units - {ALL_UNITS},
            all_units=all_units,
            employee_pseudonym=employee,
        )


# ---------------------------------------------------------------- embedded issuer


@dataclass(frozen=True)
class EmbeddedIssuer:
    """The embedded stack's signing key: mints dev tokens, publishes its JWKS."""

    private_key: rsa.RSAPrivateKey
    kid: str
    config: AuthSettings

    @classmethod
    def load_or_create(cls, settings: Settings) -> EmbeddedIssuer:
        path = settings.data_dir / AUTH_DIR / SIGNING_KEY_FILE
        if not path.exists():
            _write_private(path, _new_private_key_pem())
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{path} does not hold an RSA private key")
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        # The RFC 7638 thumbprint, so the kid changes exactly when the key does.
        thumbprint = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"))
        digest = hashlib.sha256(thumbprint.encode()).digest()
        kid = jwt.utils.base64url_encode(digest).decode()[:16]
        return cls(private_key=key, kid=kid, config=settings.auth)

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key()))
        jwk.update(kid=self.kid, use="sig", alg="RS256")
        return {"keys": [jwk]}

    def mint(
        self,
        role: Role,
        *,
        subject: str | None = None,
        units: Iterable[str] = (),
        employee_pseudonym: uuid.UUID | None = None,
        lifetime_s: int = 3600,
        extra_claims: dict[str, Any] | None = None,
    ) -> str:
        now = int(time.time())
        c = self.config
        claims: dict[str, Any] = {
            "iss": c.issuer,
            "aud": c.audience,
            "sub": subject or f"dev-{role.value}",
            "iat": now,
            "exp": now + lifetime_s,
            "jti": secrets.token_hex(8),
            c.role_claim: role.value,
            c.units_claim: list(units),
        }
        if employee_pseudonym is not None:
            claims[c.employee_claim] = str(employee_pseudonym)
        claims.update(extra_claims or {})
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers={"kid": self.kid})


def _new_private_key_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, content: bytes) -> None:
    """Create `path` with mode 600; if another process won the race, keep theirs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)


def build_verifier(settings: Settings) -> TokenVerifier:
    """The verifier the API uses: the OIDC issuer's JWKS, or the embedded key's."""
    if settings.auth.mode == "oidc":
        assert settings.auth.jwks_url is not None  # enforced by AuthSettings
        return TokenVerifier(settings.auth, JwksEndpointKeys(settings.auth.jwks_url))
    return TokenVerifier(settings.auth, StaticKeys(EmbeddedIssuer.load_or_create(settings).jwks()))

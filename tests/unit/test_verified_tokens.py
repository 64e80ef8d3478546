"""The API keeps the callers of verified tokens, never past what a full check would allow."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt import PyJWK

from api.auth import VERIFIED_RECHECK_S, InvalidToken, TokenVerifier
from core.settings import AuthSettings
from models.api import Role

ISSUER = "https://idp.example.test"
AUDIENCE = "rehabflow-api"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class WithdrawableKeys:
    """The issuer's one key, which the test can withdraw as a JWKS refresh would."""

    def __init__(self) -> None:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
        self.key: PyJWK | None = PyJWK({**jwk, "kid": "k1", "alg": "RS256"})

    async def key_for(self, token: str) -> PyJWK:
        if self.key is None:
            raise InvalidToken("no signing key for this token")
        return self.key


def _token(**claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "coordinator-7",
        "iat": now,
        "exp": now + 300,
        "rehabflow_role": "coordinator",
        **claims,
    }
    return jwt.encode(payload, KEY, algorithm="RS256", headers={"kid": "k1"})


def _verifier(keys: WithdrawableKeys, clock: Any = time.time, leeway_s: int = 30) -> TokenVerifier:
    config = AuthSettings(
        mode="oidc",
        issuer=ISSUER,
        audience=AUDIENCE,
        jwks_url="https://idp.example.test/jwks",
        leeway_s=leeway_s,
    )
    return TokenVerifier(config, keys, clock=clock)


async def test_a_kept_token_is_refused_once_it_has_expired() -> None:
    verifier = _verifier(WithdrawableKeys(), leeway_s=0)
    expires = int(time.time()) + 1
    token = _token(exp=expires)

    assert (await verifier.verify(token)).role is Role.COORDINATOR
    # Until just past the token's own expiry.
    await asyncio.sleep(max(0.0, expires - time.time()) + 0.05)

    with pytest.raises(InvalidToken):
        await verifier.verify(token)


async def test_a_withdrawn_key_stops_its_kept_tokens_within_the_recheck_window() -> None:
    keys = WithdrawableKeys()
    now = [time.time()]
    verifier = _verifier(keys, clock=lambda: now[0])
    token = _token()
    await verifier.verify(token)

    keys.key = None
    # Within the window the kept caller still answers: this is the bound the README states.
    assert (await verifier.verify(token)).subject == "coordinator-7"
    now[0] += VERIFIED_RECHECK_S

    with pytest.raises(InvalidToken):
        await verifier.verify(token)


async def test_a_token_differing_by_one_character_is_checked_in_full() -> None:
    verifier = _verifier(WithdrawableKeys())
    token = _token()
    await verifier.verify(token)
    header, payload, signature = token.split(".")
    forged = ".".join(
        (header, payload, signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1])
    )

    with pytest.raises(InvalidToken):
        await verifier.verify(forged)

"""The API keeps the callers of verified tokens, never past what a full check would allow."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from jwt import PyJWK

from api.auth import VERIFIED_RECHECK_S, InvalidToken, TokenVerifier
from core.settings import AuthSettings
from models.api import Role
from tests.test_api_auth import AUDIENCE, ISSUER, Idp

PROVIDER = Idp()


class WithdrawableKeys:
    """The issuer's one key, which the test can withdraw as a JWKS refresh would."""

    def __init__(self) -> None:
        (jwk,) = PROVIDER.jwks()["keys"]
        self.key: PyJWK | None = PyJWK(jwk)

    async def key_for(self, token: str) -> PyJWK:
        if self.key is None:
            raise InvalidToken("no signing key for this token")
        return self.key


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
    token = PROVIDER.token(exp=expires)

    assert (await verifier.verify(token)).role is Role.COORDINATOR
    # Until just past the token's own expiry.
    await asyncio.sleep(max(0.0, expires - time.time()) + 0.05)

    with pytest.raises(InvalidToken):
        await verifier.verify(token)


async def test_a_withdrawn_key_stops_its_kept_tokens_within_the_recheck_window() -> None:
    keys = WithdrawableKeys()
    now = [time.time()]
    verifier = _verifier(keys, clock=lambda: now[0])
    token = PROVIDER.token()
    await verifier.verify(token)

    keys.key = None
    # Within the window the kept caller still answers: this is the bound the README states.
    assert (await verifier.verify(token)).subject == "okta|coordinator-7"
    now[0] += VERIFIED_RECHECK_S

    with pytest.raises(InvalidToken):
        await verifier.verify(token)


async def test_a_token_differing_by_one_character_is_checked_in_full() -> None:
    verifier = _verifier(WithdrawableKeys())
    token = PROVIDER.token()
    await verifier.verify(token)
    header, payload, signature = token.split(".")
    forged = ".".join(
        (header, payload, signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1])
    )

    with pytest.raises(InvalidToken):
        await verifier.verify(forged)

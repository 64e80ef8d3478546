"""Authentication against a real JWKS endpoint, and the limits every caller meets."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.auth import EmbeddedIssuer
from core.settings import ApiSettings, AuthSettings, Settings
from models.api import Role
from store.schema import Case, Employee
from tests.conftest import bearer

ISSUER = "https://idp.example.test/realms/rehab"
AUDIENCE = "rehabflow-api"


class Idp:
    """An identity provider's signing keys; its JWKS is served over HTTP by the test."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "idp-key-1"

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid=self.kid, alg="RS256", use="sig")
        return {"keys": [jwk]}

    def token(
        self, key: Any = None, kid: str | None = None, alg: str = "RS256", **claims: Any
    ) -> str:
        now = int(time.time())
        payload = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "okta|coordinator-7",
            "iat": now,
            "exp": now + 300,
            "rehabflow_role": "coordinator",
            "rehabflow_units": [],
            **claims,
        }
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(
            payload,
            key if key is not None else self.key,
            algorithm=alg,
            headers={"kid": kid or self.kid},
        )


@pytest_asyncio.fixture
async def idp() -> AsyncIterator[tuple[Idp, str]]:
    """The IdP's JWKS on 127.0.0.1 (a real HTTP server), stopped with the test."""
    provider = Idp()

    async def jwks(_: Any) -> JSONResponse:
        return JSONResponse(provider.jwks())

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Route("/jwks", jwks)]), log_level="warning", lifespan="off"
        )
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
        await asyncio.sleep(0.01)
    try:
        yield provider, f"http://127.0.0.1:{port}/jwks"
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest_asyncio.fixture
async def oidc_api(
    settings: Settings, time_skipping_env: WorkflowEnvironment, idp: tuple[Idp, str]
) -> AsyncIterator[httpx.AsyncClient]:
    oidc = settings.model_copy(
        update={
            "auth": AuthSettings(mode="oidc", issuer=ISSUER, audience=AUDIENCE, jwks_url=idp[1])
        }
    )
    app = create_app(oidc, temporal_client=time_skipping_env.client)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://rehabflow.test"
        ) as client:
            yield client


async def test_an_oidc_token_verified_against_the_issuers_jwks_is_accepted(
    oidc_api: httpx.AsyncClient,
    idp: tuple[Idp, str],
    unit_code: str,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    provider, _ = idp
    async with sessionmaker.begin() as session:
        employee = Employee(pseudonym=uuid.uuid4(), unit_code=unit_code)
        session.add(employee)
        await session.flush()
        session.add(
            Case(
                id=uuid.uuid4(),
                workflow_id=f"case-{uuid.uuid4()}",
                employee_pseudonym=employee.pseudonym,
                unit_code=unit_code,
                trigger="manager_concern",
                stage="identified",
                opened_at=datetime.now(UTC),
            )
        )
    token = provider.token(rehabflow_units=[unit_code])
    listed = await oidc_api.get("/api/v1/cases", headers=bearer(token))
    assert listed.status_code == 200, listed.text
    assert listed.json()["total"] == 1
    # The embedded "every unit" marker means nothing in a production token.
    wildcard = provider.token(rehabflow_units=["*"])
    assert (await oidc_api.get("/api/v1/cases", headers=bearer(wildcard))).json()["total"] == 0
    # Roles may come as a list, as many identity providers send them.
    as_list = provider.token(rehabflow_role=["offline_access", "coordinator"])
    assert (await oidc_api.get("/api/v1/cases", headers=bearer(as_list))).status_code == 200


def _hs256_with_public_key(p: Idp) -> str:
    # The classic algorithm-confusion forgery: HMAC keyed with the (public) RSA key.
    header = jwt.utils.base64url_encode(
        json.dumps({"alg": "HS256", "typ": "JWT", "kid": p.kid}).encode()
    )
    body = jwt.utils.base64url_encode(
        json.dumps(jwt.decode(p.token(), options={"verify_signature": False})).encode()
    )
    pem = p.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signature = hmac.new(pem, header + b"." + body, hashlib.sha256).digest()
    return (header + b"." + body + b"." + jwt.utils.base64url_encode(signature)).decode()


def _unsigned(p: Idp) -> str:
    claims = jwt.decode(p.token(), options={"verify_signature": False})
    return jwt.encode(claims, None, algorithm="none", headers={"kid": p.kid})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda p: p.token(aud="another-api"), id="wrong-audience"),
        pytest.param(lambda p: p.token(iss="https://evil.example"), id="wrong-issuer"),
        pytest.param(lambda p: p.token(exp=int(time.time()) - 3600), id="expired"),
        pytest.param(lambda p: p.token(exp=None), id="no-expiry"),
        pytest.param(lambda p: p.token(sub=None), id="no-subject"),
        pytest.param(
            lambda p: p.token(key=rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            id="signed-by-another-key",
        ),
        pytest.param(
            lambda p: p.token(
                key=rsa.generate_private_key(public_exponent=65537, key_size=2048), kid="unknown"
            ),
            id="unknown-kid",
        ),
        pytest.param(_hs256_with_public_key, id="hs256-with-the-public-key"),
        pytest.param(_unsigned, id="alg-none"),
        pytest.param(lambda p: "not.a.jwt", id="garbage"),
    ],
)
async def test_a_token_that_fails_any_check_is_401(
    oidc_api: httpx.AsyncClient, idp: tuple[Idp, str], forge: Any
) -> None:
    response = await oidc_api.get("/api/v1/cases", headers=bearer(forge(idp[0])))
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_valid_token_without_a_rehabflow_role_is_403(
    oidc_api: httpx.AsyncClient, idp: tuple[Idp, str]
) -> None:
    for role in ("superuser", ["coordinator", "manager"], None):
        response = await oidc_api.get(
            "/api/v1/cases", headers=bearer(idp[0].token(rehabflow_role=role))
        )
        assert response.status_code == 403, role


async def test_missing_or_malformed_credentials_are_401_and_probes_need_none(
    api: httpx.AsyncClient,
) -> None:
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic dXNlcjpwdw=="}):
        response = await api.get("/api/v1/cases", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert (await api.post(f"/api/v1/cases/{uuid.uuid4()}/close-case", json={})).status_code == 401
    assert (await api.get("/healthz")).status_code == 200
    assert (await api.get("/readyz")).status_code == 200


async def test_a_body_over_the_limit_is_413_before_parsing_even_when_chunked(
    settings: Settings, time_skipping_env: WorkflowEnvironment, coordinator_headers: dict[str, str]
) -> None:
    small = settings.model_copy(update={"api": ApiSettings(max_body_bytes=1000)})
    app = create_app(small, temporal_client=time_skipping_env.client)
    big = b'{"employee_ref": "' + b"1" * 5000 + b'"}'

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(big), 100):
            yield big[i : i + 100]

    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://rehabflow.test"
        ) as client:
            headers = {**coordinator_headers, "content-type": "application/json"}
            declared = await client.post("/api/v1/cases", content=big, headers=headers)
            assert declared.status_code == 413
            chunked = await client.post("/api/v1/cases", content=chunks(), headers=headers)
            assert chunked.status_code == 413
            assert "1111" not in chunked.text
            # Without a token it is still refused on size first: nothing reads it.
            anonymous = await client.post("/api/v1/cases", content=big)
            assert anonymous.status_code == 413


async def test_a_caller_over_its_rate_is_429_with_retry_after_and_others_are_unaffected(
    settings: Settings, time_skipping_env: WorkflowEnvironment, issuer: EmbeddedIssuer
) -> None:
    limited = settings.model_copy(
        update={"api": ApiSettings(rate_limit_per_minute=6, rate_limit_burst=3)}
    )
    app = create_app(limited, temporal_client=time_skipping_env.client)
    busy = bearer(issuer.mint(Role.MANAGER, subject="busy-manager", units=["U1"]))
    calm = bearer(issuer.mint(Role.MANAGER, subject="calm-manager", units=["U1"]))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://rehabflow.test"
        ) as client:
            codes = [
                (await client.get("/api/v1/cases", headers=busy)).status_code for _ in range(4)
            ]
            assert codes == [200, 200, 200, 429]
            refused = await client.get("/api/v1/cases", headers=busy)
            assert refused.status_code == 429
            assert 1 <= int(refused.headers["retry-after"]) <= 10
            assert (await client.get("/api/v1/cases", headers=calm)).status_code == 200


async def test_callers_without_a_valid_token_are_limited_by_their_address(
    settings: Settings, time_skipping_env: WorkflowEnvironment, issuer: EmbeddedIssuer
) -> None:
    limited = settings.model_copy(
        update={"api": ApiSettings(rate_limit_per_minute=6, rate_limit_burst=3)}
    )
    app = create_app(limited, temporal_client=time_skipping_env.client)
    guesses = [{}, {"Authorization": "Bearer not-a-token"}, bearer("x.y.z")]
    valid = bearer(issuer.mint(Role.MANAGER, subject="manager-at-home", units=["U1"]))

    def client(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://rehabflow.test")

    async with app.router.lifespan_context(app):
        async with client("203.0.113.7") as attacker, client("198.51.100.2") as other:
            codes = [
                (await attacker.get("/api/v1/cases", headers=guesses[i % 3])).status_code
                for i in range(5)
            ]
            assert codes == [401, 401, 401, 429, 429]
            refused = await attacker.post("/codec/session", data={"token": "guess"})
            assert refused.status_code == 429
            assert 1 <= int(refused.headers["retry-after"]) <= 10
            # Another address is not held back, and a verified caller has its own bucket.
            assert (await other.get("/api/v1/cases")).status_code == 401
            assert (await attacker.get("/api/v1/cases", headers=valid)).status_code == 200

"""The codec server the Temporal UI calls, and key rotation through the API and worker path."""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from google.protobuf import json_format
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.auth import EmbeddedIssuer
from core.codec import KEY_ID_METADATA, KeyRing, build_data_converter
from core.secrets import Secrets
from core.settings import SecuritySettings, Settings
from models.api import Role
from store.audit import audit_rows
from tests.conftest import bearer
from worker import build_worker

UI_ORIGIN = "http://127.0.0.1:8233"
PLAIN = {
    "payloads": [
        {
            "metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
            "data": base64.b64encode(json.dumps({"stage": "identified"}).encode()).decode(),
        }
    ]
}


async def test_codec_needs_a_token_of_a_role_that_may_decode(
    api: httpx.AsyncClient,
    issuer: EmbeddedIssuer,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    assert (await api.post("/codec/decode", json=PLAIN)).status_code == 401
    assert (await api.post("/codec/encode", json=PLAIN)).status_code == 401
    for role in (Role.MANAGER, Role.FK_OFFICER, Role.FHV, Role.EMPLOYEE, Role.HR_SYSTEM):
        token = bearer(issuer.mint(role, employee_pseudonym=uuid.uuid4()))
        assert (await api.post("/codec/decode", json=PLAIN, headers=token)).status_code == 403
    for role in (Role.COORDINATOR, Role.ADMIN):
        token = bearer(issuer.mint(role))
        encoded = await api.post("/codec/encode", json=PLAIN, headers=token)
        assert encoded.status_code == 200, encoded.text
        payload = encoded.json()["payloads"][0]
        assert base64.b64decode(payload["metadata"]["encoding"]) == b"binary/encrypted"
        assert b"identified" not in base64.b64decode(payload["data"])
        decoded = await api.post("/codec/decode", json=encoded.json(), headers=token)
        assert decoded.status_code == 200
        assert decoded.json() == PLAIN
    async with sessionmaker() as session:
        rows = [(r.role, r.what, r.allowed) for r in await audit_rows(session)]
    assert ("manager", "codec.decode", False) in rows
    assert ("coordinator", "codec.decode", True) in rows and ("admin", "codec.decode", True) in rows


async def test_codec_refuses_tampered_payloads_with_400(
    api: httpx.AsyncClient, issuer: EmbeddedIssuer
) -> None:
    token = bearer(issuer.mint(Role.COORDINATOR))
    encoded = (await api.post("/codec/encode", json=PLAIN, headers=token)).json()
    data = bytearray(base64.b64decode(encoded["payloads"][0]["data"]))
    data[-1] ^= 1
    encoded["payloads"][0]["data"] = base64.b64encode(bytes(data)).decode()
    response = await api.post("/codec/decode", json=encoded, headers=token)
    assert response.status_code == 400
    assert "failed authentication" in response.json()["detail"]


async def test_the_temporal_ui_origin_passes_cors_preflight_and_a_signed_in_browser_decodes(
    api: httpx.AsyncClient, issuer: EmbeddedIssuer
) -> None:
    preflight = await api.options(
        "/codec/decode",
        headers={
            "Origin": UI_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-namespace,authorization",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == UI_ORIGIN
    assert preflight.headers["access-control-allow-credentials"] == "true"
    other = await api.options(
        "/codec/decode",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in other.headers
    # The case API does not answer cross-origin browsers at all.
    api_preflight = await api.options(
        "/api/v1/cases", headers={"Origin": UI_ORIGIN, "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in api_preflight.headers

    manager = issuer.mint(Role.MANAGER)
    refused = await api.post("/codec/session", content=f"token={manager}")
    assert refused.status_code == 403
    signed_in = await api.post(
        "/codec/session",
        content=f"token={issuer.mint(Role.COORDINATOR)}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert signed_in.status_code == 204
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/codec" in cookie
    decoded = await api.post(
        "/codec/decode",
        json=(await api.post("/codec/encode", json=PLAIN)).json(),
        headers={"Origin": UI_ORIGIN, "X-Namespace": "default"},
    )
    assert decoded.status_code == 200
    assert decoded.headers["access-control-allow-origin"] == UI_ORIGIN
    assert decoded.json() == PLAIN


@pytest.fixture
def rotated_secrets(test_secrets: Secrets) -> Secrets:
    new = KeyRing.generate("rotated2").to_config()
    return dataclasses.replace(test_secrets, payload_keys=f"{new},{test_secrets.payload_keys}")


async def _client_with(env: WorkflowEnvironment, payload_keys: str) -> Client:
    config = env.client.config()
    config["data_converter"] = build_data_converter(KeyRing.from_config(payload_keys))
    return Client(**config)


async def test_after_key_rotation_old_cases_still_decode_in_worker_api_and_codec_server(
    settings: Settings,
    dev_env: WorkflowEnvironment,
    task_queue: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    unit_code: str,
    issuer: EmbeddedIssuer,
    test_secrets: Secrets,
    rotated_secrets: Secrets,
) -> None:
    coordinator = bearer(issuer.mint(Role.COORDINATOR, units=[unit_code]))

    async def stack(keys: str) -> AsyncIterator[httpx.AsyncClient]:
        # The dev server, which moves a dead worker's sticky tasks on to the new worker.
        client = await _client_with(dev_env, keys)
        app_settings = settings.model_copy(
            update={
                "security": SecuritySettings(
                    payload_keys=keys,
                    pin_encryption_keys=settings.security.pin_encryption_keys,
                    pin_lookup_key=settings.security.pin_lookup_key,
                )
            }
        )
        app = create_app(app_settings, temporal_client=client)
        async with build_worker(client, task_queue, sessionmaker), app.router.lifespan_context(app):
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://rehabflow.test"
            ) as http:
                yield http

    old_ring, new_ring = test_secrets.payload_keys, rotated_secrets.payload_keys
    body = {"employee_ref": "19811218-9876", "unit_code": unit_code, "trigger": "manager_concern"}
    async for http in stack(old_ring):
        created = await http.post("/api/v1/cases", json=body, headers=coordinator)
        assert created.status_code == 201, created.text
        old_case = created.json()["case_id"]

    async for http in stack(new_ring):
        # A fresh worker (empty cache) must replay the old history to take this action.
        consent = await http.post(
            f"/api/v1/cases/{old_case}/record-consent",
            json={"party": "fk", "given": True},
            headers=coordinator,
        )
        assert consent.status_code == 200, consent.text
        history = await dev_env.client.get_workflow_handle(
            f"case-{old_case}"
        ).fetch_history()
        key_ids = {
            p.metadata[KEY_ID_METADATA].decode()
            for p in _payloads(history.to_json_dict())
            if KEY_ID_METADATA in p.metadata
        }
        assert key_ids == {"test1", "rotated2"}
        # The codec server (the API under the new ring) decodes payloads of both keys.
        every = {
            "payloads": [json_format.MessageToDict(p) for p in _payloads(history.to_json_dict())]
        }
        decoded = await http.post(
            "/codec/decode", json=every, headers=bearer(issuer.mint(Role.ADMIN))
        )
        assert decoded.status_code == 200, decoded.text
        assert all(
            base64.b64decode(p["metadata"]["encoding"]) != b"binary/encrypted"
            for p in decoded.json()["payloads"]
        )


def _payloads(node: object) -> list[Payload]:
    """Every encrypted payload in a history's JSON form."""
    found: list[Payload] = []
    if isinstance(node, dict):
        metadata = node.get("metadata")
        if isinstance(metadata, dict) and "encoding" in metadata and "data" in node:
            payload = json_format.ParseDict({"metadata": metadata, "data": node["data"]}, Payload())
            if payload.metadata["encoding"] == b"binary/encrypted":
                found.append(payload)
        for value in node.values():
            found += _payloads(value)
    elif isinstance(node, list):
        for value in node:
            found += _payloads(value)
    return found

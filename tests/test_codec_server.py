"""The codec server the Temporal UI calls, and key rotation through the API and worker path."""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.converter import WorkflowSerializationContext
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from api.auth import EmbeddedIssuer
from core.codec import KEY_ID_METADATA, WORKFLOW_ID_METADATA, KeyRing, build_data_converter
from core.secrets import Secrets
from core.settings import SecuritySettings, Settings
from models.api import Role
from store.audit import audit_rows
from store.schema import Unit
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
    coordinator = bearer(issuer.mint(Role.COORDINATOR))
    encoded = await api.post("/codec/encode", json=PLAIN, headers=coordinator)
    assert encoded.status_code == 200, encoded.text
    payload = encoded.json()["payloads"][0]
    assert base64.b64decode(payload["metadata"]["encoding"]) == b"binary/encrypted"
    assert b"identified" not in base64.b64decode(payload["data"])
    # Encrypted by the codec server for the CLI, it names no workflow: nobody decodes it here.
    unlabelled = await api.post("/codec/decode", json=encoded.json(), headers=coordinator)
    assert unlabelled.status_code == 200
    assert unlabelled.json() == encoded.json()
    async with sessionmaker() as session:
        rows = [(r.role, r.what, r.allowed) for r in await audit_rows(session)]
    assert ("manager", "codec.decode", False) in rows
    assert ("coordinator", "codec.decode", False) in rows


async def test_the_cli_query_without_arguments_encodes_for_coordinator_and_admin(
    api: httpx.AsyncClient, issuer: EmbeddedIssuer
) -> None:
    # `temporal workflow query --codec-endpoint ...` sends `{}` when the query takes nothing.
    for role in (Role.COORDINATOR, Role.ADMIN):
        answer = await api.post("/codec/encode", json={}, headers=bearer(issuer.mint(role)))
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"payloads": []}
    # Encrypting real input means acting on a case: not the admin's to do.
    refused = await api.post("/codec/encode", json=PLAIN, headers=bearer(issuer.mint(Role.ADMIN)))
    assert refused.status_code == 403


async def _labelled(secrets: Secrets, workflow_id: str, value: object) -> dict[str, Any]:
    """A payload as the worker writes it for `workflow_id`, in the codec protocol's JSON."""
    converter = build_data_converter(KeyRing.from_config(secrets.payload_keys)).with_context(
        WorkflowSerializationContext(namespace="default", workflow_id=workflow_id)
    )
    [payload] = await converter.encode([value])
    return {"payloads": [json_format.MessageToDict(payload)]}


async def test_codec_refuses_tampered_payloads_with_400(
    api: httpx.AsyncClient, issuer: EmbeddedIssuer, test_secrets: Secrets
) -> None:
    token = bearer(issuer.mint(Role.COORDINATOR))
    encoded = await _labelled(test_secrets, "notification-dispatcher", {"batch": 1})
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
    encoded = (await api.post("/codec/encode", json=PLAIN)).json()
    decoded = await api.post(
        "/codec/decode", json=encoded, headers={"Origin": UI_ORIGIN, "X-Namespace": "default"}
    )
    assert decoded.status_code == 200
    assert decoded.headers["access-control-allow-origin"] == UI_ORIGIN
    assert decoded.json() == encoded  # unlabelled: the browser session gets nothing decoded


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
        history = await dev_env.client.get_workflow_handle(f"case-{old_case}").fetch_history()
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
        decoded = await http.post("/codec/decode", json=every, headers=coordinator)
        assert decoded.status_code == 200, decoded.text
        assert all(
            base64.b64decode(p["metadata"]["encoding"]) != b"binary/encrypted"
            for p in decoded.json()["payloads"]
        )


async def test_a_coordinator_decodes_only_the_payloads_of_cases_of_own_units(
    api: httpx.AsyncClient,
    worker: Worker,
    time_skipping_env: WorkflowEnvironment,
    issuer: EmbeddedIssuer,
    sessionmaker: async_sessionmaker[AsyncSession],
    unit_code: str,
    test_secrets: Secrets,
    started_cases: list[str],
) -> None:
    other_unit = f"B{uuid.uuid4().hex[:6].upper()}"
    async with sessionmaker.begin() as session:
        session.add(Unit(code=other_unit, name="Unit B"))
    coordinator_a = bearer(issuer.mint(Role.COORDINATOR, subject="coord-a", units=[unit_code]))
    coordinator_b = bearer(issuer.mint(Role.COORDINATOR, subject="coord-b", units=[other_unit]))
    created = await api.post(
        "/api/v1/cases",
        json={
            "employee_ref": "19811218-9876",
            "unit_code": other_unit,
            "trigger": "manager_concern",
        },
        headers=coordinator_b,
    )
    assert created.status_code == 201, created.text
    case_b = created.json()["case_id"]
    started_cases.append(f"case-{case_b}")
    await api.post(
        f"/api/v1/cases/{case_b}/record-consent",
        json={"party": "fk", "given": True},
        headers=coordinator_b,
    )
    history = await time_skipping_env.client.get_workflow_handle(f"case-{case_b}").fetch_history()
    payloads = _payloads(history.to_json_dict())
    assert payloads and all(
        p.metadata[WORKFLOW_ID_METADATA] == f"case-{case_b}".encode() for p in payloads
    )
    body = {"payloads": [json_format.MessageToDict(p) for p in payloads]}

    as_a = await api.post("/codec/decode", json=body, headers=coordinator_a)
    as_admin = await api.post("/codec/decode", json=body, headers=bearer(issuer.mint(Role.ADMIN)))
    as_b = await api.post("/codec/decode", json=body, headers=coordinator_b)

    assert as_a.status_code == as_admin.status_code == as_b.status_code == 200
    assert as_a.json() == body and as_admin.json() == body  # still encrypted
    assert all(
        base64.b64decode(p["metadata"]["encoding"]) != b"binary/encrypted"
        for p in as_b.json()["payloads"]
    )
    # An operations workflow's payloads (team slots, dispatch batches) are the admin's to read.
    team = await _labelled(test_secrets, "meeting-team-T1", {"slots": 2})
    as_admin_team = await api.post(
        "/codec/decode", json=team, headers=bearer(issuer.mint(Role.ADMIN))
    )
    assert base64.b64decode(as_admin_team.json()["payloads"][0]["metadata"]["encoding"]) == (
        b"json/plain"
    )
    async with sessionmaker() as session:
        rows = {
            (r.subject, str(r.case_id), r.allowed)
            for r in await audit_rows(session)
            if r.what == "codec.decode"
        }
    assert ("coord-a", case_b, False) in rows and ("coord-b", case_b, True) in rows


async def test_a_codec_less_update_is_refused_and_changes_nothing(
    api: httpx.AsyncClient,
    worker: Worker,
    time_skipping_env: WorkflowEnvironment,
    coordinator_headers: dict[str, str],
    unit_code: str,
    started_cases: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    created = await api.post(
        "/api/v1/cases",
        json={
            "employee_ref": "19811218-9876",
            "unit_code": unit_code,
            "trigger": "manager_concern",
        },
        headers=coordinator_headers,
    )
    assert created.status_code == 201, created.text
    case_id = created.json()["case_id"]
    started_cases.append(f"case-{case_id}")
    # What `temporal workflow update execute --name close_case --input '{...}'` sends.
    config = time_skipping_env.client.config()
    config["data_converter"] = build_data_converter(None)
    codec_less = Client(**config)

    with pytest.raises(WorkflowUpdateFailedError):
        await codec_less.get_workflow_handle(f"case-{case_id}").execute_update(
            "close_case", {"outcome": "other"}
        )
    await codec_less.get_workflow_handle(f"case-{case_id}").signal(
        "absence_news", {"key": "x", "sick_start": "2026-01-01", "spell_start": "2026-01-01"}
    )

    case = await api.get(f"/api/v1/cases/{case_id}", headers=coordinator_headers)
    assert case.json()["stage"] == "identified"
    timeline = await api.get(f"/api/v1/cases/{case_id}/timeline", headers=coordinator_headers)
    kinds = [e["kind"] for e in timeline.json()["entries"]]
    assert "case_closed" not in kinds and "sick_leave_set" not in kinds
    assert "refused an unencrypted payload" in caplog.text
    # The case still takes the coordinator's own actions.
    closed = await api.post(
        f"/api/v1/cases/{case_id}/close-case",
        json={"outcome": "other"},
        headers=coordinator_headers,
    )
    assert closed.status_code == 200, closed.text


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

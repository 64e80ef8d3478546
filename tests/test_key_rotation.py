"""`starter.py gen-keys` and rotation: what was encrypted before a rotation still decrypts.

Keys come from the command itself (run as the operator runs it), the payloads from a real
Temporal server's history, the identity numbers and contacts from the record store.
"""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
import uuid
from contextlib import redirect_stdout
from datetime import date
from unittest import mock

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

import starter
from core.codec import KEY_ID_METADATA, KeyRing, build_data_converter
from core.identity import IdentityProtector, parse_personnummer
from core.keys import LOOKUP_KEY_ENV, PAYLOAD_KEYS_ENV, PIN_KEYS_ENV
from store.contacts import ContactProtector, set_employee_contact
from store.employees import pseudonym_for
from store.schema import Employee, EmployeeContact
from tests.conftest import ROOT

PIN = parse_personnummer("19811218-9876", today=date(2026, 11, 30))


def _starter(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("REHABFLOW_")}
    return subprocess.run(
        [sys.executable, "starter.py", *args],
        cwd=ROOT,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )


def _gen_keys(env: dict[str, str] | None = None, *flags: str) -> dict[str, str]:
    """`starter.py gen-keys`, in process (the same entry point, without an interpreter start)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("REHABFLOW_")}
    out = io.StringIO()
    with mock.patch.dict(os.environ, {**base, **(env or {})}, clear=True), redirect_stdout(out):
        assert starter.main(["gen-keys", *flags]) == 0
    return dict(line.split("=", 1) for line in out.getvalue().splitlines())


def test_gen_keys_prints_three_fresh_usable_keys_each_time() -> None:
    first, second = _gen_keys(), _gen_keys()
    assert set(first) == {PAYLOAD_KEYS_ENV, PIN_KEYS_ENV, LOOKUP_KEY_ENV}
    for name in (PAYLOAD_KEYS_ENV, PIN_KEYS_ENV):
        ring = KeyRing.from_config(first[name])
        assert len(ring.keys) == 1
        assert first[name] != second[name]
    assert len(base64.urlsafe_b64decode(first[LOOKUP_KEY_ENV])) == 32
    # The lookup key of a fresh installation works with the identity protector.
    IdentityProtector(KeyRing.from_config(first[PIN_KEYS_ENV]), b"x" * 32)


async def _start_parked(client: Client, task_queue: str, value: str) -> str:
    """A workflow nobody polls for: its input payload stays in the history as written."""
    workflow_id = f"rotation-{uuid.uuid4()}"
    await client.start_workflow(
        "ParkedForKeyRotation", value, id=workflow_id, task_queue=task_queue
    )
    return workflow_id


async def test_payloads_written_before_a_rotation_decode_after_it(
    dev_env: WorkflowEnvironment, task_queue: str
) -> None:
    before = _gen_keys()
    after = _gen_keys(before, "--rotate")
    old_ring = KeyRing.from_config(before[PAYLOAD_KEYS_ENV])
    new_ring = KeyRing.from_config(after[PAYLOAD_KEYS_ENV])
    assert new_ring.active_key_id != old_ring.active_key_id
    assert set(old_ring.keys) < set(new_ring.keys)
    assert after[LOOKUP_KEY_ENV] == before[LOOKUP_KEY_ENV]

    target = dev_env.client.service_client.config.target_host
    old_client = await Client.connect(target, data_converter=build_data_converter(old_ring))
    new_client = await Client.connect(target, data_converter=build_data_converter(new_ring))
    old_id = await _start_parked(old_client, task_queue, "written under the old key")
    new_id = await _start_parked(new_client, task_queue, "written under the new key")
    try:
        for workflow_id, expected, key_id in (
            (old_id, "written under the old key", old_ring.active_key_id),
            (new_id, "written under the new key", new_ring.active_key_id),
        ):
            history = await new_client.get_workflow_handle(workflow_id).fetch_history()
            started = next(
                e
                for e in history.events
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
            )
            [raw] = started.workflow_execution_started_event_attributes.input.payloads
            assert raw.metadata[KEY_ID_METADATA].decode() == key_id
            [decoded] = await new_client.data_converter.decode([raw], [str])
            assert decoded == expected
    finally:
        for workflow_id in (old_id, new_id):
            await new_client.get_workflow_handle(workflow_id).terminate()


async def test_identity_numbers_and_contacts_survive_rotation_rekey_and_a_new_lookup_key(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str, unit_code: str
) -> None:
    before = _gen_keys()
    old_ring = KeyRing.from_config(before[PIN_KEYS_ENV])
    old_lookup = base64.urlsafe_b64decode(before[LOOKUP_KEY_ENV])
    old_identity = IdentityProtector(old_ring, old_lookup)
    async with sessionmaker.begin() as session:
        pseudonym = await pseudonym_for(session, old_identity, PIN, unit_code)
        await set_employee_contact(
            session,
            ContactProtector(old_ring),
            employee_pseudonym=pseudonym,
            channel="email",
            address="anna@example.org",
        )

    after = _gen_keys(before, "--rotate")
    new_ring = KeyRing.from_config(after[PIN_KEYS_ENV])
    new_lookup = _gen_keys()[LOOKUP_KEY_ENV]
    async with sessionmaker() as session:
        token = await session.scalar(select(Employee.pin_encrypted))
    assert token is not None
    # Rotated: the ring still reads the old token.
    assert IdentityProtector(new_ring, old_lookup).decrypt(token) == PIN

    _starter(
        "rekey-records",
        env={
            **after,
            "REHABFLOW_TEMPORAL__ADDRESS": "127.0.0.1:1",  # not used by rekey-records
            "REHABFLOW_DATABASE__URL": database_url,
            "REHABFLOW_NEW_PIN_LOOKUP_KEY": new_lookup,
        },
    )
    # Re-encrypted: a ring of only the new key reads everything; the old key can go.
    only_new = KeyRing(
        keys={new_ring.active_key_id: new_ring.keys[new_ring.active_key_id]},
        active_key_id=new_ring.active_key_id,
    )
    new_identity = IdentityProtector(only_new, base64.urlsafe_b64decode(new_lookup))
    async with sessionmaker() as session:
        employee = (await session.scalars(select(Employee))).one()
        contact = (await session.scalars(select(EmployeeContact))).one()
    assert employee.pin_encrypted is not None
    assert new_identity.decrypt(employee.pin_encrypted) == PIN
    assert ContactProtector(only_new).decrypt(contact.address_encrypted) == "anna@example.org"
    # Rehashed: the same number finds the same pseudonym under the new lookup key only.
    assert employee.pin_lookup == new_identity.lookup_hash(PIN)
    async with sessionmaker.begin() as session:
        assert await pseudonym_for(session, new_identity, PIN, unit_code) == pseudonym

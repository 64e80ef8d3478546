"""No personal data in Temporal: ids, search attributes, memo, summary and every payload.

Cases are opened and acted on through the API with a canary personal identity number;
then everything Temporal holds for the test's task queue is exported through the client,
raw (no codec), and searched for the canary in each of its written forms.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload

from tests.conftest import DevStack

CANARY_PHRASE = "Canary Kanarie utbränd misshandlad"


def _luhn_pin(yymmdd: str, serial: str) -> str:
    digits = yymmdd + serial
    total = 0
    for i, d in enumerate(digits):
        product = int(d) * (2 if i % 2 == 0 else 1)
        total += product // 10 + product % 10
    return f"19{yymmdd}-{serial}{(10 - total % 10) % 10}"


PATCH_MARKER = "core_patch"
LOCAL_ACTIVITY_MARKER = "core_local_activity"
# What the SDK's core writes, uncoded, as a local activity marker's `data` (its `result` is
# encoded by our codec like any other payload).
LOCAL_ACTIVITY_FACTS = {
    "seq",
    "attempt",
    "activity_id",
    "activity_type",
    "complete_time",
    "backoff",
    "original_schedule_time",
    "activation_index",
}
CANARY_PIN = _luhn_pin("730419", "471")
CANARY_FORMS = [
    CANARY_PIN,
    CANARY_PIN.replace("-", ""),
    CANARY_PIN[2:],
    CANARY_PIN[2:].replace("-", ""),
    CANARY_PHRASE,
    "Kanarie",
]


def _walk_payloads(message: Message, path: str = "") -> Iterator[tuple[str, Payload]]:
    if isinstance(message, Payload):
        yield path, message
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            items = list(value.values())
        elif isinstance(value, Message):
            items = [value]
        else:
            items = list(value)
        for item in items:
            if isinstance(item, Message):
                yield from _walk_payloads(item, f"{path}.{field.name}")


def _assert_no_canary(blob: bytes | str, where: str) -> None:
    data = blob.encode() if isinstance(blob, str) else blob
    for form in CANARY_FORMS:
        assert form.encode() not in data, f"{form!r} found in {where}"


async def test_nothing_temporal_holds_contains_personal_data_and_every_payload_is_encrypted(
    dev_stack: DevStack, task_queue: str, unit_code: str, coordinator_headers: dict[str, str]
) -> None:
    client, api = dev_stack.client, dev_stack.api
    # There is no free-text field anywhere; one smuggled in is refused, not stored.
    smuggled = await api.post(
        "/api/v1/cases",
        json={
            "employee_ref": CANARY_PIN,
            "unit_code": unit_code,
            "trigger": "manager_concern",
            "note": CANARY_PHRASE,
        },
        headers=coordinator_headers,
    )
    assert smuggled.status_code == 422 and CANARY_PHRASE not in smuggled.text
    created = await api.post(
        "/api/v1/cases",
        json={
            "employee_ref": CANARY_PIN,
            "unit_code": unit_code,
            "trigger": "manager_concern",
        },
        headers=coordinator_headers,
    )
    assert created.status_code == 201, created.text
    case = f"/api/v1/cases/{created.json()['case_id']}"
    starts = datetime.now(UTC) + timedelta(days=3)
    for action, body in (
        ("record-consent", {"party": "fk", "given": True}),
        (
            "book-joint-meeting",
            {
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=1)).isoformat(),
                "invite": ["fk"],
            },
        ),
        ("set-sick-leave", {"start": "2026-10-01", "expected_end": "2027-03-01"}),
        (
            "record-meeting-outcome",
            {"attended": ["employee"], "reinforced_support": True, "notes": CANARY_PHRASE},
        ),
    ):
        response = await api.post(f"{case}/{action}", json=body, headers=coordinator_headers)
        assert response.status_code in (200, 409, 422), response.text
        assert CANARY_PHRASE not in response.text

    executions = []
    for _ in range(50):  # visibility is eventually consistent
        executions = [e async for e in client.list_workflows(f"TaskQueue = '{task_queue}'")]
        if executions:
            break
        await asyncio.sleep(0.2)
    assert executions

    checked = 0
    seen: set[str] = set()
    for execution in executions:
        _assert_no_canary(execution.id, "a workflow id")
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        description = await handle.describe()
        raw = description.raw_description
        _assert_no_canary(raw.SerializeToString(), f"describe({execution.id})")
        for path, payload in _walk_payloads(raw):
            seen.add(path)
            if ".search_attributes" in path:
                continue  # not encoded by any codec; searched for the canary above
            assert payload.metadata["encoding"] == b"binary/encrypted", path
            checked += 1
        history = await handle.fetch_history()
        for event in history.events:
            _assert_no_canary(event.SerializeToString(), f"history of {execution.id}")
            marker = event.marker_recorded_event_attributes.marker_name
            for path, payload in _walk_payloads(event):
                seen.add(path)
                if ".search_attributes" in path or path.endswith(".header.fields"):
                    continue
                if marker == PATCH_MARKER and path.endswith(".details.payloads"):
                    # The SDK writes `workflow.patched` markers itself, uncoded: they
                    # hold the patch id (a constant of our code) and were searched above.
                    continue
                if (
                    marker == LOCAL_ACTIVITY_MARKER
                    and payload.metadata["encoding"] == b"json/plain"
                ):
                    # A local activity's bookkeeping: type, attempt and times only.
                    assert set(json.loads(payload.data)) <= LOCAL_ACTIVITY_FACTS, path
                    continue
                assert payload.metadata["encoding"] == b"binary/encrypted", (
                    f"{execution.id} event {event.event_id}{path}"
                )
                checked += 1
    assert checked > 10
    # Static summaries and details (user metadata) were among the payloads checked.
    assert any("user_metadata" in path for path in seen), sorted(seen)

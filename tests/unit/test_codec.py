"""Payload encryption: nothing readable reaches Temporal, rotation keeps history readable."""

from __future__ import annotations

import base64
import zlib

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    WorkflowSerializationContext,
)
from temporalio.exceptions import ApplicationError

from core.codec import (
    COMPRESSION_METADATA,
    KEY_ID_METADATA,
    KEY_ID_METADATA_LONG,
    MAX_PLAINTEXT_BYTES,
    NONCE_BYTES,
    WORKFLOW_ID_METADATA,
    WORKFLOW_ID_METADATA_LONG,
    DecryptionError,
    EncryptionCodec,
    KeyRing,
    build_data_converter,
    payload_workflow_id,
    payloads_from_json,
    payloads_to_json,
)

CANARY = "CANARY-depression-190101-1234"


class ScreeningNote(BaseModel):
    case_id: str
    note: str


def _ring(*key_ids: str) -> KeyRing:
    """A ring with fresh keys; the first id is active."""
    keys = {key_id: KeyRing.generate(key_id).keys[key_id] for key_id in key_ids}
    return KeyRing(keys=keys, active_key_id=key_ids[0])


async def test_encoded_payload_hides_model_content_and_round_trips() -> None:
    converter = build_data_converter(_ring("k1"))
    note = ScreeningNote(case_id="c-1", note=CANARY)

    [payload] = await converter.encode([note])

    assert payload.metadata["encoding"] == b"binary/encrypted"
    assert payload.metadata[KEY_ID_METADATA] == b"k1"
    assert CANARY.encode() not in payload.SerializeToString()
    assert await converter.decode([payload], [ScreeningNote]) == [note]


async def test_same_value_encrypts_differently_each_time() -> None:
    converter = build_data_converter(_ring("k1"))

    first, second = await converter.encode([CANARY, CANARY])

    assert first.data != second.data


async def test_payloads_from_the_old_key_still_decode_after_rotation() -> None:
    old_ring = _ring("k1")
    [old_payload] = await build_data_converter(old_ring).encode([CANARY])
    rotated = KeyRing(
        keys={"k2": KeyRing.generate("k2").keys["k2"], **old_ring.keys}, active_key_id="k2"
    )
    converter = build_data_converter(rotated)

    [new_payload] = await converter.encode([CANARY])

    assert await converter.decode([old_payload], [str]) == [CANARY]
    assert new_payload.metadata[KEY_ID_METADATA] == b"k2"
    assert await converter.decode([new_payload], [str]) == [CANARY]


async def test_unknown_key_id_fails_closed() -> None:
    [payload] = await build_data_converter(_ring("retired")).encode([CANARY])

    with pytest.raises(DecryptionError, match="'retired', not in the key ring"):
        await build_data_converter(_ring("k2")).decode([payload], [str])


async def test_tampered_ciphertext_fails_closed() -> None:
    converter = build_data_converter(_ring("k1"))
    [payload] = await converter.encode([CANARY])
    flipped = bytes([payload.data[-1] ^ 0x01])
    tampered = Payload(metadata=payload.metadata, data=payload.data[:-1] + flipped)

    with pytest.raises(DecryptionError, match="failed authentication"):
        await converter.decode([tampered], [str])


async def test_relabelling_the_key_id_is_detected() -> None:
    converter = build_data_converter(_ring("k2", "k1"))
    [payload] = await converter.encode([CANARY])
    relabelled = Payload(metadata={**payload.metadata, KEY_ID_METADATA: b"k1"}, data=payload.data)

    with pytest.raises(DecryptionError, match="failed authentication"):
        await converter.decode([relabelled], [str])


async def test_encrypted_payload_without_key_id_fails_closed() -> None:
    converter = build_data_converter(_ring("k1"))
    [payload] = await converter.encode([CANARY])
    stripped = Payload(metadata={"encoding": payload.metadata["encoding"]}, data=payload.data)

    with pytest.raises(DecryptionError, match="no key id"):
        await converter.decode([stripped], [str])


async def test_a_plaintext_payload_is_refused_not_read(caplog: pytest.LogCaptureFixture) -> None:
    # What a client without the codec sends (`temporal workflow update ... --input '{}'`).
    [plain] = await build_data_converter(None).encode([{"outcome": "other"}])

    with pytest.raises(Exception, match="refused-unencrypted"):
        await build_data_converter(_ring("k1")).decode([plain], [dict])
    assert "refused an unencrypted payload" in caplog.text


async def test_payloads_are_labelled_with_their_workflow_when_the_sdk_says_which() -> None:
    codec = EncryptionCodec(_ring("k1")).with_context(
        WorkflowSerializationContext(namespace="default", workflow_id="case-123")
    )

    [payload] = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b"1")])

    assert payload_workflow_id(payload) == "case-123"
    assert await codec.decode([payload]) == [
        Payload(metadata={"encoding": b"json/plain"}, data=b"1")
    ]


async def test_a_kept_converter_labels_each_workflow_as_its_own_however_they_interleave() -> None:
    converter = build_data_converter(_ring("k1"))

    def of(workflow_id: str) -> DataConverter:
        return converter.with_context(
            WorkflowSerializationContext(namespace="default", workflow_id=workflow_id)
        )

    labels = []
    for workflow_id in ("case-a", "case-b", "case-a", "case-b"):
        [payload] = await of(workflow_id).encode([CANARY])
        labels.append(payload_workflow_id(payload))
        assert await of(workflow_id).decode([payload], [str]) == [CANARY]

    assert labels == ["case-a", "case-b", "case-a", "case-b"]
    # Each workflow's converter is made once and then kept.
    assert of("case-a") is of("case-a")
    assert of("case-a") is not of("case-b")


async def test_a_workflow_and_its_activities_share_one_kept_converter_and_label() -> None:
    converter = build_data_converter(_ring("k1"))
    of_workflow = converter.with_context(
        WorkflowSerializationContext(namespace="default", workflow_id="case-a")
    )

    def of_activity(activity_id: str) -> DataConverter:
        return converter.with_context(
            ActivitySerializationContext(
                namespace="default",
                workflow_id="case-a",
                workflow_type="RehabCaseWorkflow",
                activity_type="record_change",
                activity_id=activity_id,
                activity_task_queue="rehab",
                is_local=True,
            )
        )

    [payload] = await of_activity("7").encode([CANARY])

    assert payload_workflow_id(payload) == "case-a"
    assert await of_workflow.decode([payload], [str]) == [CANARY]
    # Not one converter per activity: each activity id is new, the workflow is not.
    assert of_activity("7") is of_activity("8") is of_workflow


async def test_relabelling_a_payload_for_another_workflow_is_detected() -> None:
    codec = EncryptionCodec(_ring("k1")).with_context(
        WorkflowSerializationContext(namespace="default", workflow_id="case-of-unit-b")
    )
    [payload] = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b"1")])
    payload.metadata[WORKFLOW_ID_METADATA] = b"case-of-unit-a"

    with pytest.raises(DecryptionError, match="failed authentication"):
        await codec.decode([payload])


def _case_like_json(count: int) -> Payload:
    """JSON shaped like a case's record change: the same keys over and over."""
    rows = ",".join(
        f'{{"kind":"follow_up_{i}","due_on":"2026-12-{1 + i % 28:02d}","status":"pending"}}'
        for i in range(count)
    )
    return Payload(metadata={"encoding": b"json/plain"}, data=f"[{rows}]".encode())


async def test_large_payloads_are_compressed_before_encryption_and_round_trip() -> None:
    codec = EncryptionCodec(_ring("k1"))
    plain = _case_like_json(40)

    [payload] = await codec.encode([plain])

    assert payload.metadata[COMPRESSION_METADATA] == b"zlib"
    # History holds a third or less of the JSON, still unreadable.
    assert len(payload.data) < len(plain.SerializeToString()) / 3
    assert b"follow_up" not in payload.data
    assert await codec.decode([payload]) == [plain]


async def test_compact_payloads_name_their_metadata_with_one_letter() -> None:
    codec = EncryptionCodec(_ring("k1")).with_context(
        WorkflowSerializationContext(namespace="default", workflow_id="case-123")
    )

    [payload] = await codec.encode([_case_like_json(40)])

    assert set(payload.metadata) == {"encoding", "k", "w", "z"}


async def test_with_compaction_off_payloads_are_as_older_versions_write_them() -> None:
    """The rollout switch: long metadata names and no compression, as before compaction."""
    ring = _ring("k1")
    plain = _case_like_json(40)
    codec = EncryptionCodec(ring, compact=False).with_context(
        WorkflowSerializationContext(namespace="default", workflow_id="case-123")
    )

    [payload] = await codec.encode([plain])

    assert set(payload.metadata) == {"encoding", KEY_ID_METADATA_LONG, WORKFLOW_ID_METADATA_LONG}
    assert payload_workflow_id(payload) == "case-123"
    assert await EncryptionCodec(ring).decode([payload]) == [plain]


async def test_an_older_payload_cannot_be_given_a_second_label() -> None:
    ring = _ring("k1")
    codec = EncryptionCodec(ring, compact=False).with_context(
        WorkflowSerializationContext(namespace="default", workflow_id="case-of-unit-b")
    )
    [payload] = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b"1")])
    assert await EncryptionCodec(ring).decode([payload])  # as written, it decrypts
    payload.metadata[WORKFLOW_ID_METADATA] = b"case-of-unit-a"

    # The codec server would check unit A's need-to-know, and decryption then fails.
    assert payload_workflow_id(payload) == "case-of-unit-a"
    with pytest.raises(DecryptionError, match="failed authentication"):
        await EncryptionCodec(ring).decode([payload])


async def test_small_payloads_are_not_compressed() -> None:
    codec = EncryptionCodec(_ring("k1"))

    [payload] = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b"1")])

    assert COMPRESSION_METADATA not in payload.metadata


async def test_stripping_the_compression_mark_is_detected() -> None:
    codec = EncryptionCodec(_ring("k1"))
    [payload] = await codec.encode([_case_like_json(40)])
    del payload.metadata[COMPRESSION_METADATA]

    with pytest.raises(DecryptionError, match="failed authentication"):
        await codec.decode([payload])


async def test_a_payload_that_inflates_past_the_bound_is_refused() -> None:
    ring = _ring("k1")
    bomb = zlib.compress(b"0" * (MAX_PLAINTEXT_BYTES + 1))
    metadata = {
        "encoding": b"binary/encrypted",
        KEY_ID_METADATA: b"k1",
        COMPRESSION_METADATA: b"zlib",
    }
    nonce = b"\x02" * NONCE_BYTES
    sealed = AESGCM(ring.keys["k1"]).encrypt(nonce, bomb, b"k1\x00compression:zlib")

    with pytest.raises(DecryptionError, match="decompresses past"):
        await EncryptionCodec(ring).decode([Payload(metadata=metadata, data=nonce + sealed)])


async def test_payloads_encrypted_before_compression_existed_still_decode() -> None:
    ring = _ring("k1")
    plain = _case_like_json(40)
    # The format of every payload written before compression: the serialized payload
    # itself, with the key id and the label as associated data.
    nonce = b"\x01" * NONCE_BYTES
    ciphertext = AESGCM(ring.keys["k1"]).encrypt(nonce, plain.SerializeToString(), b"k1\x00case-9")
    old = Payload(
        metadata={
            "encoding": b"binary/encrypted",
            KEY_ID_METADATA_LONG: b"k1",
            WORKFLOW_ID_METADATA_LONG: b"case-9",
        },
        data=nonce + ciphertext,
    )

    assert await EncryptionCodec(ring).decode([old]) == [plain]


async def test_failure_message_and_stack_trace_are_encrypted() -> None:
    converter = build_data_converter(_ring("k1"))
    try:
        raise ApplicationError(CANARY, type="ScreeningRejected", non_retryable=True)
    except ApplicationError as err:  # raised so the failure carries a real stack trace
        error = err
    failure = Failure()

    await converter.encode_failure(error, failure)

    assert CANARY.encode() not in failure.SerializeToString()
    assert failure.message == "Encoded failure"
    assert failure.encoded_attributes.metadata["encoding"] == b"binary/encrypted"
    decoded = await converter.decode_failure(failure)
    assert isinstance(decoded, ApplicationError)
    assert decoded.message == CANARY
    assert decoded.type == "ScreeningRejected"


async def test_converter_without_key_ring_leaves_payloads_readable() -> None:
    converter = build_data_converter(None)

    [payload] = await converter.encode([CANARY])

    assert payload.metadata["encoding"] == b"json/plain"
    assert converter.payload_codec is None


def test_key_ring_config_round_trips_with_active_key_first() -> None:
    ring = _ring("k2", "k1")

    parsed = KeyRing.from_config(ring.to_config())

    assert ring.to_config().startswith("k2:")
    assert parsed.active_key_id == "k2"
    assert dict(parsed.keys) == dict(ring.keys)


def test_key_ring_accepts_padded_base64url() -> None:
    key = bytes(range(32))
    padded = base64.urlsafe_b64encode(key).decode()

    assert padded.endswith("=")
    assert KeyRing.from_config(f"k1:{padded}").keys["k1"] == key


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ("k1:" + base64.urlsafe_b64encode(b"s3cret-short-key").decode(), "16 bytes"),
        ("k1:" + base64.urlsafe_b64encode(b"x" * 33).decode(), "33 bytes"),
        ("k1:not*base64", "not valid base64url"),
        ("k1", "form 'id:base64url-key'"),
        ("", "form 'id:base64url-key'"),
    ],
)
def test_invalid_key_ring_config_is_rejected_without_showing_the_key(
    config: str, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason) as exc_info:
        KeyRing.from_config(config)

    secret = config.partition(":")[2]
    if secret:
        assert secret not in str(exc_info.value)


def test_duplicate_key_id_is_rejected() -> None:
    one = KeyRing.generate("k1").to_config()

    with pytest.raises(ValueError, match="more than once"):
        KeyRing.from_config(f"{one},{one}")


def test_active_key_must_be_in_the_ring() -> None:
    with pytest.raises(ValueError, match="not in the key ring"):
        KeyRing(keys={"k1": bytes(32)}, active_key_id="k2")


def test_key_ring_repr_never_shows_key_material() -> None:
    ring = KeyRing(keys={"k1": b"\xab" * 32}, active_key_id="k1")

    assert "k1" in repr(ring)
    assert "xab" not in repr(ring)
    assert ring.to_config().partition(":")[2] not in repr(ring)


async def test_codec_server_json_round_trip_hides_and_restores_payloads() -> None:
    codec = EncryptionCodec(_ring("k1"))
    [plain] = await build_data_converter(None).encode([CANARY])
    body = {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in plain.metadata.items()},
                "data": base64.b64encode(plain.data).decode(),
            }
        ]
    }

    encoded = payloads_to_json(await codec.encode(payloads_from_json(body)))
    decoded = payloads_to_json(await codec.decode(payloads_from_json(encoded)))

    [encoded_payload] = encoded["payloads"]
    assert base64.b64decode(encoded_payload["metadata"]["encoding"]) == b"binary/encrypted"
    assert CANARY.encode() not in base64.b64decode(encoded_payload["data"])
    assert decoded == body


async def test_codec_server_returns_empty_list_for_no_payloads() -> None:
    codec = EncryptionCodec(_ring("k1"))

    assert payloads_to_json(await codec.decode(payloads_from_json({}))) == {"payloads": []}

"""AES-GCM encryption of every Temporal payload, a rotatable key ring, codec-server helpers."""

from __future__ import annotations

import base64
import binascii
import copy
import dataclasses
import functools
import logging
import os
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Self, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)

ENCODING_ENCRYPTED = b"binary/encrypted"
# What a plain (unencrypted) payload becomes on decoding: no payload converter knows this
# encoding, so a workflow refuses the update, drops the signal or fails the query that
# carried it, and nothing a codec-less client sent can change a case.
ENCODING_REFUSED = b"binary/refused-unencrypted"
# Metadata of an encrypted payload, in clear. Every byte of it is repeated in every payload
# of every history, so compact payloads (the default) use one-letter names; payloads written
# before, or with compaction off, use the long names, which are still read.
# The id of the key that encrypted the payload.
KEY_ID_METADATA = "k"
KEY_ID_METADATA_LONG = "encryption-key-id"
# The id of the workflow a payload belongs to: pseudonymous (`case-<uuid>`), so the codec
# server can check need-to-know before decrypting. It is authenticated as associated data,
# so relabelling a payload makes it fail to decrypt.
WORKFLOW_ID_METADATA = "w"
WORKFLOW_ID_METADATA_LONG = "rehabflow-workflow-id"
# "zlib" when the plaintext was compressed before encryption (ciphertext does not compress,
# so it must happen first); only compact payloads are. Authenticated like the label.
COMPRESSION_METADATA = "z"
ZLIB = b"zlib"
# Smaller payloads (a stage, an id) gain nothing from compression.
COMPRESS_FROM_BYTES = 200
# Temporal refuses payloads above 2 MiB; a decompressed payload larger than this is refused
# rather than inflated without bound.
MAX_PLAINTEXT_BYTES = 4 * 2**20

log = logging.getLogger(__name__)
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # the AES-GCM standard nonce; random per message is safe well below 2**32 uses

# Key ids travel in payload metadata and in the "id:key,id:key" config string, so keep them
# to characters that need no escaping in either.
_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class DecryptionError(Exception):
    """Ciphertext could not be decrypted; raised instead of ever returning unverified data."""


@dataclasses.dataclass(frozen=True)
class KeyRing:
    """Named AES-256 keys; `active_key_id` encrypts, every key in the ring decrypts."""

    keys: Mapping[str, bytes] = dataclasses.field(repr=False)  # repr must never show keys
    active_key_id: str

    def __post_init__(self) -> None:
        for key_id, key in self.keys.items():
            if not _KEY_ID.fullmatch(key_id):
                raise ValueError(
                    f"key id {key_id!r} must be 1-64 characters of letters, digits, '_', '.', '-'"
                )
            if len(key) != KEY_BYTES:
                # Report only the id and the length, never the key material.
                raise ValueError(f"key {key_id!r} is {len(key)} bytes, AES-256 needs {KEY_BYTES}")
        if self.active_key_id not in self.keys:
            raise ValueError(f"active key id {self.active_key_id!r} is not in the key ring")
        object.__setattr__(self, "keys", MappingProxyType(dict(self.keys)))

    @classmethod
    def from_config(cls, config: str) -> KeyRing:
        """Parse `"k2:<base64url key>,k1:<base64url key>"`; the first key is the active one."""
        keys: dict[str, bytes] = {}
        for position, entry in enumerate(config.split(","), start=1):
            key_id, sep, encoded = entry.strip().partition(":")
            if not sep or not key_id:
                raise ValueError(f"key ring entry {position} is not in the form 'id:base64url-key'")
            if key_id in keys:
                raise ValueError(f"key id {key_id!r} appears more than once in the key ring")
            keys[key_id] = _decode_key(key_id, encoded)
        return cls(keys=keys, active_key_id=next(iter(keys)))

    @classmethod
    def generate(cls, key_id: str) -> KeyRing:
        """A ring holding one fresh random key; prepend its config to an old ring to rotate."""
        return cls(
            keys={key_id: AESGCM.generate_key(bit_length=KEY_BYTES * 8)}, active_key_id=key_id
        )

    def to_config(self) -> str:
        """The `from_config` string, active key first."""
        ordered = [self.active_key_id, *(k for k in self.keys if k != self.active_key_id)]
        return ",".join(
            f"{key_id}:{base64.urlsafe_b64encode(self.keys[key_id]).decode().rstrip('=')}"
            for key_id in ordered
        )


def _decode_key(key_id: str, encoded: str) -> bytes:
    padded = encoded.strip() + "=" * (-len(encoded.strip()) % 4)
    try:
        return base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        # `from None`: the decoder's own message could quote part of the key.
        raise ValueError(f"key {key_id!r} is not valid base64url") from None


class EncryptionCodec(PayloadCodec, WithSerializationContext):
    """Encrypts whole payloads (data and metadata) so history holds no readable values.

    Payloads are labelled with the id of the workflow they belong to when the SDK tells the
    codec (its serialization context); payloads that arrive unencrypted are refused.
    """

    def __init__(
        self, key_ring: KeyRing, *, workflow_id: str | None = None, compact: bool = True
    ) -> None:
        super().__init__()
        self._compact = compact
        self._active_key_id = key_ring.active_key_id
        self._ciphers = {key_id: AESGCM(key) for key_id, key in key_ring.keys.items()}
        self._workflow_id = workflow_id

    def with_context(self, context: SerializationContext) -> EncryptionCodec:
        workflow_id = (
            context.workflow_id
            if isinstance(context, WorkflowSerializationContext | ActivitySerializationContext)
            else None
        )
        if workflow_id == self._workflow_id:
            return self
        labelled = copy.copy(self)  # shares the ciphers; only the label differs
        labelled._workflow_id = workflow_id
        return labelled

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        # Encryption is unconditional: DESIGN requires every payload to be encrypted.
        return [self._encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decode_one(p) for p in payloads]

    def _decode_one(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") == ENCODING_ENCRYPTED:
            return self._decrypt(payload)
        # A plain payload was sent by a client without the codec (the CLI or the UI typed
        # straight at Temporal): it bypassed login, roles and the audit. Fail closed.
        log.warning(
            "refused an unencrypted payload: a client without the codec tried to send input",
            extra={"workflow_id": self._workflow_id},
        )
        return Payload(metadata={"encoding": ENCODING_REFUSED})

    def _encrypt(self, payload: Payload) -> Payload:
        key_name, label_name = (
            (KEY_ID_METADATA, WORKFLOW_ID_METADATA)
            if self._compact
            else (KEY_ID_METADATA_LONG, WORKFLOW_ID_METADATA_LONG)
        )
        metadata = {"encoding": ENCODING_ENCRYPTED, key_name: self._active_key_id.encode()}
        if self._workflow_id:
            metadata[label_name] = self._workflow_id.encode()
        plaintext = payload.SerializeToString()
        if self._compact and len(plaintext) >= COMPRESS_FROM_BYTES:
            # JSON of cases, policies and changes shrinks to a third or less: smaller
            # histories for Temporal to write, replay and ship to the worker.
            compressed = zlib.compress(plaintext, 6)
            if len(compressed) < len(plaintext):
                plaintext = compressed
                metadata[COMPRESSION_METADATA] = ZLIB
        nonce = os.urandom(NONCE_BYTES)
        # Key id, label and compression are associated data: changing any makes it fail.
        ciphertext = self._ciphers[self._active_key_id].encrypt(
            nonce, plaintext, _associated_data(metadata[key_name], metadata)
        )
        return Payload(metadata=metadata, data=nonce + ciphertext)

    def _decrypt(self, payload: Payload) -> Payload:
        key_id_bytes = _either(payload.metadata, KEY_ID_METADATA, KEY_ID_METADATA_LONG)
        if key_id_bytes is None:
            raise DecryptionError("encrypted payload carries no key id")
        key_id = key_id_bytes.decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise DecryptionError(f"payload was encrypted with key {key_id!r}, not in the key ring")
        nonce, ciphertext = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        if len(nonce) < NONCE_BYTES:
            raise DecryptionError(f"payload under key {key_id!r} is truncated")
        try:
            plaintext = cipher.decrypt(
                nonce, ciphertext, _associated_data(key_id_bytes, payload.metadata)
            )
        except InvalidTag:
            raise DecryptionError(
                f"payload under key {key_id!r} failed authentication (tampered or corrupt)"
            ) from None
        compression = payload.metadata.get(COMPRESSION_METADATA)
        if compression is not None:
            if compression != ZLIB:
                raise DecryptionError(f"payload under key {key_id!r} names an unknown compression")
            plaintext = _inflate(plaintext, key_id)
        return Payload.FromString(plaintext)


def _inflate(compressed: bytes, key_id: str) -> bytes:
    inflater = zlib.decompressobj()
    try:
        plaintext = inflater.decompress(compressed, MAX_PLAINTEXT_BYTES)
    except zlib.error:
        raise DecryptionError(f"payload under key {key_id!r} does not decompress") from None
    if inflater.unconsumed_tail or not inflater.eof:
        raise DecryptionError(
            f"payload under key {key_id!r} decompresses past {MAX_PLAINTEXT_BYTES} bytes"
        )
    return plaintext


def payload_workflow_id(payload: Payload) -> str | None:
    """The workflow an encrypted payload says it belongs to (authenticated on decryption)."""
    label = _either(payload.metadata, WORKFLOW_ID_METADATA, WORKFLOW_ID_METADATA_LONG)
    return label.decode(errors="replace") if label else None


def payload_key_id(payload: Payload) -> str | None:
    """The id of the key that encrypted a payload."""
    key_id = _either(payload.metadata, KEY_ID_METADATA, KEY_ID_METADATA_LONG)
    return key_id.decode(errors="replace") if key_id else None


def _either(metadata: Mapping[str, bytes], short: str, long: str) -> bytes | None:
    """A compact payload's entry, else an older payload's (decryption and the codec server's
    need-to-know read the same one, so neither can be shown another label)."""
    value = metadata.get(short)
    return value if value is not None else metadata.get(long)


def _associated_data(key_id: bytes, metadata: Mapping[str, bytes]) -> bytes:
    label = _either(metadata, WORKFLOW_ID_METADATA, WORKFLOW_ID_METADATA_LONG)
    compression = metadata.get(COMPRESSION_METADATA)
    # Payloads from before labelling used the key id alone, and payloads from before
    # compression the key id and label; both still decrypt.
    data = key_id if not label else key_id + b"\x00" + label
    return data if compression is None else data + b"\x00compression:" + compression


# Converters of this many serialization contexts (workflows, activities) are kept per process.
CONTEXTS_KEPT = 1024


@dataclasses.dataclass(frozen=True)
class ContextKeepingConverter(DataConverter):
    """A DataConverter that keeps the converter `with_context` made for each context.

    The codec labels payloads with their workflow's id, so the SDK asks for a converter of
    that workflow's context around every workflow activation, activity and client call.
    Making one copies the codec and builds a new payload and failure converter, which was
    about 5% of the worker's CPU in the lifecycle benchmark. A converter keeps no state
    between calls, so one is kept per workflow; beyond CONTEXTS_KEPT, the least recently
    used is dropped.

    Every part of this converter reads only the workflow id of a context (the codec's
    label; the pydantic and failure converters read none), so an activity's context, unique
    to each activity, is kept under its workflow's: one converter serves the workflow and
    all its activities, where keying by the whole context made one per activity.
    """

    _made: Callable[[SerializationContext], DataConverter] = dataclasses.field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        made = functools.lru_cache(maxsize=CONTEXTS_KEPT)(super().with_context)
        object.__setattr__(self, "_made", made)

    def with_context(self, context: SerializationContext) -> Self:
        if isinstance(context, ActivitySerializationContext) and context.workflow_id:
            context = WorkflowSerializationContext(
                namespace=context.namespace, workflow_id=context.workflow_id
            )
        try:
            hash(context)
        except TypeError:  # a context type with unhashable fields: make it every time
            return super().with_context(context)
        return cast(Self, self._made(context))


def build_data_converter(key_ring: KeyRing | None, *, compact: bool = True) -> DataConverter:
    """The one converter for client, worker, tests and Replayer; encrypting when given keys."""
    if key_ring is None:
        return pydantic_data_converter
    return ContextKeepingConverter(
        payload_converter_class=pydantic_data_converter.payload_converter_class,
        payload_codec=EncryptionCodec(key_ring, compact=compact),
        # Failure messages and stack traces can quote health data; move them into an
        # encoded payload so the codec encrypts them as well.
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def payloads_from_json(body: dict[str, Any]) -> list[Payload]:
    """The remote-codec body `{"payloads": [{metadata, data}]}` (protobuf JSON) as payloads.

    Raises `google.protobuf.json_format.ParseError` for a malformed body.
    """
    return list(json_format.ParseDict(body, Payloads()).payloads)


def payloads_to_json(payloads: Sequence[Payload]) -> dict[str, Any]:
    result = json_format.MessageToDict(Payloads(payloads=payloads))
    # MessageToDict drops an empty list, but the UI expects the key to be present.
    result.setdefault("payloads", [])
    return result

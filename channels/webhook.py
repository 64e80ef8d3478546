"""Webhook delivery: CloudEvents 1.0 structured-mode JSON, signed with HMAC-SHA256."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import SecretStr

from channels.delivery import DeliveryError
from channels.ics import STOCKHOLM
from channels.message import OutboundMessage, deadline_label

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Rehabflow-Signature"
EVENT_TYPE_PREFIX = "se.rehabflow.notification."
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
DEFAULT_SOURCE = "urn:rehabflow:notifications"


def cloud_event(message: OutboundMessage, source: str = DEFAULT_SOURCE) -> dict[str, Any]:
    """The event for `message`. `data` holds the neutral context only, never rendered text."""
    context = message.context
    meeting = context.meeting
    return {
        "specversion": "1.0",
        "id": message.idempotency_key,
        "source": source,
        "type": EVENT_TYPE_PREFIX + message.notification_type.value,
        "time": message.created_at.isoformat(),
        "datacontenttype": "application/json",
        "data": {
            "notification_type": message.notification_type.value,
            "recipient_role": message.recipient.role.value,
            "case_id": str(context.case_id) if context.case_id else None,
            "case_ref": context.case_ref,
            "unit_code": context.unit_code,
            "link": context.link,
            "due_on": context.due_on.isoformat() if context.due_on else None,
            "deadline_kind": context.deadline_kind,
            "deadline_label": deadline_label(context.deadline_kind)
            if context.deadline_kind
            else None,
            "meeting": {
                "meeting_id": str(meeting.meeting_id),
                "starts_at": meeting.starts_at.astimezone(STOCKHOLM).isoformat(),
                "ends_at": meeting.ends_at.astimezone(STOCKHOLM).isoformat(),
                "sequence": meeting.sequence,
            }
            if meeting
            else None,
        },
    }


def _secret_bytes(secret: SecretStr | str) -> bytes:
    value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    return value.encode()


def _digest(secret: SecretStr | str, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(_secret_bytes(secret), signed, hashlib.sha256).hexdigest()


def sign(secret: SecretStr | str, body: bytes, timestamp: int) -> str:
    """Header value `t=<unix>,v1=<hex>`; the timestamp is signed too, so replays expire."""
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def verify_signature(
    secret: SecretStr | str,
    header: str,
    body: bytes,
    tolerance_s: float = 300.0,
    now: float | None = None,
) -> bool:
    """Receiver side: True only if a v1 signature matches `body` and `t` is within tolerance.

    Several v1 entries are accepted so a sender can sign with old and new secret while
    the secret is rotated.
    """
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        return False
    expected = _digest(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


def _status_error(status: int) -> DeliveryError:
    # 408 and 429 are the receiver asking us to come back later.
    retryable = status >= 500 or status in (408, 429)
    return DeliveryError(retryable=retryable, reason=f"webhook http {status}")


class WebhookChannel:
    """POSTs each message as a signed CloudEvent to the recipient's URL."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        secret: SecretStr,
        source: str = DEFAULT_SOURCE,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._secret = secret
        self._source = source
        self._timeout_s = timeout_s
        self._clock = clock

    async def deliver(self, message: OutboundMessage) -> None:
        url = message.recipient.address
        if not url.startswith(("https://", "http://")):
            raise DeliveryError(retryable=False, reason="webhook address is not an http(s) URL")
        body = json.dumps(cloud_event(message, self._source), ensure_ascii=False).encode()
        headers = {
            "Content-Type": CONTENT_TYPE,
            SIGNATURE_HEADER: sign(self._secret, body, int(self._clock())),
        }
        try:
            response = await self._client.post(
                url, content=body, headers=headers, timeout=self._timeout_s
            )
        except httpx.InvalidURL:
            raise DeliveryError(retryable=False, reason="webhook address is invalid") from None
        except httpx.TimeoutException:
            raise DeliveryError(retryable=True, reason="webhook timeout") from None
        except httpx.TransportError as error:
            raise DeliveryError(
                retryable=True, reason=f"webhook unavailable: {type(error).__name__}"
            ) from None
        # Redirects are not followed: re-POSTing a signed event elsewhere is a config error.
        if not response.is_success:
            raise _status_error(response.status_code)
        logger.info(
            "notification %s (%s) delivered by webhook",
            message.idempotency_key,
            message.notification_type,
        )

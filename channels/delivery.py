"""The channel contract: what every delivery channel implements and how it fails."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from channels.message import OutboundMessage


class DeliveryError(Exception):
    """A delivery failed. `retryable` tells the dispatcher whether to back off and retry.

    `reason` is short and free of personal data (no addresses, no server reply text,
    which often echoes the recipient), so it can be stored on the outbox row and logged.
    """

    def __init__(self, *, retryable: bool, reason: str) -> None:
        super().__init__(reason)
        self.retryable = retryable
        self.reason = reason

    def __repr__(self) -> str:
        return f"DeliveryError(retryable={self.retryable}, reason={self.reason!r})"


@runtime_checkable
class Channel(Protocol):
    """Delivers one message or raises DeliveryError.

    A repeated delivery of the same idempotency key is recognisable downstream: the same
    Message-ID for e-mail, the same CloudEvents id for webhooks, a no-op for the maildir.
    """

    async def deliver(self, message: OutboundMessage) -> None: ...

"""Notification channels: neutral templates and delivery by e-mail, webhook or maildir.

The package itself exports only the pure contract (models, Channel, DeliveryError), so a
workflow may import it inside the Temporal sandbox without pulling in aiosmtplib or httpx.
Templates and channels are imported from their modules: `channels.templates`,
`channels.smtp`, `channels.webhook`, `channels.maildir`, `channels.ics`.
"""

from channels.delivery import Channel, DeliveryError
from channels.message import (
    CalendarInvite,
    DeadlineKind,
    MeetingSlot,
    NotificationContext,
    NotificationType,
    OutboundMessage,
    Recipient,
    RecipientRole,
)

__all__ = [
    "CalendarInvite",
    "Channel",
    "DeadlineKind",
    "DeliveryError",
    "MeetingSlot",
    "NotificationContext",
    "NotificationType",
    "OutboundMessage",
    "Recipient",
    "RecipientRole",
]

"""Notification channels: neutral templates and delivery by e-mail, webhook or maildir.

The package itself exports only the pure contract (models, Channel, DeliveryError), so a
workflow may import it inside the Temporal sandbox without pulling in aiosmtplib or httpx.
Templates and channels are imported from their modules: `channels.templates`,
`channels.smtp`, `channels.webhook`, `channels.maildir`, `channels.ics`.
"""

from channels.delivery import Channel, DeliveryError
from channels.message import (
    DEADLINE_LABELS,
    CalendarInvite,
    DeadlineKind,
    MeetingSlot,
    NotificationContext,
    NotificationType,
    OutboundMessage,
    Recipient,
    RecipientRole,
    deadline_label,
)

__all__ = [
    "DEADLINE_LABELS",
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
    "deadline_label",
]

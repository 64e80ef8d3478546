"""Builds the RFC 5322 e-mail for an outbound message; shared by the SMTP and maildir channels."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from channels.message import OutboundMessage


def message_id(message: OutboundMessage, sender: str) -> str:
    """Same idempotency key, same Message-ID, so a duplicate send is recognisable downstream."""
    domain = sender.rpartition("@")[2] or "rehabflow.invalid"
    return f"<{message.delivery_id}@{domain}>"


def compose_email(message: OutboundMessage, sender: str) -> EmailMessage:
    """Plain text body, plus the invitation as a text/calendar part when there is one."""
    email = EmailMessage()
    email["From"] = formataddr(("rehabflow", sender))
    email["To"] = message.recipient.address
    email["Subject"] = message.subject
    email["Date"] = format_datetime(message.created_at)
    email["Message-ID"] = message_id(message, sender)
    # RFC 3834: tells vacation responders not to answer a machine.
    email["Auto-Submitted"] = "auto-generated"
    email["X-Rehabflow-Notification-Type"] = message.notification_type.value
    email.set_content(message.text)
    if message.calendar is not None:
        email.add_attachment(
            message.calendar.ics,
            maintype="text",
            subtype="calendar",
            params={"method": message.calendar.method, "charset": "utf-8"},
            filename="invite.ics",
        )
    return email

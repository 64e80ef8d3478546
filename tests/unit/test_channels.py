"""Channels against real local peers: an aiosmtpd server, a uvicorn webhook receiver, a maildir."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import stat
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn
from aiosmtpd.controller import Controller
from icalendar import Calendar
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from channels import (
    Channel,
    DeliveryError,
    MeetingSlot,
    NotificationContext,
    NotificationType,
    OutboundMessage,
    Recipient,
    RecipientRole,
)
from channels.ics import meeting_uid
from channels.maildir import MaildirChannel
from channels.smtp import SmtpChannel, SmtpSettings
from channels.templates import compose_message
from channels.webhook import SIGNATURE_HEADER, WebhookChannel, verify_signature
from tests.outbox_support import free_port

STOCKHOLM = ZoneInfo("Europe/Stockholm")
CASE_ID = UUID("3f2a9c1b-5d4e-4f60-8a7b-9c0d1e2f3a4b")
MEETING_ID = UUID("0b1c2d3e-4f50-4a6b-8c7d-8e9f0a1b2c3d")
CREATED_AT = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)
SENDER = "noreply@rehabflow.example"
WEBHOOK_SECRET = SecretStr("whsec-test-only")


def meeting(sequence: int = 0, start: datetime | None = None) -> MeetingSlot:
    start = start or datetime(2026, 3, 30, 9, 0, tzinfo=STOCKHOLM)
    return MeetingSlot(
        meeting_id=MEETING_ID,
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        sequence=sequence,
    )


def outbound(
    notification_type: NotificationType = NotificationType.MEETING_INVITATION,
    *,
    address: str = "coordinator@example.org",
    key: str | None = None,
    slot: MeetingSlot | None = None,
) -> OutboundMessage:
    context = NotificationContext(
        case_id=CASE_ID,
        unit_code="SKV-HEM-04",
        app_url="https://rehabflow.example",
        due_on=datetime(2026, 4, 14).date(),
        deadline_kind="fk_sick_notice",
        meeting=slot or meeting(),
    )
    return compose_message(
        idempotency_key=key or f"case-{CASE_ID}:notify:{uuid4().hex[:8]}",
        notification_type=notification_type,
        recipient=Recipient(address=address, role=RecipientRole.COORDINATOR),
        context=context,
        created_at=CREATED_AT,
        organizer=SENDER,
    )


def calendar_part(received: EmailMessage) -> EmailMessage:
    parts = [p for p in received.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1
    part = parts[0]
    assert isinstance(part, EmailMessage)
    return part


# --- SMTP ---------------------------------------------------------------------------------


class RecordingHandler:
    """aiosmtpd handler that keeps what it accepts and refuses some mailboxes like a real MTA."""

    def __init__(self) -> None:
        self.received: list[EmailMessage] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.startswith("gone@"):
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        if address.startswith("busy@"):
            return f"451 4.3.0 <{address}>: try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(parsed)
        return "250 Message accepted for delivery"


@dataclass
class SmtpPeer:
    handler: RecordingHandler
    channel: SmtpChannel


@pytest.fixture
def smtp_peer() -> Iterator[SmtpPeer]:
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, server_hostname="localhost")
    controller.start()
    settings = SmtpSettings(
        host="127.0.0.1",
        port=port,
        start_tls=False,
        from_address=SENDER,
        timeout_s=5,
        local_hostname="localhost",
    )
    try:
        yield SmtpPeer(handler, SmtpChannel(settings))
    finally:
        controller.stop()


async def test_smtp_delivers_invitation_whose_ics_parses_in_stockholm_time(
    smtp_peer: SmtpPeer,
) -> None:
    message = outbound()

    await smtp_peer.channel.deliver(message)

    (received,) = smtp_peer.handler.received
    assert received["Subject"] == "rehabflow: joint meeting on 2026-03-30"
    assert received["To"] == "coordinator@example.org"
    body = received.get_body(preferencelist=("plain",))
    assert body is not None
    assert "Monday 2026-03-30, 09:00-10:00 (Stockholm time)" in body.get_content()
    part = calendar_part(received)
    assert part.get_param("method") == "REQUEST"
    assert part.get_filename() == "invite.ics"
    calendar = Calendar.from_ical(part.get_content())
    assert calendar["METHOD"] == "REQUEST"
    (event,) = calendar.events
    start = event.start
    assert isinstance(start, datetime) and message.context.meeting is not None
    assert event["DTSTART"].params["TZID"] == "Europe/Stockholm"
    assert str(start.tzinfo) == "Europe/Stockholm"
    assert start.replace(tzinfo=None) == datetime(2026, 3, 30, 9, 0)
    assert start == message.context.meeting.starts_at
    assert str(event["UID"]) == meeting_uid(MEETING_ID)


async def test_smtp_notification_without_meeting_has_no_attachment(smtp_peer: SmtpPeer) -> None:
    await smtp_peer.channel.deliver(outbound(NotificationType.DEADLINE_DUE))

    (received,) = smtp_peer.handler.received
    assert received["Subject"] == "rehabflow: deadline in case 3F2A9C1B on 2026-04-14"
    assert list(received.iter_attachments()) == []
    body = received.get_body(preferencelist=("plain",))
    assert body is not None
    assert "the sick notice to Försäkringskassan" in body.get_content()


async def test_smtp_resend_of_same_key_carries_the_same_message_id(smtp_peer: SmtpPeer) -> None:
    message = outbound(key="case-1:notify:7")

    await smtp_peer.channel.deliver(message)
    await smtp_peer.channel.deliver(message)
    await smtp_peer.channel.deliver(outbound(key="case-1:notify:8"))

    first, resent, other = (received["Message-ID"] for received in smtp_peer.handler.received)
    assert first == resent == f"<{message.delivery_id}@rehabflow.example>"
    assert other != first


async def test_smtp_550_refusal_is_permanent_and_reason_hides_the_address(
    smtp_peer: SmtpPeer,
) -> None:
    with pytest.raises(DeliveryError) as raised:
        await smtp_peer.channel.deliver(outbound(address="gone@example.org"))

    assert raised.value.retryable is False
    assert "550" in raised.value.reason and "5.1.1" in raised.value.reason
    assert "gone" not in raised.value.reason
    assert raised.value.__cause__ is None
    assert smtp_peer.handler.received == []


async def test_smtp_451_refusal_is_retryable(smtp_peer: SmtpPeer) -> None:
    with pytest.raises(DeliveryError) as raised:
        await smtp_peer.channel.deliver(outbound(address="busy@example.org"))

    assert raised.value.retryable is True
    assert "451" in raised.value.reason


async def test_smtp_connection_refused_is_retryable() -> None:
    settings = SmtpSettings(
        host="127.0.0.1", port=free_port(), start_tls=False, from_address=SENDER, timeout_s=2
    )

    with pytest.raises(DeliveryError) as raised:
        await SmtpChannel(settings).deliver(outbound())

    assert raised.value.retryable is True


# --- Webhook ------------------------------------------------------------------------------


@dataclass
class Received:
    body: bytes
    signature: str
    verified: bool


@dataclass
class WebhookPeer:
    base_url: str
    received: list[Received] = field(default_factory=list)


def receiver_app(peer: WebhookPeer) -> Starlette:
    """A receiver as a customer would write it: verify first, 401 if the signature is bad."""

    async def hook(request: Request) -> Response:
        body = await request.body()
        signature = request.headers.get(SIGNATURE_HEADER, "")
        verified = verify_signature(WEBHOOK_SECRET, signature, body)
        peer.received.append(Received(body, signature, verified))
        if not verified:
            return Response(status_code=401)
        await asyncio.sleep(float(request.query_params.get("delay", "0")))
        return Response(status_code=request.path_params["status"])

    return Starlette(routes=[Route("/hook/{status:int}", hook, methods=["POST"])])


@pytest.fixture
async def webhook_peer() -> AsyncIterator[WebhookPeer]:
    port = free_port()
    peer = WebhookPeer(base_url=f"http://127.0.0.1:{port}")
    config = uvicorn.Config(
        receiver_app(peer),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "webhook receiver failed to start"
        await asyncio.sleep(0.01)
    try:
        yield peer
    finally:
        server.should_exit = True
        await serving


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def webhook_message(url: str, key: str = "case-1:notify:1") -> OutboundMessage:
    message = outbound(key=key)
    recipient = Recipient(address=url, role=RecipientRole.FK_OFFICER)
    return message.model_copy(update={"recipient": recipient})


async def test_webhook_delivers_signed_cloudevent_the_receiver_verifies(
    webhook_peer: WebhookPeer, http_client: httpx.AsyncClient
) -> None:
    channel = WebhookChannel(http_client, secret=WEBHOOK_SECRET, source="urn:rehabflow:test")

    await channel.deliver(webhook_message(f"{webhook_peer.base_url}/hook/204"))

    (received,) = webhook_peer.received
    assert received.verified
    event = json.loads(received.body)
    assert event["specversion"] == "1.0"
    assert event["id"] == "case-1:notify:1"
    assert event["source"] == "urn:rehabflow:test"
    assert event["type"] == "se.rehabflow.notification.meeting_invitation"
    assert event["datacontenttype"] == "application/json"
    assert datetime.fromisoformat(event["time"]) == CREATED_AT
    assert event["data"]["case_ref"] == "3F2A9C1B"
    assert event["data"]["meeting"]["starts_at"] == "2026-03-30T09:00:00+02:00"


async def test_tampered_or_stale_webhook_fails_verification(
    webhook_peer: WebhookPeer, http_client: httpx.AsyncClient
) -> None:
    channel = WebhookChannel(http_client, secret=WEBHOOK_SECRET)
    await channel.deliver(webhook_message(f"{webhook_peer.base_url}/hook/200"))
    (received,) = webhook_peer.received
    signed_at = int(received.signature.split(",")[0].removeprefix("t="))
    tampered = received.body.replace(b"3F2A9C1B", b"3F2A9C1C")

    assert verify_signature(WEBHOOK_SECRET, received.signature, received.body, now=signed_at)
    assert not verify_signature(WEBHOOK_SECRET, received.signature, tampered, now=signed_at)
    assert not verify_signature("other-secret", received.signature, received.body, now=signed_at)
    stale = signed_at + 301
    assert not verify_signature(WEBHOOK_SECRET, received.signature, received.body, 300, stale)


async def test_webhook_signed_with_wrong_secret_is_refused_and_permanent(
    webhook_peer: WebhookPeer, http_client: httpx.AsyncClient
) -> None:
    channel = WebhookChannel(http_client, secret=SecretStr("not-the-shared-secret"))

    with pytest.raises(DeliveryError) as raised:
        await channel.deliver(webhook_message(f"{webhook_peer.base_url}/hook/200"))

    assert raised.value.retryable is False
    assert raised.value.reason == "webhook http 401"


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(500, True), (503, True), (408, True), (429, True), (400, False), (404, False)],
)
async def test_webhook_status_decides_whether_delivery_is_retried(
    webhook_peer: WebhookPeer, http_client: httpx.AsyncClient, status: int, retryable: bool
) -> None:
    channel = WebhookChannel(http_client, secret=WEBHOOK_SECRET)

    with pytest.raises(DeliveryError) as raised:
        await channel.deliver(webhook_message(f"{webhook_peer.base_url}/hook/{status}"))

    assert raised.value.retryable is retryable
    assert raised.value.reason == f"webhook http {status}"


async def test_webhook_timeout_is_retryable(
    webhook_peer: WebhookPeer, http_client: httpx.AsyncClient
) -> None:
    channel = WebhookChannel(http_client, secret=WEBHOOK_SECRET, timeout_s=0.2)

    with pytest.raises(DeliveryError) as raised:
        await channel.deliver(webhook_message(f"{webhook_peer.base_url}/hook/200?delay=1"))

    assert raised.value.retryable is True
    assert raised.value.reason == "webhook timeout"


async def test_webhook_connection_refused_is_retryable(http_client: httpx.AsyncClient) -> None:
    channel = WebhookChannel(http_client, secret=WEBHOOK_SECRET)

    with pytest.raises(DeliveryError) as raised:
        await channel.deliver(webhook_message(f"http://127.0.0.1:{free_port()}/hook/200"))

    assert raised.value.retryable is True


async def test_webhook_to_an_email_address_is_permanent(http_client: httpx.AsyncClient) -> None:
    channel = WebhookChannel(http_client, secret=WEBHOOK_SECRET)

    with pytest.raises(DeliveryError) as raised:
        await channel.deliver(outbound())

    assert raised.value.retryable is False


# --- Maildir ------------------------------------------------------------------------------


async def test_maildir_delivering_twice_writes_one_file(tmp_path: Path) -> None:
    channel = MaildirChannel(tmp_path / "mail", from_address=SENDER)
    message = outbound()

    await channel.deliver(message)
    first = channel.path_for(message).read_bytes()
    await channel.deliver(message)
    await asyncio.gather(channel.deliver(message), channel.deliver(message))

    assert [p.name for p in (tmp_path / "mail" / "new").iterdir()] == [f"{message.delivery_id}.eml"]
    assert list((tmp_path / "mail" / "tmp").iterdir()) == []
    assert channel.path_for(message).read_bytes() == first
    parsed = email.message_from_bytes(first, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Subject"] == message.subject
    assert calendar_part(parsed).get_param("method") == "REQUEST"


async def test_maildir_does_not_redeliver_mail_already_read(tmp_path: Path) -> None:
    channel = MaildirChannel(tmp_path)
    message = outbound()
    await channel.deliver(message)
    written = channel.path_for(message)
    written.rename(tmp_path / "cur" / f"{written.name}:2,S")  # what a mail reader does

    await channel.deliver(message)

    assert list((tmp_path / "new").iterdir()) == []


async def test_maildir_files_are_readable_by_owner_only(tmp_path: Path) -> None:
    channel = MaildirChannel(tmp_path / "mail")
    message = outbound()

    await channel.deliver(message)

    assert stat.S_IMODE(channel.path_for(message).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "mail" / "new").stat().st_mode) == 0o700


# --- iCalendar and the message model ------------------------------------------------------


def invitation_event(message: OutboundMessage) -> Any:
    assert message.calendar is not None
    (event,) = Calendar.from_ical(message.calendar.ics).events
    return event


def test_rescheduled_meeting_updates_the_same_event_with_higher_sequence() -> None:
    original = outbound(slot=meeting(sequence=0))
    moved_to = datetime(2026, 4, 13, 13, 0, tzinfo=STOCKHOLM)
    moved = outbound(NotificationType.MEETING_RESCHEDULED, slot=meeting(1, moved_to))

    before, after = invitation_event(original), invitation_event(moved)

    assert before["UID"] == after["UID"]
    assert (before["SEQUENCE"], after["SEQUENCE"]) == (0, 1)
    assert after.start == moved_to
    assert moved.calendar is not None and moved.calendar.method == "REQUEST"


def test_cancelled_meeting_sends_method_cancel_for_the_same_event() -> None:
    cancelled = outbound(NotificationType.MEETING_CANCELLED, slot=meeting(sequence=2))

    assert cancelled.calendar is not None
    calendar = Calendar.from_ical(cancelled.calendar.ics)
    (event,) = calendar.events
    assert calendar["METHOD"] == "CANCEL" and cancelled.calendar.method == "CANCEL"
    assert event["STATUS"] == "CANCELLED"
    assert str(event["UID"]) == meeting_uid(MEETING_ID)
    assert event["SEQUENCE"] == 2


@pytest.mark.parametrize(
    ("utc_start", "stockholm_hour"),
    [
        (datetime(2026, 1, 15, 8, 0, tzinfo=UTC), 9),  # CET, UTC+1
        (datetime(2026, 3, 30, 7, 0, tzinfo=UTC), 9),  # the day after the switch to CEST
        (datetime(2026, 10, 26, 8, 0, tzinfo=UTC), 9),  # the day after the switch back
    ],
)
def test_ics_shows_meeting_in_stockholm_local_time_across_dst(
    utc_start: datetime, stockholm_hour: int
) -> None:
    event = invitation_event(outbound(slot=meeting(start=utc_start)))

    assert event["DTSTART"].params["TZID"] == "Europe/Stockholm"
    assert (event.start.hour, event.end.hour) == (stockholm_hour, stockholm_hour + 1)
    assert event.start == utc_start


def test_same_message_renders_byte_identical_invitation() -> None:
    assert outbound(key="k-1").calendar == outbound(key="k-1").calendar


def test_outbound_message_round_trips_through_json_for_the_outbox() -> None:
    message = outbound()

    restored = OutboundMessage.model_validate_json(message.model_dump_json())

    assert restored == message


def test_idempotency_key_cannot_inject_headers() -> None:
    with pytest.raises(ValueError):
        outbound(key="case-1\r\nBcc: someone@example.org")


def test_every_channel_satisfies_the_channel_protocol(
    tmp_path: Path, http_client: httpx.AsyncClient
) -> None:
    channels: list[object] = [
        SmtpChannel(SmtpSettings(host="127.0.0.1", from_address=SENDER)),
        WebhookChannel(http_client, secret=WEBHOOK_SECRET),
        MaildirChannel(tmp_path),
    ]

    assert all(isinstance(channel, Channel) for channel in channels)

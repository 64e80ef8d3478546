"""The dispatcher's activity: claims due outbox rows, delivers them, records the outcome."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time

import httpx
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from channels.delivery import Channel, DeliveryError
from channels.ics import STOCKHOLM
from channels.maildir import MaildirChannel
from channels.message import NotificationContext, OutboundMessage, Recipient
from channels.smtp import SmtpChannel, SmtpSettings
from channels.templates import DIGESTED, TemplateContextError, compose_digest, compose_message
from channels.webhook import WebhookChannel
from core.i18n import DEFAULT_LANGUAGE, Language, as_language
from core.settings import NotificationSettings, Settings
from models.notification import DISPATCH_DUE_ACTIVITY, DispatchRequest, DispatchResult
from store.contacts import ContactDecryptionError, ContactProtector
from store.outbox import ClaimedNotification, claim_due, mark_delivered, mark_failed
from store.schema import EmployeeContact, UnitContact

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChannelSet:
    """The channel for each contact channel kind; `webhook` is None without a secret."""

    email: Channel
    webhook: Channel | None


def build_channels(settings: Settings, http: httpx.AsyncClient) -> ChannelSet:
    """E-mail goes to the maildir (embedded default) or SMTP; webhooks need a secret."""
    config = settings.notifications
    email: Channel
    if config.email_channel == "smtp":
        email = SmtpChannel(
            SmtpSettings(
                host=config.smtp_host,
                port=config.smtp_port,
                start_tls=config.smtp_start_tls,
                username=config.smtp_username,
                password=config.smtp_password,
                from_address=config.from_address,
                timeout_s=config.smtp_timeout_s,
            )
        )
    else:
        email = MaildirChannel(settings.maildir_path, config.from_address)
    webhook = None
    if config.webhook_secret is not None:
        webhook = WebhookChannel(
            http, secret=config.webhook_secret, timeout_s=config.webhook_timeout_s
        )
    return ChannelSet(email=email, webhook=webhook)


class _Undeliverable(Exception):
    """This row can never be delivered as it stands; it goes straight to dead letter."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotificationDispatch:
    """Delivers the outbox. Given its sessionmaker, channels and contact protector by the worker.

    Exactly-once is built from two halves: a row moves pending → sending → delivered under
    row locks, so no two runs send it at once; and a crash between sending and marking
    (at-least-once at the channel) is absorbed downstream, because the Message-ID, the
    CloudEvent id and the maildir file name all derive from the row's delivery key.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        channels: ChannelSet,
        contacts: ContactProtector,
        settings: NotificationSettings,
        *,
        claim_lease: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessionmaker = sessionmaker
        self._channels = channels
        self._contacts = contacts
        self._settings = settings
        self._lease = claim_lease
        self._clock = clock

    @activity.defn(name=DISPATCH_DUE_ACTIVITY)
    async def dispatch_due(self, request: DispatchRequest) -> DispatchResult:
        """Poll and deliver until `run_for_s` has passed; database errors fail the activity.

        Failing is the point: Temporal retries the activity with backoff while PostgreSQL is
        away, and rows claimed before the outage are claimed again after their lease.
        """
        deadline = time.monotonic() + request.run_for_s
        total = DispatchResult()
        while True:
            found, result = await self._one_pass()
            total = DispatchResult(
                passes=total.passes + 1,
                delivered=total.delivered + result.delivered,
                retried=total.retried + result.retried,
                dead_lettered=total.dead_lettered + result.dead_lettered,
            )
            activity.heartbeat(total.passes)
            if time.monotonic() >= deadline:
                return total
            if found < self._settings.batch_size:
                remaining = deadline - time.monotonic()
                await asyncio.sleep(max(0.0, min(self._settings.poll_interval_s, remaining)))

    async def _one_pass(self) -> tuple[int, DispatchResult]:
        now = self._clock()
        async with self._sessionmaker.begin() as session:
            claimed = await claim_due(
                session,
                now=now,
                limit=self._settings.batch_size,
                lease=self._lease,
                digest_cutoff=last_digest_time(now, self._settings.digest_time),
                digested=[kind.value for kind in DIGESTED],
            )
        delivered = retried = dead = 0
        singles, digests = _digest_groups(claimed)
        outcomes: list[str] = []
        for notification in singles:
            outcomes.append(await self._deliver_one(notification))
            activity.heartbeat()
        for group in digests:
            outcomes.extend(await self._deliver_digest(group))
            activity.heartbeat()
        for outcome in outcomes:
            delivered += outcome == "delivered"
            retried += outcome == "retry"
            dead += outcome == "dead_letter"
        return len(claimed), DispatchResult(
            delivered=delivered, retried=retried, dead_lettered=dead
        )

    async def _deliver_one(self, notification: ClaimedNotification) -> str:
        reason: str
        retry_at: datetime | None = None
        if notification.attempt > self._settings.max_attempts:
            # A row that was claimed that often crashed its workers each time: stop here.
            reason = "max attempts reached"
        else:
            try:
                channel, recipient, language = await self._recipient(notification)
                await channel.deliver(self._compose(notification, recipient, language))
            except _Undeliverable as error:
                reason = error.reason
            except DeliveryError as error:
                reason = error.reason
                if error.retryable and notification.attempt < self._settings.max_attempts:
                    retry_at = self._clock() + self._backoff(notification.attempt)
            else:
                async with self._sessionmaker.begin() as session:
                    await mark_delivered(session, notification.id, now=self._clock())
                return "delivered"
        async with self._sessionmaker.begin() as session:
            await mark_failed(session, notification.id, reason=reason, retry_at=retry_at)
        # The row id and the reason only: no address, no case content.
        logger.warning(
            "notification %s attempt %s failed (%s); %s",
            notification.id,
            notification.attempt,
            reason,
            "retrying" if retry_at else "dead-lettered",
        )
        return "retry" if retry_at else "dead_letter"

    async def _deliver_digest(self, group: list[ClaimedNotification]) -> list[str]:
        """A recipient's overdue and escalation notices as one e-mail; one notice, or a
        webhook (machines take events one by one), goes out on its own."""
        if len(group) == 1:
            return [await self._deliver_one(group[0])]
        try:
            channel, recipient, language = await self._recipient(group[0])
        except (_Undeliverable, DeliveryError):
            return [await self._deliver_one(n) for n in group]
        if channel is self._channels.webhook:
            return [await self._deliver_one(n) for n in group]
        keys = sorted(n.delivery_key for n in group)
        digest_key = "digest/" + hashlib.sha256("\n".join(keys).encode()).hexdigest()[:40]
        reason: str | None = None
        retryable = False
        try:
            message = compose_digest(
                idempotency_key=digest_key,
                recipient=recipient,
                notices=[(n.notification_type, self._context(n)) for n in group],
                created_at=max(n.created_at for n in group),
                language=language,
            )
            await channel.deliver(message)
        except (ValidationError, TemplateContextError):
            reason = "notification context is invalid"
        except DeliveryError as error:
            reason, retryable = error.reason, error.retryable
        outcomes = []
        async with self._sessionmaker.begin() as session:
            for notification in group:
                if reason is None:
                    await mark_delivered(session, notification.id, now=self._clock())
                    outcomes.append("delivered")
                    continue
                retry_at = None
                if retryable and notification.attempt < self._settings.max_attempts:
                    retry_at = self._clock() + self._backoff(notification.attempt)
                await mark_failed(session, notification.id, reason=reason, retry_at=retry_at)
                outcomes.append("retry" if retry_at else "dead_letter")
        if reason is not None:
            logger.warning("digest of %s notifications failed (%s)", len(group), reason)
        return outcomes

    def _context(self, notification: ClaimedNotification) -> NotificationContext:
        return NotificationContext(
            case_id=notification.case_id,
            unit_code=notification.unit_code,
            app_url=self._settings.app_url,
            due_on=notification.due_on,
            deadline_kind=notification.deadline_kind,
            meeting=notification.meeting,
        )

    def _backoff(self, attempt: int) -> timedelta:
        seconds = self._settings.backoff_initial_s * 2 ** (attempt - 1)
        return timedelta(seconds=min(seconds, self._settings.backoff_max_s))

    async def _recipient(
        self, notification: ClaimedNotification
    ) -> tuple[Channel, Recipient, Language]:
        async with self._sessionmaker() as session:
            if notification.employee_pseudonym is not None:
                contact = await session.scalar(
                    select(EmployeeContact).where(
                        EmployeeContact.employee_pseudonym == notification.employee_pseudonym
                    )
                )
                if contact is None:
                    raise _Undeliverable("recipient contact was removed")
                kind, language = contact.channel, as_language(contact.language)
                try:
                    address = self._contacts.decrypt(contact.address_encrypted)
                except ContactDecryptionError:
                    raise _Undeliverable("recipient contact cannot be decrypted") from None
            else:
                unit_contact = (
                    await session.get(UnitContact, notification.unit_contact_id)
                    if notification.unit_contact_id is not None
                    else None
                )
                if unit_contact is None:
                    raise _Undeliverable("recipient contact was removed")
                kind, address = unit_contact.channel, unit_contact.address
                language = as_language(unit_contact.language)
        channel = self._channels.webhook if kind == "webhook" else self._channels.email
        if channel is None:
            # The operator can set the secret; until then the backoff keeps the row alive.
            raise DeliveryError(retryable=True, reason="webhook secret is not configured")
        try:
            recipient = Recipient(address=address, role=notification.recipient_role)
        except ValidationError:
            raise _Undeliverable("recipient address is invalid") from None
        return channel, recipient, language or DEFAULT_LANGUAGE

    def _compose(
        self, notification: ClaimedNotification, recipient: Recipient, language: Language
    ) -> OutboundMessage:
        try:
            context = self._context(notification)
            return compose_message(
                idempotency_key=notification.delivery_key,
                notification_type=notification.notification_type,
                recipient=recipient,
                context=context,
                # The row's creation time: a re-send renders byte-identical (Date, DTSTAMP).
                created_at=notification.created_at,
                organizer=self._settings.from_address,
                # The recipient's language (Swedish unless the contact chose English).
                language=language,
            )
        except (ValidationError, TemplateContextError):
            raise _Undeliverable("notification context is invalid") from None


def last_digest_time(now: datetime, at: dt_time | None) -> datetime | None:
    """The latest daily digest instant at or before `now` (local time in Stockholm, so the
    digest keeps its wall-clock hour across daylight saving); None when digests are off."""
    if at is None:
        return None
    local = now.astimezone(STOCKHOLM)
    today = datetime.combine(local.date(), at, tzinfo=STOCKHOLM)
    return (
        today
        if today <= local
        else datetime.combine(local.date() - timedelta(days=1), at, tzinfo=STOCKHOLM)
    )


def _digest_groups(
    claimed: list[ClaimedNotification],
) -> tuple[list[ClaimedNotification], list[list[ClaimedNotification]]]:
    """The rows to send one by one, and the digest rows grouped by recipient."""
    singles: list[ClaimedNotification] = []
    groups: dict[tuple[object, ...], list[ClaimedNotification]] = {}
    for notification in claimed:
        if notification.notification_type not in DIGESTED:
            singles.append(notification)
            continue
        key = (notification.unit_contact_id, notification.employee_pseudonym)
        groups.setdefault(key, []).append(notification)
    return singles, list(groups.values())

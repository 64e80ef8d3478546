"""Shared by the outbox, dispatch and outage tests: a recorded case and real local peers."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import random
import secrets
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from activities.notifications import ChannelSet, NotificationDispatch
from channels.delivery import Channel
from channels.webhook import SIGNATURE_HEADER, verify_signature
from core.codec import KeyRing
from core.settings import NotificationSettings
from models.case import case_workflow_id
from store.contacts import ContactProtector
from store.schema import Case, Employee, Unit

WEBHOOK_SECRET = SecretStr("whsec-outbox-test")


@dataclass(frozen=True)
class RecordedCase:
    case_id: uuid.UUID
    employee: uuid.UUID
    unit_code: str


async def record_case(sessionmaker: async_sessionmaker[AsyncSession]) -> RecordedCase:
    """A unit, an employee and an open case, as the case workflow's first activity leaves them."""
    unit_code = f"U{uuid.uuid4().hex[:6].upper()}"
    case_id, employee = uuid.uuid4(), uuid.uuid4()
    async with sessionmaker.begin() as session:
        session.add(Unit(code=unit_code, name="Home care north"))
        await session.flush()
        session.add(Employee(pseudonym=employee, unit_code=unit_code))
        await session.flush()
        session.add(
            Case(
                id=case_id,
                workflow_id=case_workflow_id(case_id),
                employee_pseudonym=employee,
                unit_code=unit_code,
                trigger="manager_concern",
                stage="joint_meeting",
                opened_at=datetime(2026, 3, 2, 8, 0, tzinfo=UTC),
            )
        )
    return RecordedCase(case_id, employee, unit_code)


def contact_protector() -> ContactProtector:
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    return ContactProtector(KeyRing.from_config(f"ctest:{key}"))


class Clock:
    """A settable clock for the dispatcher, so backoff is tested without waiting."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def dispatcher(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    email_channel: Channel,
    webhook: Channel | None = None,
    protector: ContactProtector | None = None,
    clock: Callable[[], datetime] | None = None,
    lease: timedelta = timedelta(minutes=5),
    **settings: Any,
) -> NotificationDispatch:
    config = NotificationSettings(
        from_address="noreply@rehabflow.example",
        **(
            {"app_url": "https://rehabflow.example", "poll_interval_s": 0.1}
            | {"backoff_initial_s": 10.0}
            | settings
        ),
    )
    return NotificationDispatch(
        sessionmaker,
        ChannelSet(email=email_channel, webhook=webhook),
        protector or contact_protector(),
        config,
        claim_lease=lease,
        **({"clock": clock} if clock else {}),
    )


def maildir_files(root: Path) -> list[Path]:
    return sorted((root / "new").glob("*.eml")) if (root / "new").exists() else []


# The sender of every test e-mail.
SENDER = "noreply@rehabflow.example"


def free_port() -> int:
    """A free port below the kernel's ephemeral range.

    A port the kernel hands out for `bind(0)` is in the range it also uses for the local end
    of outgoing connections: between this choice and a peer binding it, a client may take it
    (once, `make up`'s own clients took the port chosen for its API, and the API could not
    start). Ports below the range are only ever taken on purpose.
    """
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randrange(max(1024, low - 12_000), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port below the ephemeral range")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


# ---------------------------------------------------------------- SMTP peer


class RecordingSmtpHandler:
    def __init__(self) -> None:
        self.received: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(parsed)
        return "250 Message accepted for delivery"


# ---------------------------------------------------------------- webhook peer


@dataclass
class WebhookReceiver:
    base_url: str
    status: int = 204
    bodies: list[bytes] = field(default_factory=list)
    verified: list[bool] = field(default_factory=list)


@asynccontextmanager
async def webhook_receiver(status: int = 204) -> AsyncIterator[WebhookReceiver]:
    """A receiver as a customer would write it: it verifies the signature, 401 if bad."""
    port = free_port()
    peer = WebhookReceiver(base_url=f"http://127.0.0.1:{port}", status=status)

    async def hook(request: Request) -> Response:
        body = await request.body()
        ok = verify_signature(WEBHOOK_SECRET, request.headers.get(SIGNATURE_HEADER, ""), body)
        peer.bodies.append(body)
        peer.verified.append(ok)
        return Response(status_code=peer.status if ok else 401)

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "webhook receiver failed to start"
        await asyncio.sleep(0.01)
    try:
        yield peer
    finally:
        server.should_exit = True
        await serving

"""What the API process builds once at start-up and hands to every request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.converter import PayloadCodec

from api.auth import TokenVerifier
from api.ratelimit import RateLimiter
from core.identity import IdentityProtector
from core.settings import Settings
from models.instruments import INSTRUMENTS, Instrument
from store.contacts import ContactProtector


@dataclass(frozen=True)
class ApiContext:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    # Statement by statement, no transaction: for the checks of a case action.
    autocommit: async_sessionmaker[AsyncSession]
    temporal: Client
    identity: IdentityProtector
    verifier: TokenVerifier
    limiter: RateLimiter
    # The payload codec the codec server exposes to the Temporal UI.
    codec: PayloadCodec
    # The screening instruments answers are scored with: shipped, plus loaded definitions.
    instruments: Mapping[tuple[str, int], Instrument] = field(default_factory=lambda: INSTRUMENTS)
    # Encrypts the employee's own contact address (the record store's key ring).
    contacts: ContactProtector | None = None

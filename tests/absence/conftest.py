"""Fixtures of the absence tests: a time-skipping server per test and the ingestion path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from core.codec import KeyRing
from core.identity import IdentityProtector
from core.secrets import Secrets
from ingestion.absences import AbsenceIngestion
from models.deadlines import STOCKHOLM
from tests.case_steps import private_time_skipping_server


@pytest_asyncio.fixture
async def time_skipping_env(test_secrets: Secrets) -> AsyncIterator[WorkflowEnvironment]:
    """A server of this test's own: monitors left waiting must not stop time elsewhere."""
    async with private_time_skipping_server(test_secrets) as env:
        yield env


@pytest.fixture
def ingestion(
    time_skipping_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
    test_secrets: Secrets,
    task_queue: str,
) -> AbsenceIngestion:
    """The same ingestion path the API and the CSV importer use."""
    return AbsenceIngestion(
        sessionmaker,
        time_skipping_env.client,
        IdentityProtector(
            KeyRing.from_config(test_secrets.pin_encryption_keys), test_secrets.pin_lookup_key
        ),
        task_queue,
        today=lambda: datetime.now(STOCKHOLM).date(),
    )

"""Fixtures of the absence tests: the ingestion path (each module runs on servers of its
tests' own: monitors left waiting must not stop time elsewhere)."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from core.codec import KeyRing
from core.identity import IdentityProtector
from core.secrets import Secrets
from ingestion.absences import AbsenceIngestion
from models.deadlines import STOCKHOLM


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

"""`starter.py demo`: a synthetic year of absences through the API opens the cases it should."""

from __future__ import annotations

import io
import re
from datetime import date

import httpx
import pytest
from rich.console import Console
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.auth import EmbeddedIssuer
from ingestion.demo import run_demo
from models.api import Role
from models.deadlines import local_date
from store.schema import Employee, UnitContact

pytestmark = pytest.mark.own_temporal("test")


async def test_the_demo_posts_a_year_and_reports_the_cases_the_api_lists(
    api: httpx.AsyncClient,
    worker: Worker,
    issuer: EmbeddedIssuer,
    time_skipping_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    today: date = local_date(await time_skipping_env.get_current_time())
    hr = issuer.mint(Role.HR_SYSTEM, subject="payroll")
    out = io.StringIO()
    summary = await run_demo(
        api,
        sessionmaker,
        hr,
        120,
        today,
        Console(file=out, width=120),
        temporal=time_skipping_env.client,
    )
    assert summary.units == 3 and summary.accepted == summary.events and summary.rejected == 0
    assert 0.7 < summary.women / summary.employees < 0.95
    # A year of absences for 120 people holds both short-absence patterns and long leave.
    assert summary.cases_by_trigger.get("repeated_short_absence", 0) > 0
    assert summary.cases_by_trigger.get("long_absence", 0) > 0
    assert re.search(rf"all\W+{summary.cases}\b", out.getvalue())
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Employee)) == 120
        assert await session.scalar(select(func.count()).select_from(UnitContact)) == 6

    # What the demo reports is what a coordinator sees through the API.
    coordinator = issuer.mint(Role.COORDINATOR, subject="c", units=["*"])
    listed = await api.get(
        "/api/v1/cases", params={"limit": 1}, headers={"Authorization": f"Bearer {coordinator}"}
    )
    assert listed.status_code == 200 and listed.json()["total"] == summary.cases

    again = await run_demo(
        api,
        sessionmaker,
        hr,
        120,
        today,
        Console(file=io.StringIO()),
        temporal=time_skipping_env.client,
    )
    assert (again.accepted, again.duplicate) == (0, summary.events)
    assert again.cases_by_trigger == summary.cases_by_trigger

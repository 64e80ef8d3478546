"""PostgreSQL goes away under a load of referrals: clean JSON 503s, no lost or doubled case."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr
from sqlalchemy import select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.auth import EmbeddedIssuer
from core.settings import Settings
from core.temporal import data_converter
from models.api import Role
from store.db import create_engine, create_sessionmaker
from store.migrate import ensure_database, upgrade_to_head
from store.schema import Case, Unit
from tests.conftest import bearer
from tests.test_outage import own_postgres, stop  # noqa: F401  (a fixture)
from worker import build_worker

pytestmark = pytest.mark.own_temporal("test")

UNIT = "OUT-1"


def _pins(count: int) -> list[str]:
    """Valid personal identity numbers of people born on different days in 1980."""
    pins = []
    for day in range(1, count + 1):
        base = f"8001{day:02d}123"
        digits = [int(c) * (2 - i % 2) for i, c in enumerate(base)]
        check = (10 - sum(d // 10 + d % 10 for d in digits) % 10) % 10
        pins.append(f"19{base[:6]}-{base[6:]}{check}")
    return pins


@pytest_asyncio.fixture
async def outage_stack(
    own_postgres: Any,  # noqa: F811
    settings: Settings,
    time_skipping_env: WorkflowEnvironment,
    task_queue: str,
) -> AsyncIterator[tuple[httpx.AsyncClient, Any, Settings]]:
    url = own_postgres.get_uri("rehabflow").replace("postgresql://", "postgresql+asyncpg://", 1)
    await ensure_database(url)
    await upgrade_to_head(url)
    own = settings.model_copy(
        update={
            "database": settings.database.model_copy(update={"url": SecretStr(url)}),
            # Short, so that referrals caught mid-flight by the outage answer 504 quickly.
            "api": settings.api.model_copy(update={"update_timeout_s": 3.0}),
        }
    )
    # The production engine: it must find its way back to PostgreSQL after the restart.
    engine = create_engine(own, url=url)
    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker.begin() as session:
        session.add(Unit(code=UNIT, name="Outage unit"))
    app = create_app(own, temporal_client=time_skipping_env.client)
    try:
        async with (
            build_worker(time_skipping_env.client, task_queue, sessionmaker),
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://rehabflow.test"
            ) as http,
        ):
            yield http, sessionmaker, own
    finally:
        await engine.dispose()


async def test_killing_postgres_under_load_gives_json_503s_and_no_lost_or_doubled_case(
    outage_stack: tuple[httpx.AsyncClient, Any, Settings],
    own_postgres: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    http, sessionmaker, settings = outage_stack
    issuer = EmbeddedIssuer.load_or_create(settings)
    coordinator = bearer(issuer.mint(Role.COORDINATOR, units=[UNIT]))
    pins = _pins(24)
    keys = {pin: f"referral-{uuid.uuid4()}" for pin in pins}

    async def refer(pin: str) -> httpx.Response:
        return await http.post(
            "/api/v1/cases",
            json={"employee_ref": pin, "unit_code": UNIT, "trigger": "manager_concern"},
            headers={**coordinator, "Idempotency-Key": keys[pin]},
        )

    async def load() -> list[httpx.Response]:
        answers = []
        for pin in pins:  # a steady stream, so the outage lands in the middle of it
            answers.append(await refer(pin))
        return answers

    stream = asyncio.create_task(load())
    while not stream.done():
        async with sessionmaker() as session:
            if len((await session.scalars(select(Case.id))).all()) >= 4:
                break
        await asyncio.sleep(0.05)
    await asyncio.to_thread(stop, own_postgres)
    during = await http.get("/api/v1/cases", headers=coordinator)
    answers = await stream

    assert during.status_code == 503
    assert during.headers["retry-after"].isdigit()
    assert during.json() == {
        "detail": "the record store is unavailable; nothing was changed, retry later"
    }
    assert {a.status_code for a in answers} <= {201, 503, 504}
    assert 503 in {a.status_code for a in answers}
    for answer in answers:
        assert answer.headers["content-type"] == "application/json"
        if answer.status_code != 201:
            assert "retry-after" in answer.headers and "detail" in answer.json()
    # A case action (its access check runs on asyncpg straight) meets the outage the same way.
    opened = next(a.json()["case_id"] for a in answers if a.status_code == 201)
    action = await http.post(
        f"/api/v1/cases/{opened}/record-consent",
        json={"party": "fk", "given": True},
        headers=coordinator,
    )
    assert action.status_code == 503, action.text
    assert action.headers["retry-after"].isdigit()
    assert action.json() == during.json()

    await asyncio.to_thread(own_postgres.ensure_postgres_running)
    # Every client retries what was not acknowledged, and one acknowledged request too.
    created = {
        pin: a.json()["case_id"]
        for pin, a in zip(pins, answers, strict=True)
        if a.status_code == 201
    }
    retried = {}
    for pin, answer in zip(pins, answers, strict=True):
        if answer.status_code == 201 and pin != pins[0]:
            continue
        for _ in range(30):
            again = await refer(pin)
            if again.status_code == 201:
                retried[pin] = again.json()["case_id"]
                break
            assert again.status_code in (503, 504), again.text
            await asyncio.sleep(0.5)
        else:
            raise AssertionError("a referral never got through after the outage")

    assert retried[pins[0]] == created[pins[0]]
    async with sessionmaker() as session:
        rows = (await session.execute(select(Case.id, Case.employee_pseudonym))).all()
    assert len(rows) == len(pins)  # one case per person: none lost, none doubled
    assert len({r.employee_pseudonym for r in rows}) == len(pins)
    assert {str(r.id) for r in rows} == set(created.values()) | set(retried.values())


async def test_a_referral_while_no_worker_runs_is_504_and_its_retry_gets_the_one_case(
    settings: Settings,
    time_skipping_env: WorkflowEnvironment,
    task_queue: str,
    sessionmaker: Any,
    unit_code: str,
    issuer: EmbeddedIssuer,
) -> None:
    quick = settings.model_copy(
        update={"api": settings.api.model_copy(update={"update_timeout_s": 2.0})}
    )
    app = create_app(quick, temporal_client=time_skipping_env.client)
    coordinator = {
        **bearer(issuer.mint(Role.COORDINATOR, units=[unit_code])),
        "Idempotency-Key": f"referral-{uuid.uuid4()}",
    }
    body = {"employee_ref": _pins(1)[0], "unit_code": unit_code, "trigger": "manager_concern"}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://rehabflow.test"
        ) as http,
    ):
        # The worker is down: the referral is handed over, but nobody answers in time.
        timed_out = await http.post("/api/v1/cases", json=body, headers=coordinator)
        assert timed_out.status_code == 504, timed_out.text
        assert timed_out.headers["retry-after"].isdigit()
        assert "may still take effect" in timed_out.json()["detail"]

        async with build_worker(time_skipping_env.client, task_queue, sessionmaker):
            for _ in range(20):
                retried = await http.post("/api/v1/cases", json=body, headers=coordinator)
                if retried.status_code != 504:
                    break
            assert retried.status_code == 201, retried.text
            again = await http.post("/api/v1/cases", json=body, headers=coordinator)
            assert again.json()["case_id"] == retried.json()["case_id"]
            async with sessionmaker() as session:
                assert [str(i) for i in (await session.scalars(select(Case.id))).all()] == [
                    retried.json()["case_id"]
                ]


async def test_temporal_unreachable_is_a_json_503_with_retry_after(
    settings: Settings, test_secrets: Any, unit_code: str, issuer: EmbeddedIssuer
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    away = await Client.connect(
        f"127.0.0.1:{port}", lazy=True, data_converter=data_converter(test_secrets)
    )
    app = create_app(settings, temporal_client=away)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://rehabflow.test"
        ) as http,
    ):
        answer = await http.post(
            "/api/v1/cases",
            json={
                "employee_ref": _pins(1)[0],
                "unit_code": unit_code,
                "trigger": "manager_concern",
            },
            headers=bearer(issuer.mint(Role.COORDINATOR, units=[unit_code])),
        )
    assert answer.status_code == 503
    assert answer.headers["retry-after"].isdigit()
    assert answer.json() == {
        "detail": "the workflow service is unavailable; nothing was changed, retry later"
    }

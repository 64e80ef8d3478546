"""One log format for our code and the libraries, with case context on activity lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
import structlog
from temporalio.worker import Worker

from core.logging import configure_logging
from core.settings import LogSettings, Settings

PIN = "19811218-9876"


@pytest.fixture
def json_logs(settings: Settings) -> Iterator[io.StringIO]:
    """Logging configured as in production (JSON), written to a buffer the test reads."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    configure_logging(settings.model_copy(update={"log": LogSettings(format="json")}), stream)
    yield stream
    root.handlers, root.level = saved
    structlog.reset_defaults()


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


async def test_activity_log_lines_carry_case_workflow_activity_and_attempt(
    json_logs: io.StringIO,
    api: httpx.AsyncClient,
    worker: Worker,
    unit_code: str,
    coordinator_headers: dict[str, str],
) -> None:
    created = await api.post(
        "/api/v1/cases",
        json={"employee_ref": PIN, "unit_code": unit_code, "trigger": "self_referral"},
        headers=coordinator_headers,
    )
    case_id = created.json()["case_id"]
    recorded = [line for line in _lines(json_logs) if line.get("event") == "case recorded"]
    assert len(recorded) == 1, json_logs.getvalue()
    assert recorded[0]["case_id"] == case_id
    # The opener writes the opening with the first change, on the employee's monitor: its
    # workflow id is the monitor's, which names a pseudonym, never a person.
    assert str(recorded[0]["workflow_id"]).startswith("absence-")
    assert recorded[0]["activity"] == "open_for_referral"
    assert recorded[0]["attempt"] == 1
    assert PIN not in json_logs.getvalue() and "8112189876" not in json_logs.getvalue()


def test_library_loggers_share_the_json_format(json_logs: io.StringIO) -> None:
    names = ("temporalio.worker", "uvicorn.error", "sqlalchemy.pool", "alembic.runtime")
    for name in names:
        logging.getLogger(name).warning("hello from %s", name)
    lines = _lines(json_logs)
    assert {line["logger"] for line in lines} == set(names)
    assert all(line["level"] == "warning" and "timestamp" in line for line in lines)
    assert {line["event"] for line in lines} == {f"hello from {name}" for name in names}

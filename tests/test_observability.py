"""Traces from the HTTP request to the activity's SQL; metrics; trace ids in logs; no person.

The API and the worker run in process on the dev server with a Telemetry whose spans go to
an in-memory exporter, through the same privacy filter as the OTLP exporter in production,
and whose `/metrics` port is served for real. The referral carries the canary personal
identity number of tests/test_no_personal_data_in_temporal.py.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest_asyncio
import structlog
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from core.logging import configure_logging
from core.observability import OpsServer, Telemetry, instrument_engine
from core.secrets import Secrets
from core.settings import Settings
from core.temporal import data_converter
from tests.test_no_personal_data_in_temporal import CANARY_FORMS, CANARY_PHRASE, CANARY_PIN
from worker import build_worker


@dataclass
class Observed:
    spans: list[ReadableSpan]
    metrics: str
    consent_trace: int


@pytest_asyncio.fixture
async def observed(
    settings: Settings,
    dev_env: WorkflowEnvironment,
    test_secrets: Secrets,
    task_queue: str,
    database_url: str,
    unit_code: str,
    coordinator_headers: dict[str, str],
) -> AsyncIterator[Observed]:
    """A referral and a consent through the traced API and worker; what telemetry saw."""
    exporter = InMemorySpanExporter()
    telemetry = Telemetry.create("rehabflow-test", exporter=exporter, batch=False)
    settings = settings.model_copy(
        update={
            "telemetry": settings.telemetry.model_copy(
                update={"metrics_port": 0, "business_metrics_interval_s": 0.2}
            )
        }
    )
    client = await Client.connect(
        dev_env.client.service_client.config.target_host,
        data_converter=data_converter(test_secrets),
        interceptors=telemetry.interceptors(),
        runtime=telemetry.runtime,
    )
    engine = create_async_engine(database_url)
    instrument_engine(engine, telemetry.provider)
    worker_sessions = async_sessionmaker(engine, expire_on_commit=False)
    app = create_app(settings, temporal_client=client, telemetry=telemetry)
    async with (
        build_worker(client, task_queue, worker_sessions),
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://rehabflow.test"
        ) as api,
    ):
        refused = await api.post(
            "/api/v1/cases",
            json={"employee_ref": CANARY_PHRASE, "unit_code": unit_code, "trigger": "x"},
            headers=coordinator_headers,
        )
        assert refused.status_code == 422
        # A number in a query string would be in the span's URL, without the privacy filter.
        listed = await api.get(
            "/api/v1/cases", params={"employee_ref": CANARY_PIN}, headers=coordinator_headers
        )
        assert listed.status_code in (200, 422)
        created = await api.post(
            "/api/v1/cases",
            json={
                "employee_ref": CANARY_PIN,
                "unit_code": unit_code,
                "trigger": "manager_concern",
            },
            headers=coordinator_headers,
        )
        assert created.status_code == 201, created.text
        case_id = created.json()["case_id"]
        consent = await api.post(
            f"/api/v1/cases/{case_id}/record-consent",
            json={"party": "fk", "given": True},
            headers=coordinator_headers,
        )
        assert consent.status_code == 200, consent.text
        consent_trace = next(
            s.context.trace_id
            for s in exporter.get_finished_spans()
            if s.name == "POST /api/v1/cases/{case_id}/record-consent"
        )
        metrics_url = f"http://127.0.0.1:{telemetry.metrics_port}/metrics"
        async with httpx.AsyncClient() as http:
            for _ in range(100):  # the business gauges refresh every 0.2 s
                metrics = (await http.get(metrics_url)).text
                if 'rehabflow_open_cases{stage="identified"} 1.0' in metrics:
                    break
                await asyncio.sleep(0.1)
        await client.get_workflow_handle(f"case-{case_id}").terminate()
    await engine.dispose()
    telemetry.shutdown()
    yield Observed(list(exporter.get_finished_spans()), metrics, consent_trace)


def _children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def _descendant(spans: list[ReadableSpan], parent: ReadableSpan, prefix: str) -> ReadableSpan:
    """The first span named `prefix…` below `parent`, searched breadth first."""
    frontier = [parent]
    while frontier:
        below = [c for p in frontier for c in _children(spans, p)]
        for span in below:
            if span.name.startswith(prefix):
                return span
        frontier = below
    raise AssertionError(f"no {prefix}… span below {parent.name}")


async def test_traces_and_metrics_of_a_referral_and_an_update_without_personal_data(
    observed: Observed,
) -> None:
    """One run (an API, a worker, a dev server) serves the three checks, to keep it quick."""
    _a_request_is_traced_through_the_update_to_the_activity_and_its_sql(observed)
    _no_personal_data_in_any_span_or_metric(observed)
    _metrics_port_serves_sdk_request_and_business_metrics(observed)


def _a_request_is_traced_through_the_update_to_the_activity_and_its_sql(
    observed: Observed,
) -> None:
    spans = observed.spans
    [request] = [
        s
        for s in spans
        if s.context.trace_id == observed.consent_trace
        and s.name == "POST /api/v1/cases/{case_id}/record-consent"
    ]
    update = _descendant(spans, request, "StartWorkflowUpdate:record_consent")
    # The SDK keeps a case's workflow spans in the case's own trace (rooted at its referral)
    # and links each update handler to the request that sent the update.
    [handler] = [s for s in spans if s.name == "HandleUpdate:record_consent"]
    assert [link.context.span_id for link in handler.links] == [update.context.span_id]
    assert any(
        s.name == "POST /api/v1/cases" and s.context.trace_id == handler.context.trace_id
        for s in spans
    )
    # The update's activity, and the SQL it ran, follow the handler in that trace.
    assert handler.start_time is not None
    activity = next(
        s
        for s in spans
        if s.name == "RunActivity:record_change"
        and s.context.trace_id == handler.context.trace_id
        and (s.start_time or 0) > handler.start_time
    )
    sql = [s for s in _children(spans, activity) if s.name.startswith(("INSERT", "UPDATE"))]
    assert sql
    for statement in sql:
        assert statement.attributes is not None
        assert "$1" in str(statement.attributes.get("db.statement"))  # placeholders only
    # The API's own reads for the request (the access check) are below the request span.
    assert any(s.name.startswith("SELECT") for s in _children(spans, request))


def _no_personal_data_in_any_span_or_metric(observed: Observed) -> None:
    assert observed.spans
    for span in observed.spans:
        text = span.to_json()
        for form in CANARY_FORMS:
            assert form not in text, f"{form!r} in span {span.name}"
        # Only allow-listed attributes leave the process: no client address, no user agent.
        assert span.attributes is not None
        assert not {"client.address", "net.peer.ip", "user_agent.original"} & set(span.attributes)
        assert span.status.description is None
    for form in CANARY_FORMS:
        assert form not in observed.metrics
    # Labels name routes by template, never by a case's id.
    assert "/api/v1/cases/{case_id}/record-consent" in observed.metrics


def _metrics_port_serves_sdk_request_and_business_metrics(observed: Observed) -> None:
    metrics = observed.metrics
    # The Temporal SDK's runtime metrics (worker polls, task latencies, client requests).
    assert "temporal_request_total" in metrics
    assert "temporal_workflow_task_execution_latency_bucket" in metrics
    # The API's requests by route template and status.
    assert (
        'rehabflow_http_requests_total{method="POST",route="/api/v1/cases",status="201"} 1.0'
        in metrics
    )
    assert 'route="/api/v1/cases",status="422"' in metrics
    # Business gauges from PostgreSQL.
    assert 'rehabflow_open_cases{stage="identified"} 1.0' in metrics
    assert "rehabflow_outbox_dead_letters 0.0" in metrics


async def test_worker_probes_answer_on_the_metrics_port() -> None:
    telemetry = Telemetry.create("rehabflow-worker-test", temporal_runtime_metrics=False)
    ready = False

    async def probe() -> bool:
        return ready

    server = OpsServer(telemetry.registry, probe)
    port = await server.start("127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/readyz")).status_code == 503
            ready = True
            assert (await http.get("/readyz")).status_code == 200
            assert (await http.get("/metrics")).status_code == 200
            assert (await http.get("/elsewhere")).status_code == 404
    finally:
        await server.close()


def test_json_log_lines_carry_the_trace_id(tmp_path: Path) -> None:
    stream = io.StringIO()
    configure_logging(Settings(data_dir=tmp_path, log={"format": "json"}), stream=stream)
    telemetry = Telemetry.create("rehabflow-log-test", temporal_runtime_metrics=False)
    tracer = telemetry.provider.get_tracer("test")
    try:
        with tracer.start_as_current_span("request") as span:
            structlog.get_logger("test").info("inside a span")
        structlog.get_logger("test").info("outside any span")
    finally:
        structlog.reset_defaults()
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert "trace_id" not in outside


def test_nothing_is_traced_when_spans_could_go_nowhere() -> None:
    """Without an exporter no tracing header rides on Temporal commands, and with one it does."""
    silent = Telemetry.create("rehabflow-silent", temporal_runtime_metrics=False)
    exporting = Telemetry.create(
        "rehabflow-exporting", exporter=InMemorySpanExporter(), temporal_runtime_metrics=False
    )

    assert not silent.traced and list(silent.interceptors()) == []
    assert exporting.traced and len(exporting.interceptors()) == 1


_UNEXPORTED_APP = """
import asyncio, sys
import httpx
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from api.app import create_app
from core.observability import Telemetry
from core.settings import Settings

spans = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(spans))
trace.set_tracer_provider(provider)  # a global provider, as every rehabflow process has
settings = Settings()
app = create_app(settings, telemetry=Telemetry.create("silent", temporal_runtime_metrics=False))

async def main():
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        assert (await http.get("/healthz")).status_code == 200
asyncio.run(main())
print(len(spans.get_finished_spans()))
"""


def test_the_api_traces_no_request_when_no_exporter_is_configured(tmp_path: Path) -> None:
    """A span per request (and per dependency) spent CPU for nothing when nothing exports.

    Run in a process of its own: the global tracer provider can be set only once.
    """
    import os
    import subprocess
    import sys

    env = dict(os.environ) | {"REHABFLOW_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", _UNEXPORTED_APP],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "0"

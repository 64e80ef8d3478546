"""Tracing (OpenTelemetry) and metrics (Prometheus) for the API and the worker.

- **Traces** follow a request from the HTTP span (FastAPI instrumentation) through the
  Temporal client call, the workflow and its activities (the SDK's TracingInterceptor,
  which carries the context in Temporal headers) to the SQL statements (SQLAlchemy
  instrumentation). Spans are made always, so log lines carry a trace id; they leave the
  process only when `telemetry.otlp_endpoint` is set (OTLP over HTTP).
- **Privacy**: every span passes `PrivacySpanProcessor` before any exporter. It keeps only
  attributes on an allow-list (methods, route templates, status codes, SQL with its
  placeholders, Temporal ids, which are pseudonymous), drops exception messages, stack
  traces and status descriptions (an error text can quote health data), and client
  addresses and user agents.
- **Metrics** are served in Prometheus text format at `/metrics` on `telemetry.metrics_port`:
  the Temporal SDK's runtime metrics (read from the SDK's metric buffer), the API's request
  counts and durations by route template, and the business gauges. No label carries an id
  or anything about a person: stage, deadline kind, method, route template, status.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Status
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_GAUGE,
    MetricBuffer,
    MetricBufferDurationFormat,
    Runtime,
    TelemetryConfig,
)

from core.settings import Settings
from store import direct

log = structlog.get_logger(__name__)

# ---------------------------------------------------------------- tracing

# Attributes that may leave the process. Anything else set by an instrumentation is dropped.
SAFE_SPAN_ATTRIBUTES = frozenset(
    {
        # HTTP server (old and new semantic conventions): method, route template, status
        "http.method",
        "http.request.method",
        "http.route",
        "http.status_code",
        "http.response.status_code",
        "http.scheme",
        "url.scheme",
        "http.flavor",
        "network.protocol.version",
        "server.address",
        "server.port",
        "net.host.name",
        "net.host.port",
        "asgi.event.type",
        # database: the statement with its placeholders, never the bound values
        "db.system",
        "db.system.name",
        "db.name",
        "db.namespace",
        "db.statement",
        "db.query.text",
        "db.operation",
        "db.operation.name",
        "db.user",
        "net.peer.name",
        "net.peer.port",
        # Temporal: workflow and activity ids are pseudonymous (case-<uuid>, ...)
        "temporalWorkflowID",
        "temporalRunID",
        "temporalActivityID",
        "temporalUpdateID",
        # exceptions: the type only (the message may quote personal data)
        "exception.type",
        "exception.escaped",
    }
)


def _safe(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (attributes or {}).items() if k in SAFE_SPAN_ATTRIBUTES}


class PrivacySpanProcessor(SpanProcessor):
    """Hands the next processor a copy of each ended span with only allow-listed content."""

    def __init__(self, next_processor: SpanProcessor) -> None:
        self._next = next_processor

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self._next.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        self._next.on_end(
            ReadableSpan(
                name=span.name,
                context=span.context,
                parent=span.parent,
                resource=span.resource,
                attributes=_safe(span.attributes),
                events=[
                    Event(e.name, _safe(e.attributes), timestamp=e.timestamp) for e in span.events
                ],
                links=[trace.Link(link.context, _safe(link.attributes)) for link in span.links],
                kind=span.kind,
                status=Status(span.status.status_code),  # without its description
                start_time=span.start_time,
                end_time=span.end_time,
                instrumentation_scope=span.instrumentation_scope,
            )
        )

    def shutdown(self) -> None:
        self._next.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._next.force_flush(timeout_millis)


def tracer_provider(
    service_name: str, exporter: SpanExporter | None, *, batch: bool = True
) -> TracerProvider:
    """A provider whose spans reach `exporter` (if any) only through the privacy filter."""
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if exporter is not None:
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        inner: SpanProcessor = (
            BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
        )
        provider.add_span_processor(PrivacySpanProcessor(inner))
    return provider


def temporal_tracing(provider: trace.TracerProvider) -> TracingInterceptor:
    """The SDK interceptor: client, workflow and activity spans, context in Temporal headers."""
    return TracingInterceptor(provider.get_tracer("rehabflow.temporal"))


def instrument_engine(engine: AsyncEngine, provider: trace.TracerProvider) -> None:
    """A span per SQL statement of this engine (statement text with placeholders only),
    those run straight on asyncpg (`store.direct`) included."""
    tracer = provider.get_tracer("opentelemetry.instrumentation.sqlalchemy")
    EngineTracer(
        tracer,
        engine.sync_engine,
        NoOpMeterProvider().get_meter("sqlalchemy").create_up_down_counter("db.connections"),
    )
    direct.trace_statements(engine, tracer)


def instrument_app(app: Any, provider: trace.TracerProvider) -> None:
    """A server span per request, named by method and route template."""
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        meter_provider=NoOpMeterProvider(),
        exclude_spans=["receive", "send"],
        excluded_urls="healthz,readyz",
    )


# ---------------------------------------------------------------- Temporal SDK metrics

# Seconds; the SDK reports durations to the buffer in seconds (see temporal_runtime).
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(_BUCKETS) + 1))
    total: float = 0.0


@dataclass
class _Series:
    kind: int
    description: str
    unit: str
    values: dict[tuple[tuple[str, str], ...], Any] = field(default_factory=dict)


class TemporalMetricsCollector(Collector):
    """The SDK's runtime metrics (worker slots, polls, latencies, cache, requests) as Prometheus.

    The SDK writes metric updates into a `MetricBuffer`; `drain` (called at every scrape and
    once a second by the process) folds them into counters, gauges and histograms.
    """

    def __init__(self, buffer: MetricBuffer) -> None:
        self._buffer = buffer
        self._lock = threading.Lock()
        self._series: dict[str, _Series] = {}

    def drain(self) -> None:
        with self._lock:
            for update in self._buffer.retrieve_updates():
                metric = update.metric
                series = self._series.get(metric.name)
                if series is None:
                    series = self._series[metric.name] = _Series(
                        metric.kind, metric.description or metric.name, metric.unit or ""
                    )
                labels = tuple(sorted((k, str(v)) for k, v in update.attributes.items()))
                if metric.kind == BUFFERED_METRIC_KIND_COUNTER:
                    series.values[labels] = series.values.get(labels, 0) + update.value
                elif metric.kind == BUFFERED_METRIC_KIND_GAUGE:
                    series.values[labels] = update.value
                else:
                    hist = series.values.setdefault(labels, _Histogram())
                    hist.counts[bisect.bisect_left(_BUCKETS, float(update.value))] += 1
                    hist.total += float(update.value)

    def collect(self) -> Iterable[Metric]:
        self.drain()
        with self._lock:
            for name, series in sorted(self._series.items()):
                prom_name = name.replace(".", "_").replace("-", "_")
                if series.kind == BUFFERED_METRIC_KIND_COUNTER:
                    metric = Metric(prom_name, series.description, "counter")
                    for labels, value in series.values.items():
                        metric.add_sample(prom_name + "_total", dict(labels), value)
                elif series.kind == BUFFERED_METRIC_KIND_GAUGE:
                    metric = Metric(prom_name, series.description, "gauge")
                    for labels, value in series.values.items():
                        metric.add_sample(prom_name, dict(labels), value)
                else:
                    metric = Metric(prom_name, series.description, "histogram")
                    for labels, hist in series.values.items():
                        cumulative = 0
                        for bound, count in zip((*_BUCKETS, math.inf), hist.counts, strict=True):
                            cumulative += count
                            le = "+Inf" if bound == math.inf else repr(bound)
                            metric.add_sample(
                                prom_name + "_bucket", {**dict(labels), "le": le}, cumulative
                            )
                        metric.add_sample(prom_name + "_count", dict(labels), cumulative)
                        metric.add_sample(prom_name + "_sum", dict(labels), hist.total)
                yield metric


def temporal_runtime() -> tuple[Runtime, TemporalMetricsCollector]:
    """A Temporal runtime whose metrics go to a buffer this process serves at /metrics."""
    buffer = MetricBuffer(50_000, duration_format=MetricBufferDurationFormat.SECONDS)
    runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer, global_tags={}))
    return runtime, TemporalMetricsCollector(buffer)


# ---------------------------------------------------------------- API request metrics


class RequestMetrics:
    """ASGI middleware: requests and their durations by method, route template and status."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "rehabflow_http_requests",
            "HTTP requests answered by the admin API",
            ["method", "route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "rehabflow_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # The template (/api/v1/cases/{case_id}), never the path with its ids.
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            self.requests.labels(method, route, str(status)).inc()
            self.duration.labels(method, route).observe(time.perf_counter() - started)


# ---------------------------------------------------------------- business gauges


class BusinessMetrics:
    """Gauges read from the record store: what operations should watch, without any person."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.open_cases = Gauge(
            "rehabflow_open_cases", "Open cases by stage", ["stage"], registry=registry
        )
        self.overdue_deadlines = Gauge(
            "rehabflow_overdue_deadlines",
            "Unmet deadlines past their day, by kind",
            ["kind"],
            registry=registry,
        )
        self.dead_letters = Gauge(
            "rehabflow_outbox_dead_letters",
            "Notifications given up after every retry",
            registry=registry,
        )
        self.deadlines_met = Gauge(
            "rehabflow_deadlines_met",
            "Deadlines met, by kind and whether on time",
            ["kind", "on_time"],
            registry=registry,
        )
        self.refreshed = Gauge(
            "rehabflow_business_metrics_refreshed_timestamp_seconds",
            "When the business gauges were last read from PostgreSQL",
            registry=registry,
        )

    async def refresh(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        from store.schema import Case, CaseDeadline, Notification

        async with sessionmaker() as session:
            stages = (
                await session.execute(
                    select(Case.stage, func.count())
                    .where(Case.stage != "closed")
                    .group_by(Case.stage)
                )
            ).all()
            overdue = (
                await session.execute(
                    select(CaseDeadline.kind, func.count())
                    .where(CaseDeadline.status == "overdue")
                    .group_by(CaseDeadline.kind)
                )
            ).all()
            dead = await session.scalar(
                select(func.count()).where(Notification.status == "dead_letter")
            )
            met = (
                await session.execute(
                    select(
                        CaseDeadline.kind,
                        CaseDeadline.met_on <= CaseDeadline.due_on,
                        func.count(),
                    )
                    .where(CaseDeadline.status == "met", CaseDeadline.met_on.is_not(None))
                    .group_by(CaseDeadline.kind, CaseDeadline.met_on <= CaseDeadline.due_on)
                )
            ).all()
        _replace(self.open_cases, {(stage,): n for stage, n in stages})
        _replace(self.overdue_deadlines, {(kind,): n for kind, n in overdue})
        self.dead_letters.set(dead or 0)
        _replace(
            self.deadlines_met,
            {(kind, "true" if on_time else "false"): n for kind, on_time, n in met},
        )
        self.refreshed.set_to_current_time()


def _replace(gauge: Gauge, values: Mapping[tuple[str, ...], float]) -> None:
    """Set the gauge to exactly these label sets (a stage with no cases left reads 0)."""
    known = {labels for labels in _label_sets(gauge)}
    for labels in known - set(values):
        gauge.labels(*labels).set(0)
    for labels, value in values.items():
        gauge.labels(*labels).set(value)


def _label_sets(gauge: Gauge) -> list[tuple[str, ...]]:
    return [
        tuple(sample.labels[name] for name in gauge._labelnames)
        for metric in gauge.collect()
        for sample in metric.samples
    ]


async def every(interval_s: float, action: Callable[[], Awaitable[None]], what: str) -> None:
    """Run `action` now and then every `interval_s` until cancelled; a failure is logged."""
    while True:
        try:
            await action()
        except Exception as exc:  # a gauge may lag; the process must not stop for it
            log.warning("periodic task failed", task=what, error=type(exc).__name__)
        await asyncio.sleep(interval_s)


# ---------------------------------------------------------------- the metrics port

Probe = Callable[[], Awaitable[bool]]


class OpsServer:
    """`/metrics`, `/healthz` and `/readyz` on the metrics port, served by the process's loop.

    The worker has no other HTTP port, so its probes live here: `/healthz` answers only
    while the event loop runs (a stuck loop fails the liveness probe), `/readyz` asks the
    process's readiness probe (the worker: polling, and Temporal answers).
    """

    def __init__(self, registry: CollectorRegistry, ready: Probe | None = None) -> None:
        self._registry = registry
        self._ready = ready
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._handle, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            method, path, *_ = request.split(b" ", 2)
            path = path.split(b"?", 1)[0]
            if method not in (b"GET", b"HEAD"):
                status, body, ctype = "405 Method Not Allowed", b"", "text/plain"
            elif path == b"/metrics":
                body = await asyncio.to_thread(generate_latest, self._registry)
                status, ctype = "200 OK", CONTENT_TYPE_LATEST
            elif path == b"/healthz":
                status, body, ctype = "200 OK", b'{"status":"ok"}', "application/json"
            elif path == b"/readyz":
                ready = await self._ready() if self._ready else True
                status = "200 OK" if ready else "503 Service Unavailable"
                body = b'{"status":"ready"}' if ready else b'{"status":"not_ready"}'
                ctype = "application/json"
            else:
                status, body, ctype = "404 Not Found", b"", "text/plain"
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + (body if method == b"GET" else b""))
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()


# ---------------------------------------------------------------- one process's telemetry


@dataclass
class Telemetry:
    """A process's tracer provider, Temporal runtime and metrics registry."""

    service_name: str
    provider: TracerProvider
    registry: CollectorRegistry
    runtime: Runtime | None = None
    temporal_metrics: TemporalMetricsCollector | None = None
    # The port `/metrics` was bound to, once serving (settings may say 0: any free port).
    metrics_port: int | None = None
    # Whether spans go anywhere. Without an exporter nothing is traced: a span per SQL
    # statement and a tracing header on every Temporal command (an encrypted payload in
    # each history event that carries input) would cost CPU and history for nothing.
    traced: bool = False

    @classmethod
    def create(
        cls,
        service_name: str,
        *,
        exporter: SpanExporter | None = None,
        temporal_runtime_metrics: bool = True,
        batch: bool = True,
    ) -> Telemetry:
        registry = CollectorRegistry()
        runtime = collector = None
        if temporal_runtime_metrics:
            runtime, collector = temporal_runtime()
            registry.register(collector)
        return cls(
            service_name=service_name,
            provider=tracer_provider(service_name, exporter, batch=batch),
            registry=registry,
            runtime=runtime,
            temporal_metrics=collector,
            traced=exporter is not None,
        )

    @classmethod
    def from_settings(cls, settings: Settings, service_name: str) -> Telemetry:
        """For a process: OTLP export only when an endpoint is configured; global provider."""
        exporter: SpanExporter | None = None
        endpoint = settings.telemetry.otlp_endpoint
        if endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
        telemetry = cls.create(settings.telemetry.service_name or service_name, exporter=exporter)
        trace.set_tracer_provider(telemetry.provider)
        return telemetry

    def interceptors(self) -> Sequence[TracingInterceptor]:
        return [temporal_tracing(self.provider)] if self.traced else []

    def instrument_engine(self, engine: AsyncEngine) -> None:
        if self.traced:
            instrument_engine(engine, self.provider)

    async def drain_temporal_metrics(self) -> None:
        """Keep the SDK's metric buffer from filling between scrapes."""
        if self.temporal_metrics is not None:
            while True:
                self.temporal_metrics.drain()
                await asyncio.sleep(1.0)

    async def run_in_background(
        self, settings: Settings, stack: AsyncExitStack, *, ready: Probe | None = None
    ) -> int | None:
        """Start the metrics port (if configured) and the buffer drain; undone by `stack`."""
        tasks = [asyncio.create_task(self.drain_temporal_metrics())]

        async def stop() -> None:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        stack.push_async_callback(stop)
        port = settings.telemetry.metrics_port
        if port is None:
            return None
        server = OpsServer(self.registry, ready)
        bound = await server.start(settings.telemetry.metrics_host, port)
        stack.push_async_callback(server.close)
        log.info("metrics served", port=bound)
        self.metrics_port = bound
        return bound

    def shutdown(self) -> None:
        self.provider.shutdown()


# ---------------------------------------------------------------- wiring per process


def install_api_telemetry(app: Any, telemetry: Telemetry) -> None:
    """Server spans and request metrics for the admin API (call after other middleware)."""
    if telemetry.traced:
        instrument_app(app, telemetry.provider)
    app.add_middleware(RequestMetrics, registry=telemetry.registry)


async def start_api_telemetry(
    telemetry: Telemetry,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    stack: AsyncExitStack,
) -> BusinessMetrics:
    """The business gauges' refresh, the metrics port and the buffer drain; undone by `stack`."""
    business = BusinessMetrics(telemetry.registry)
    refresh = asyncio.create_task(
        every(
            settings.telemetry.business_metrics_interval_s,
            lambda: business.refresh(sessionmaker),
            "business metrics",
        )
    )

    async def stop() -> None:
        refresh.cancel()
        await asyncio.gather(refresh, return_exceptions=True)

    stack.push_async_callback(stop)
    await telemetry.run_in_background(settings, stack)
    return business

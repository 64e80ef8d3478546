"""The admin API application: built by `create_app`, its clients made in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from temporalio.client import Client

from api.auth import build_verifier
from api.context import ApiContext
from api.docs import install_offline_docs
from api.errors import install_error_handlers
from api.middleware import AllowedMethods, BodySizeLimit, CodecCors, SecurityHeaders
from api.openapi import install_openapi, methods_by_path
from api.ratelimit import RateLimiter
from api.routers import (
    absence_events,
    administration,
    case_actions,
    cases,
    codec,
    health,
    instruments,
    meeting_teams,
    programme,
    reports,
)
from core.codec import EncryptionCodec, KeyRing
from core.identity import IdentityProtector
from core.logging import configure_logging
from core.observability import (
    Telemetry,
    install_api_telemetry,
    start_api_telemetry,
)
from core.process import freeze_start_up
from core.secrets import load_secrets
from core.settings import Settings
from core.temporal import connect
from store.contacts import ContactProtector
from store.db import create_autocommit_sessionmaker, create_engine, create_sessionmaker
from web import pages
from web.session import PageSecurityHeaders

NO_NATIVE_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
    "auto_configure": False,
}


def create_app(
    settings: Settings | None = None,
    *,
    temporal_client: Client | None = None,
    telemetry: Telemetry | None = None,
) -> FastAPI:
    """Build the API. Tests hand in their own settings and Temporal client.

    With `telemetry`: traces, request metrics and business gauges (core.observability).
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        secrets = load_secrets(settings)
        engine = create_engine(settings)
        if telemetry is not None:
            telemetry.instrument_engine(engine)
        # Lazy, so the API starts (and /readyz can say why it is not ready) while
        # Temporal is still coming up.
        client = temporal_client or await connect(
            settings,
            secrets,
            lazy=True,
            interceptors=telemetry.interceptors() if telemetry else (),
            runtime=telemetry.runtime if telemetry else None,
        )
        app.state.context = ApiContext(
            settings=settings,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            autocommit=create_autocommit_sessionmaker(engine),
            temporal=client,
            identity=IdentityProtector(
                KeyRing.from_config(secrets.pin_encryption_keys), secrets.pin_lookup_key
            ),
            verifier=build_verifier(settings),
            limiter=RateLimiter(settings.api.rate_limit_per_minute, settings.api.rate_limit_burst),
            codec=EncryptionCodec(KeyRing.from_config(secrets.payload_keys)),
            instruments=instruments.load_registry(settings.screening.instruments_dir),
            contacts=ContactProtector(KeyRing.from_config(secrets.pin_encryption_keys)),
        )
        try:
            async with AsyncExitStack() as stack:
                if telemetry is not None:
                    await start_api_telemetry(
                        telemetry, settings, app.state.context.sessionmaker, stack
                    )
                yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="rehabflow admin API",
        version="0.1.0",
        description=(
            "Coordinators, managers, Försäkringskassan officers, occupational health and "
            "employees act on rehabilitation cases; every case is a Temporal workflow. "
            "Every `/api/v1` and `/codec` endpoint needs a bearer JWT; each role sees only "
            "the cases and the fields that DESIGN.md allows it (a case it may not see is "
            "`404`, an action its role may not take is `403`)."
        ),
        lifespan=lifespan,
        # Served by install_offline_docs from a bundled copy, not from a CDN.
        docs_url=None,
        redoc_url=None,
        # FastAPI's own telemetry would trace every request whenever a global tracer
        # provider exists (ours always does), exporter or not, and doubles the server spans
        # and request metrics that core.observability adds, by route template, through the
        # privacy filter, and only when an exporter is configured.
        telemetry=NO_NATIVE_TELEMETRY,
    )
    install_offline_docs(app)
    install_error_handlers(app)
    install_openapi(app)
    app.include_router(health.router)
    app.include_router(cases.router)
    app.include_router(case_actions.router)
    app.include_router(instruments.router)
    app.include_router(absence_events.router)
    app.include_router(codec.router)
    app.include_router(meeting_teams.router)
    app.include_router(administration.router)
    pages.install(app)
    app.include_router(reports.router)
    app.include_router(programme.router)
    # Inside the codec's CORS, which answers the UI's preflights itself.
    app.add_middleware(AllowedMethods, methods_of=methods_by_path(app))
    ui_port = settings.temporal.ui_port
    app.add_middleware(
        CodecCors,
        origins=settings.api.codec_cors_origins
        or [f"http://127.0.0.1:{ui_port}", f"http://localhost:{ui_port}"],
    )
    # The pages' Content-Security-Policy and companions (web/session.py).
    app.add_middleware(PageSecurityHeaders)
    # Outermost but for the headers, so nothing reads a body before its size is checked.
    app.add_middleware(BodySizeLimit, max_bytes=settings.api.max_body_bytes)
    if telemetry is not None:
        install_api_telemetry(app, telemetry)
    # Around everything, so even a 413 or a CORS preflight carries them.
    app.add_middleware(SecurityHeaders)
    return app


def app_factory() -> FastAPI:
    """Entry point for `uvicorn --factory api.app:app_factory`."""
    settings = Settings()
    configure_logging(settings)
    app = create_app(settings, telemetry=Telemetry.from_settings(settings, "rehabflow-api"))
    freeze_start_up()
    return app

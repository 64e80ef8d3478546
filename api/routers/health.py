"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import ContextDep
from models.api import Readiness

router = APIRouter(tags=["health"])

_CHECK_TIMEOUT_S = 3.0


@router.get("/healthz", summary="The API process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Temporal and PostgreSQL are reachable",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency is unreachable"}},
)
async def readyz(context: ContextDep) -> JSONResponse:
    async def database() -> None:
        async with context.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def temporal() -> None:
        await context.temporal.service_client.check_health()

    checks: dict[str, Literal["ok", "unavailable"]] = {}
    for name, probe in (("postgres", database), ("temporal", temporal)):
        try:
            await asyncio.wait_for(probe(), _CHECK_TIMEOUT_S)
            checks[name] = "ok"
        except Exception:
            checks[name] = "unavailable"
    ready = all(v == "ok" for v in checks.values())
    body = Readiness(status="ready" if ready else "not_ready", checks=checks)
    return JSONResponse(status_code=200 if ready else 503, content=body.model_dump())

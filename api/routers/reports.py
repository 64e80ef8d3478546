"""Evaluation reports for the analyst: aggregates only, every shown cell at least 5 people.

No endpoint here takes or returns a case id; the analyst role reads no case anywhere
(api/access.py gives it an empty scope), and every run is written to the access audit.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse

from api.auth import Caller
from api.deps import ContextDep, require_roles
from api.errors import FieldRejected
from evaluation.render import charts_svg, report_html
from evaluation.run import InvalidPeriod, run_report
from models.api import Problem, Role, ValidationProblem
from models.deadlines import STOCKHOLM
from models.reports import Report

router = APIRouter(
    prefix="/api/v1/reports",
    tags=["reports"],
    responses={
        401: {"model": Problem, "description": "No valid bearer token"},
        403: {"model": Problem, "description": "Only the analyst role runs reports"},
        422: {"model": ValidationProblem, "description": "A field was rejected"},
    },
)
Analyst = Annotated[Caller, Depends(require_roles("report.run", Role.ANALYST))]
First = Annotated[date, Query(alias="from", description="First day of the period (cases opened)")]
Last = Annotated[date, Query(alias="to", description="Last day of the period")]
ChangeOn = Annotated[
    date | None,
    Query(description="Compare cases opened before and from this date (default: mid-period)"),
]


async def _report(
    context: ContextDep, caller: Caller, first: date, last: date, change_on: date | None
) -> Report:
    try:
        return await run_report(
            context.sessionmaker,
            first=first,
            last=last,
            today=datetime.now(STOCKHOLM).date(),
            subject=caller.subject,
            role=caller.role.value,
            change_on=change_on,
        )
    except InvalidPeriod as exc:
        raise FieldRejected(exc.field, exc.reason) from None


@router.get(
    "/evaluation",
    response_model=Report,
    summary="Every measure by unit and month, by sex and age band; small cells suppressed",
)
async def evaluation(
    caller: Analyst, context: ContextDep, first: First, last: Last, change_on: ChangeOn = None
) -> Report:
    return await _report(context, caller, first, last, change_on)


@router.get(
    "/evaluation.html",
    response_class=HTMLResponse,
    summary="The same report as one self-contained HTML page with its charts",
)
async def evaluation_page(
    caller: Analyst, context: ContextDep, first: First, last: Last, change_on: ChangeOn = None
) -> HTMLResponse:
    report = await _report(context, caller, first, last, change_on)
    page = await asyncio.to_thread(lambda: report_html(report, charts_svg(report)))
    return HTMLResponse(page)

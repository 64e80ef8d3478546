"""The pages: sign-in, the case list, a case, the employee's own case, a team's calendar.

Every page reads through the API's need-to-know (`api.access`: scope, audience view,
timeline tracks) and writes the same access-audit rows; every form runs the API's action
path (`execute_case_action`). Nothing here decides who may see or do what.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.access import (
    audit_case_read,
    audit_timeline_read,
    case_view,
    deadline_views,
    scope_for,
    timeline_view,
)
from api.auth import ALL_UNITS, Caller, EmbeddedIssuer
from api.deps import audit_refusal, get_context
from api.errors import FieldRejected
from api.routers.case_actions import CaseAction, execute_case_action
from api.routers.meeting_teams import _view as team_view  # the API's own query of a team
from core.i18n import LANGUAGES, Language, gettext, negotiate, translate_reason, translations
from core.identity import InvalidPersonalIdentityNumber, parse_personnummer
from models.api import Role
from models.case import Stage
from models.instruments import Instrument
from store import case_queries
from store.audit import audit_rows
from store.meeting_teams import get_team, list_teams
from web import actions as page_actions
from web import oidc
from web.forms import (
    STOCKHOLM,
    Choice,
    FormErrors,
    FormField,
    body_from_form,
    errors_of,
    form_fields,
)
from web.session import (
    CSRF_FIELD,
    LANGUAGE_COOKIE,
    PAGE_PREFIXES,
    SESSION_COOKIE,
    SESSION_HOURS,
    SignInRequired,
    check_csrf,
    csrf_token,
    keep_csrf_cookie,
    local_path,
    page_caller,
    set_cookie,
)

HERE: Final = Path(__file__).resolve().parent
router = APIRouter(include_in_schema=False)
PageCaller = Annotated[Caller, Depends(page_caller)]

# Roles that read a case's deadlines (DESIGN: "stage, dates, deadlines" for the manager).
DEADLINE_READERS: Final = frozenset({Role.COORDINATOR, Role.MANAGER, Role.EMPLOYEE})
# Roles that see a joint-meeting team's calendar: who books and holds the meetings.
CALENDAR_READERS: Final = frozenset({Role.COORDINATOR, Role.ADMIN})
# Roles offered by the embedded dev sign-in.
DEV_ROLES: Final = (
    Role.COORDINATOR,
    Role.MANAGER,
    Role.EMPLOYEE,
    Role.FK_OFFICER,
    Role.FHV,
    Role.SOCIAL_SERVICES,
)


def _environments() -> dict[Language, Environment]:
    envs: dict[Language, Environment] = {}
    for language in LANGUAGES:
        env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
        envs[language] = env
    return envs


ENVIRONMENTS: Final = _environments()


def language_of(request: Request) -> Language:
    return negotiate(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language"))


def render(
    request: Request,
    template: str,
    *,
    caller: Caller | None = None,
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    language = language_of(request)

    def label(code: str | None) -> str:
        return "" if code is None else gettext(language, code)

    html = (
        ENVIRONMENTS[language]
        .get_template(template)
        .render(
            lang=language,
            languages=LANGUAGES,
            caller=caller,
            csrf=csrf_token(request),
            csrf_field=CSRF_FIELD,
            here=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            label=label,
            day=_day,
            when=_when,
            **values,
        )
    )
    response = HTMLResponse(html, status_code=status_code)
    keep_csrf_cookie(request, response)
    return response


NOTHING: Final = "\u2013"  # an en dash where a date is missing


def _day(value: date | None) -> str:
    return value.isoformat() if value else NOTHING


def _when(value: datetime | None) -> str:
    return value.astimezone(STOCKHOLM).strftime("%Y-%m-%d %H:%M") if value else NOTHING


def _redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=status.HTTP_303_SEE_OTHER)


async def _form(request: Request) -> FormData:
    form = await request.form()
    check_csrf(request, form)
    return form


# ---------------------------------------------------------------- sign-in and language


@router.get("/")
async def home() -> RedirectResponse:
    return _redirect("/cases")


@router.get("/signin")
async def sign_in_page(request: Request, next: str | None = None) -> Response:
    context = get_context(request)
    return render(
        request,
        "signin.html",
        next=local_path(next),
        embedded=context.settings.auth.mode == "embedded",
        roles=DEV_ROLES,
        error=None,
    )


@router.post("/signin/dev")
async def dev_sign_in(request: Request) -> Response:
    """Embedded mode only: a dev sign-in that picks a role and a unit (an employee gives the
    own identity number). The session holds a dev token, verified like any other."""
    context = get_context(request)
    if context.settings.auth.mode != "embedded":
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    form = await _form(request)
    next_path = local_path(str(form.get("next") or ""))
    try:
        role = Role(str(form.get("role", "")))
    except ValueError:
        role = None
    unit = str(form.get("unit") or "").strip()
    employee = None
    error = None
    if role is None or role not in DEV_ROLES:
        error = "Choose a role"
    elif role is Role.EMPLOYEE:
        try:
            pin = parse_personnummer(
                str(form.get("employee_ref") or ""), today=datetime.now(STOCKHOLM).date()
            )
        except InvalidPersonalIdentityNumber:
            error = "Enter a valid personal identity number"
        else:
            async with context.sessionmaker() as session:
                employee = await case_queries.pseudonym_by_lookup(
                    session, context.identity.lookup_hash(pin)
                )
            if employee is None:
                error = "No case is registered for this personal identity number"
    if error is not None:
        return render(
            request,
            "signin.html",
            status_code=422,
            next=next_path,
            embedded=True,
            roles=DEV_ROLES,
            error=error,
        )
    assert role is not None
    token = EmbeddedIssuer.load_or_create(context.settings).mint(
        role,
        subject=f"dev-{role.value}" + (f"-{unit}" if unit else ""),
        units=[unit or ALL_UNITS] if role in (Role.COORDINATOR, Role.MANAGER) else [],
        employee_pseudonym=employee,
        lifetime_s=SESSION_HOURS * 3600,
    )
    response = _redirect(next_path)
    set_cookie(response, SESSION_COOKIE, token, max_age=SESSION_HOURS * 3600)
    return response


@router.post("/signout")
async def sign_out(request: Request) -> Response:
    await _form(request)
    response = _redirect("/signin")
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="lax")
    return response


@router.post("/language")
async def choose_language(request: Request) -> Response:
    form = await _form(request)
    chosen = str(form.get("language", ""))
    response = _redirect(local_path(str(form.get("next") or "")))
    if chosen in LANGUAGES:
        set_cookie(response, LANGUAGE_COOKIE, chosen, max_age=365 * 24 * 3600)
    return response


# ---------------------------------------------------------------- the case list


@router.get("/cases")
async def cases_page(
    request: Request,
    caller: PageCaller,
    stage: str | None = None,
    unit: str | None = None,
    overdue: str | None = None,
) -> Response:
    context = get_context(request)
    stage_filter = stage if stage in {s.value for s in Stage} else None
    overdue_filter = {"yes": True, "no": False}.get(overdue or "")
    async with context.sessionmaker() as session:
        rows, total = await case_queries.list_cases(
            session,
            scope_for(caller),
            case_queries.CaseFilters(
                stage=stage_filter, unit_code=(unit or "").strip() or None, overdue=overdue_filter
            ),
            limit=200,
            offset=0,
            urgent_first=True,
        )
    if caller.role is Role.EMPLOYEE and len(rows) == 1 and not request.url.query:
        return _redirect(f"/cases/{rows[0].id}")
    return render(
        request,
        "cases.html",
        caller=caller,
        cases=rows,
        total=total,
        stages=list(Stage),
        filters={"stage": stage_filter, "unit": unit or "", "overdue": overdue or ""},
    )


# ---------------------------------------------------------------- one case


@dataclass
class ActionForm:
    action: CaseAction
    title: str
    fields: list[FormField]
    values: Mapping[str, Sequence[str]] = field(default_factory=dict)
    errors: FormErrors = field(default_factory=FormErrors)

    @property
    def name(self) -> str:
        return self.action.update

    @property
    def groups(self) -> list[tuple[str | None, list[FormField]]]:
        """Fields grouped by their repeated row (None: not in a group), in order."""
        grouped: list[tuple[str | None, list[FormField]]] = []
        for f in self.fields:
            if grouped and grouped[-1][0] == f.optional_group:
                grouped[-1][1].append(f)
            else:
                grouped.append((f.optional_group, [f]))
        return grouped


def _id_choices(view: Any, deadlines: Sequence[Any], label: Any) -> dict[str, list[Choice]]:
    """What a form may pick for this case: its open interventions, requests, next steps,
    deadlines; from the caller's own view of the case, so a form offers nothing more."""
    interventions = [
        Choice(str(i.intervention_id), f"{label(i.track.value)}: {i.kind} ({i.due_on})")
        for i in getattr(view, "interventions", [])
        if i.status not in ("completed", "cancelled")
    ]
    requests = [
        Choice(str(r.request_id), f"{label(r.party.value)} ({r.due_on})")
        for r in getattr(view, "information_requests", [])
        if r.status in ("open", "overdue")
    ]
    steps = [
        Choice(str(s.step_id), f"{label(s.track.value)}: {s.kind} ({s.due_on})")
        for s in getattr(view, "next_steps", [])
        if not s.planned
    ]
    unmet = [Choice(d.kind, label(d.kind)) for d in deadlines if d.status != "met"]
    return {
        "intervention_id": interventions,
        "request_id": requests,
        "adopt_next_steps": steps,
        "kind": unmet,
    }


def _instruments_for(action: CaseAction, registry: Mapping[tuple[str, int], Instrument]) -> Any:
    """The instruments an answers field asks: the intake set for the screening, the meeting
    set (the violence-exposure questions) at meetings; the newest version of each."""
    occasion = "intake" if action.update == "record_screening_result" else "follow_up"
    newest: dict[str, Instrument] = {}
    for (instrument_id, _), instrument in sorted(registry.items()):
        if occasion in instrument.administered_at:
            newest[instrument_id] = instrument

    def pick(_: str) -> list[Instrument]:
        return list(newest.values())

    return pick


def _forms(
    request: Request, caller: Caller, stage: Stage, view: Any, deadlines: Sequence[Any]
) -> list[ActionForm]:
    language = language_of(request)

    def label(code: str) -> str:
        return gettext(language, code)

    registry = get_context(request).instruments
    id_choices = _id_choices(view, deadlines, label)
    return [
        ActionForm(
            action,
            gettext(language, page_actions.TITLES.get(action.update, action.update)),
            form_fields(
                action.input_model,
                label=label,
                id_choices=id_choices,
                instruments=_instruments_for(action, registry),
            ),
        )
        for action in page_actions.offered(caller.role, stage)
    ]


async def _case_page(
    request: Request,
    caller: Caller,
    case_id: uuid.UUID,
    *,
    failed: ActionForm | None = None,
    status_code: int = 200,
    notice: str | None = None,
) -> Response:
    context = get_context(request)
    async with context.sessionmaker() as session:
        case = await case_queries.visible_case(session, scope_for(caller), case_id)
        if case is None:
            await audit_refusal(context, caller, "case.read", case_id)
            return render(request, "not_found.html", caller=caller, status_code=404)
        view = await case_view(session, caller.role, case)
        timeline = timeline_view(
            caller.role, case, await case_queries.timeline_of(session, case_id)
        )
        deadlines = (
            deadline_views(await case_queries.deadlines_of(session, case_id))
            if caller.role in DEADLINE_READERS
            else []
        )
        reads = (
            [row for row in await audit_rows(session, case_id) if row.allowed]
            if caller.role is Role.EMPLOYEE
            else []
        )
        await audit_case_read(session, caller, case_id, view)
        await audit_timeline_read(session, caller, case_id)
        await session.commit()
    stage = Stage(case.stage)
    forms = _forms(request, caller, stage, view, deadlines)
    if failed is not None:
        forms = [failed if f.name == failed.name else f for f in forms]
        if all(f.name != failed.name for f in forms):
            forms.insert(0, failed)
    template = "employee_case.html" if caller.role is Role.EMPLOYEE else "case.html"
    return render(
        request,
        template,
        caller=caller,
        status_code=status_code,
        case=case,
        view=view,
        stage=stage,
        stages=[s for s in Stage if s is not Stage.CLOSED],
        deadlines=deadlines,
        timeline=timeline.entries,
        forms=forms,
        failed=failed.name if failed else None,
        notice=notice,
        reads=reads,
        today=datetime.now(STOCKHOLM).date(),
    )


@router.get("/cases/{case_id}")
async def case_page(
    request: Request, case_id: uuid.UUID, caller: PageCaller, done: str | None = None
) -> Response:
    title = page_actions.TITLES.get(done or "")
    notice = gettext(language_of(request), title) if title else None
    return await _case_page(request, caller, case_id, notice=notice)


@router.post("/cases/{case_id}/actions/{action_name}")
async def submit_action(
    request: Request, case_id: uuid.UUID, action_name: str, caller: PageCaller
) -> Response:
    """A form of the case page: built into the action's body, validated by its model, and
    run through the API's own action path; 422 and 409 reasons go back next to the field."""
    action = page_actions.ACTIONS.get(action_name)
    if action is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    form = await _form(request)
    # Text fields only: an uploaded file is never part of an action.
    values = {
        key: [v for v in form.getlist(key) if isinstance(v, str)]
        for key in form
        if key != CSRF_FIELD
    }
    language = language_of(request)

    def translate(text: str) -> str:
        return gettext(language, text)

    context = get_context(request)
    async with context.sessionmaker() as session:
        case = await case_queries.visible_case(session, scope_for(caller), case_id)
        view = await case_view(session, caller.role, case) if case is not None else None
        deadlines = (
            deadline_views(await case_queries.deadlines_of(session, case_id))
            if caller.role in DEADLINE_READERS
            else []
        )
    fields = form_fields(
        action.input_model,
        label=translate,
        id_choices=_id_choices(view, deadlines, translate),
        instruments=_instruments_for(action, context.instruments),
    )
    page_form = ActionForm(
        action,
        translate(page_actions.TITLES.get(action.update, action.update)),
        fields,
        values,
    )
    try:
        body = action.input_model.model_validate(body_from_form(fields, values))
    except ValidationError as invalid:
        page_form.errors = errors_of(invalid, fields, translate)
        return await _case_page(request, caller, case_id, failed=page_form, status_code=422)
    try:
        await execute_case_action(action, case_id, body, caller, context)
    except FieldRejected as rejected:
        names = {f.name for f in fields}
        target = next(
            (n for n in sorted(names) if n == rejected.field or n.startswith(rejected.field)),
            None,
        )
        if target is None:
            page_form.errors.general.append(translate_reason(language, rejected.reason))
        else:
            page_form.errors.by_field[target] = translate_reason(language, rejected.reason)
        return await _case_page(request, caller, case_id, failed=page_form, status_code=422)
    except HTTPException as refused:
        if refused.status_code == status.HTTP_404_NOT_FOUND:
            return render(request, "not_found.html", caller=caller, status_code=404)
        page_form.errors.general.append(translate_reason(language, str(refused.detail)))
        return await _case_page(
            request, caller, case_id, failed=page_form, status_code=refused.status_code
        )
    return _redirect(f"/cases/{case_id}?done={action.update}")


# ---------------------------------------------------------------- a team's calendar


@router.get("/teams")
async def teams_page(request: Request, caller: PageCaller) -> Response:
    await _require_calendar_reader(request, caller)
    context = get_context(request)
    async with context.sessionmaker() as session:
        teams = [t for t in await list_teams(session) if _team_is_callers(caller, t.units)]
    return render(request, "teams.html", caller=caller, teams=teams)


@router.get("/teams/{code}")
async def team_page(request: Request, code: str, caller: PageCaller) -> Response:
    """The coming slots with their seats and the cases waiting: pseudonymous case ids only,
    linked to the cases the caller may open."""
    await _require_calendar_reader(request, caller)
    context = get_context(request)
    async with context.sessionmaker() as session:
        team = await get_team(session, code)
    if team is None or not _team_is_callers(caller, team.units):
        return render(request, "not_found.html", caller=caller, status_code=404)
    view = await team_view(context.temporal, code)
    return render(
        request,
        "team.html",
        caller=caller,
        team=team,
        view=view,
        now=datetime.now(UTC),
        linkable=caller.role is Role.COORDINATOR,
    )


async def _require_calendar_reader(request: Request, caller: Caller) -> None:
    if caller.role not in CALENDAR_READERS:
        await audit_refusal(get_context(request), caller, "team.read", None)
        raise HTTPException(status.HTTP_403_FORBIDDEN, "your role may not see team calendars")


def _team_is_callers(caller: Caller, units: Sequence[str]) -> bool:
    if caller.role is Role.ADMIN:
        return True
    return any(caller.covers_unit(u) for u in units)


# ---------------------------------------------------------------- wiring


async def _on_sign_in_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    return _redirect(exc.location)


def install(app: FastAPI) -> None:
    """Add the pages, their assets and the sign-in redirect to the API application. Call it
    after the API's own error handlers: a refusal on a page is a page, elsewhere the API's."""
    app.include_router(router)
    app.include_router(oidc.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(SignInRequired, _on_sign_in_required)
    api_handler = app.exception_handlers.get(StarletteHTTPException, http_exception_handler)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if not request.url.path.startswith(PAGE_PREFIXES) or request.url.path.startswith("/static"):
            answer = api_handler(request, exc)
            return await answer if inspect.isawaitable(answer) else answer
        reason = translate_reason(language_of(request), str(exc.detail))
        return render(request, "error.html", status_code=exc.status_code, reason=reason)

    app.add_exception_handler(StarletteHTTPException, on_http_error)

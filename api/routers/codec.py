"""Codec server for the Temporal UI and CLI: `/codec/decode` and `/codec/encode`.

The remote-codec protocol: `{"payloads": [{metadata, data}]}` in protobuf JSON, both ways.
Only coordinators and admins may use it, with a bearer token (the UI's "pass access token"
with OIDC, or the CLI's `--codec-auth`) or the cookie that `POST /codec/session` sets for a
browser.

Need-to-know is the API's: every payload is labelled (in clear, authenticated) with the
workflow it belongs to, and is decrypted only for a caller who may see that workflow's case.
A coordinator decodes the cases of the assigned units and the absence monitors of their
employees; an admin decodes only the operations workflows (meeting teams, the dispatcher),
never case content. A payload the caller may not see comes back still encrypted. Every
decode, allowed or refused, is written to the access audit with its case id.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Body, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response
from google.protobuf.json_format import ParseError
from sqlalchemy.ext.asyncio import AsyncSession

from api.access import scope_for
from api.auth import Caller
from api.deps import (
    CODEC_COOKIE,
    CodecCallerDep,
    ContextDep,
    audit_refusal,
    authenticate,
    client_address,
)
from core.codec import (
    DecryptionError,
    payload_workflow_id,
    payloads_from_json,
    payloads_to_json,
)
from models.api import CodecPayloads, Problem, Role
from store import case_queries
from store.audit import record_access

router = APIRouter(prefix="/codec", tags=["codec server"])

CODEC_ROLES = frozenset({Role.COORDINATOR, Role.ADMIN})
_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "model": Problem,
        "description": "Malformed payloads, or a payload that cannot be decrypted",
    },
    401: {"model": Problem, "description": "No valid bearer token or codec cookie"},
    403: {"model": Problem, "description": "Only coordinators and admins may use the codec"},
}


async def _codec_user(caller: CodecCallerDep, context: ContextDep, request: Request) -> Caller:
    what = f"codec.{request.url.path.rsplit('/', 1)[-1]}"
    if caller.role not in CODEC_ROLES:
        await audit_refusal(context, caller, what, None)
        raise HTTPException(status.HTTP_403_FORBIDDEN, "your role may not decode payloads")
    return caller


CodecUser = Annotated[Caller, Depends(_codec_user)]
PayloadsBody = Annotated[CodecPayloads, Body(description="Payloads in protobuf JSON")]


@router.post(
    "/decode",
    response_model=CodecPayloads,
    summary="Decrypt payloads for the Temporal UI or CLI (coordinator, admin), need-to-know",
    description="A payload is decrypted only when the caller may see the case (or the "
    "employee, or the operations workflow) it is labelled with; any other payload is "
    "returned unchanged, still encrypted. An unknown key, a tampered payload or a payload "
    "without key id is refused (400). Every decode is audited with its case id.",
    responses=_RESPONSES,
)
async def decode(body: PayloadsBody, caller: CodecUser, context: ContextDep) -> dict[str, Any]:
    try:
        payloads = payloads_from_json(body.model_dump())
    except ParseError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)[:200]) from None
    labels = {payload_workflow_id(p) for p in payloads}
    async with context.sessionmaker.begin() as session:
        verdicts = {label: await _may_decode(session, caller, label) for label in labels}
        out = []
        for payload in payloads:
            allowed, _ = verdicts[payload_workflow_id(payload)]
            if not allowed:
                out.append(payload)
                continue
            try:
                out.extend(await context.codec.decode([payload]))
            except DecryptionError as exc:
                raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)[:200]) from None
        for allowed, case_id in set(verdicts.values()):
            await record_access(
                await session.connection(),
                subject=caller.subject,
                role=caller.role.value,
                case_id=case_id,
                what="codec.decode",
                allowed=allowed,
            )
    return payloads_to_json(out)


async def _may_decode(
    session: AsyncSession, caller: Caller, workflow_id: str | None
) -> tuple[bool, uuid.UUID | None]:
    """Whether the caller may read payloads of this workflow, and the case they belong to."""
    if workflow_id is None:
        # Unlabelled (written before labelling, or encrypted by the codec server for the
        # CLI): nothing says whose it is, so no one decodes it here.
        return False, None
    owner = await case_queries.payload_owner(session, workflow_id)
    if owner.case_id is not None:
        if caller.role is not Role.COORDINATOR:
            return False, owner.case_id
        visible = await case_queries.visible_case(session, scope_for(caller), owner.case_id)
        return visible is not None, owner.case_id
    if owner.employee_unit is not None:
        return caller.role is Role.COORDINATOR and caller.covers_unit(owner.employee_unit), None
    return owner.operations, None


@router.post(
    "/encode",
    response_model=CodecPayloads,
    summary="Encrypt payloads typed into the Temporal UI or CLI (coordinator; admin: none)",
    description="What the CLI sends for a query without arguments (`{}`) is accepted by "
    "coordinators and admins alike. Encrypting input for a workflow means acting on a case, "
    "so only a coordinator may encrypt payloads.",
    responses=_RESPONSES,
)
async def encode(body: PayloadsBody, caller: CodecUser, context: ContextDep) -> dict[str, Any]:
    try:
        payloads = payloads_from_json(body.model_dump())
    except ParseError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)[:200]) from None
    if payloads and caller.role is not Role.COORDINATOR:
        await audit_refusal(context, caller, "codec.encode", None)
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only a coordinator may encrypt input")
    return payloads_to_json(await context.codec.encode(payloads))


_LOGIN_PAGE = """<!doctype html><meta charset="utf-8"><title>rehabflow codec</title>
<h1>Decode payloads in the Temporal UI</h1>
<p>Paste a coordinator or admin token. It is kept in an HttpOnly cookie for this host,
which the Temporal UI sends when "Include cross-origin credentials" is on.</p>
<form method="post" action="/codec/session">
<input name="token" type="password" size="60" autocomplete="off" required>
<button>Sign in</button></form>"""


@router.get(
    "/session",
    response_class=HTMLResponse,
    summary="A page to sign the browser in to the codec server",
)
async def session_page() -> HTMLResponse:
    return HTMLResponse(_LOGIN_PAGE)


@router.post(
    "/session",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Sign the browser in to the codec server (sets an HttpOnly cookie)",
    description="Form field `token` (from the page above) or a bearer token. The cookie is "
    "valid for `/codec` only, `SameSite=Strict`, for at most 8 hours; the token inside is "
    "checked on every request, so it stops working when the token expires.",
    responses=_RESPONSES,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {"token": {"type": "string"}},
                        "required": ["token"],
                    }
                }
            },
            "required": False,
        }
    },
)
async def sign_in(request: Request, context: ContextDep) -> Response:
    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else ""
    if not token:
        form = parse_qs((await request.body()).decode(errors="replace"))
        token = (form.get("token") or [""])[0].strip()
    caller = await authenticate(context, token, client_address(request))
    if caller.role not in CODEC_ROLES:
        await audit_refusal(context, caller, "codec.session", None)
        raise HTTPException(status.HTTP_403_FORBIDDEN, "your role may not decode payloads")
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.set_cookie(
        CODEC_COOKIE,
        token,
        max_age=3600 * 8,
        path="/codec",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response

"""Codec server for the Temporal UI and CLI: `/codec/decode` and `/codec/encode`.

The remote-codec protocol: `{"payloads": [{metadata, data}]}` in protobuf JSON, both ways.
Only coordinators and admins may use it, with a bearer token (the UI's "pass access token"
with OIDC, or the CLI's `--codec-auth`) or the cookie that `POST /codec/session` sets for a
browser. Every decode, and every refused attempt, is written to the access audit.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Body, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response
from google.protobuf.json_format import ParseError

from api.auth import Caller
from api.deps import (
    CODEC_COOKIE,
    CodecCallerDep,
    ContextDep,
    audit_refusal,
    authenticate,
    client_address,
)
from core.codec import DecryptionError, decode_payloads_json, encode_payloads_json
from models.api import CodecPayloads, Problem, Role
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
    summary="Decrypt payloads for the Temporal UI or CLI (coordinator, admin)",
    description="Payloads under any key of the key ring decrypt; an unknown key, a tampered "
    "payload or a payload without key id is refused (400). Audited.",
    responses=_RESPONSES,
)
async def decode(body: PayloadsBody, caller: CodecUser, context: ContextDep) -> dict[str, Any]:
    try:
        decoded = await decode_payloads_json(context.codec, body.model_dump())
    except (ParseError, DecryptionError) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)[:200]) from None
    async with context.sessionmaker.begin() as session:
        await record_access(
            session,
            subject=caller.subject,
            role=caller.role.value,
            case_id=None,
            what="codec.decode",
            allowed=True,
        )
    return decoded


@router.post(
    "/encode",
    response_model=CodecPayloads,
    summary="Encrypt payloads typed into the Temporal UI or CLI (coordinator, admin)",
    responses=_RESPONSES,
)
async def encode(body: PayloadsBody, caller: CodecUser, context: ContextDep) -> dict[str, Any]:
    try:
        return await encode_payloads_json(context.codec, body.model_dump())
    except ParseError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)[:200]) from None


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

"""Sign-in through the organisation's OIDC provider: authorization code with PKCE (authlib).

The provider's access token (audience `rehabflow-api`, with the role and unit claims the
API already reads) becomes the session: it is verified by the same verifier as every API
bearer token. The ID token's signature, issuer, audience and nonce are checked first, so a
code injected from another sign-in is refused.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import warnings
from typing import Any, Final

import httpx
import jwt
from authlib.deprecate import AuthlibDeprecationWarning
from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response

from api.deps import authenticate, client_address, get_context
from core.settings import AuthSettings
from web.session import LOGIN_COOKIE, SESSION_COOKIE, SESSION_HOURS, local_path, set_cookie

with warnings.catch_warnings():
    # authlib announces a future httpx package (httpx2) and still supports httpx, which the
    # rest of rehabflow uses; its own "always" filter is in place by now, so this one wins.
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client

router = APIRouter(include_in_schema=False)
LOGIN_MINUTES: Final = 10


async def _discovery(auth: AuthSettings) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(auth.openid_configuration_url)
        response.raise_for_status()
        document: dict[str, Any] = response.json()
    return document


def _client(auth: AuthSettings, redirect_uri: str) -> AsyncOAuth2Client:
    if not auth.client_id:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "sign-in is not configured")
    return AsyncOAuth2Client(
        client_id=auth.client_id,
        client_secret=auth.client_secret.get_secret_value() if auth.client_secret else None,
        token_endpoint_auth_method="client_secret_post" if auth.client_secret else "none",
        scope=auth.scopes,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        timeout=10,
    )


def _pack(value: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def _unpack(value: str | None) -> dict[str, str] | None:
    if not value:
        return None
    try:
        loaded = json.loads(base64.urlsafe_b64decode(value.encode()))
    except (ValueError, TypeError):
        return None
    return loaded if isinstance(loaded, dict) else None


@router.get("/signin/oidc")
async def start_sign_in(request: Request, next: str | None = None) -> Response:
    """Send the browser to the provider, with a fresh state, nonce and PKCE verifier kept in
    a short-lived HttpOnly cookie scoped to /signin."""
    auth = get_context(request).settings.auth
    if auth.mode != "oidc":
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    discovery = await _discovery(auth)
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(24)
    async with _client(auth, str(request.url_for("oidc_callback"))) as client:
        url, state = client.create_authorization_url(
            discovery["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
    response = RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)
    pending = {"state": state, "nonce": nonce, "verifier": verifier, "next": local_path(next)}
    set_cookie(response, LOGIN_COOKIE, _pack(pending), max_age=LOGIN_MINUTES * 60, path="/signin")
    return response


@router.get("/signin/callback", name="oidc_callback")
async def finish_sign_in(
    request: Request, code: str | None = None, state: str | None = None
) -> Response:
    context = get_context(request)
    auth = context.settings.auth
    if auth.mode != "oidc":
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    pending = _unpack(request.cookies.get(LOGIN_COOKIE))
    if (
        pending is None
        or not code
        or not state
        or not secrets.compare_digest(state, pending.get("state", ""))
    ):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the sign-in has expired; start again")
    discovery = await _discovery(auth)
    async with _client(auth, str(request.url_for("oidc_callback"))) as client:
        token = await client.fetch_token(
            discovery["token_endpoint"], code=code, code_verifier=pending["verifier"]
        )
    await _check_id_token(auth, discovery, token.get("id_token"), pending["nonce"])
    access_token = token.get("access_token")
    if not isinstance(access_token, str):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "the provider sent no access token")
    # The same checks as every API call.
    await authenticate(context, access_token, client_address(request))
    response = RedirectResponse(pending.get("next") or "/cases", status.HTTP_303_SEE_OTHER)
    set_cookie(response, SESSION_COOKIE, access_token, max_age=SESSION_HOURS * 3600)
    response.delete_cookie(LOGIN_COOKIE, path="/signin", secure=True, httponly=True)
    return response


async def _check_id_token(
    auth: AuthSettings, discovery: dict[str, Any], id_token: object, nonce: str
) -> None:
    if not isinstance(id_token, str):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "the provider sent no ID token")
    keys = jwt.PyJWKClient(discovery["jwks_uri"], cache_keys=False, timeout=10)
    try:
        key = await asyncio.to_thread(keys.get_signing_key_from_jwt, id_token)
        claims = jwt.decode(
            id_token,
            key.key,
            algorithms=auth.algorithms,
            audience=auth.client_id,
            issuer=discovery.get("issuer", auth.issuer),
            leeway=auth.leeway_s,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except (jwt.InvalidTokenError, jwt.PyJWKClientError):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "the ID token is not valid") from None
    if not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "the ID token is not for this sign-in")

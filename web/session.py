"""The browser's session: cookies, the CSRF check, the signed-in caller and security headers.

A signed-in page carries the same bearer JWT the JSON API takes (a dev token in embedded
mode, the provider's access token with OIDC), in an HttpOnly cookie, and is verified on
the same path (`api.deps.authenticate`): a page can never see more than the API would.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from typing import Final
from urllib.parse import quote, urlsplit

from fastapi import HTTPException, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import Caller
from api.deps import authenticate, client_address, get_context

SESSION_COOKIE: Final = "rehabflow_session"
CSRF_COOKIE: Final = "rehabflow_csrf"
LANGUAGE_COOKIE: Final = "rehabflow_lang"
LOGIN_COOKIE: Final = "rehabflow_login"
CSRF_FIELD: Final = "csrf_token"
SESSION_HOURS: Final = 8

# No inline script or style anywhere: every asset is a file under /static.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)


def set_cookie(
    response: Response,
    name: str,
    value: str,
    *,
    max_age: int,
    same_site: str = "lax",
    path: str = "/",
) -> None:
    """Every cookie of the pages is Secure, HttpOnly and SameSite (browsers accept Secure
    cookies from http://127.0.0.1 and http://localhost, so the embedded stack works too)."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        secure=True,
        httponly=True,
        samesite=same_site,  # type: ignore[arg-type]
    )


def csrf_token(request: Request) -> str:
    """The token forms carry: the CSRF cookie's value, made once per browser (double submit
    with an HttpOnly, SameSite=Strict cookie that another site can neither read nor send)."""
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if token is None:
        token = secrets.token_urlsafe(32)
        request.state.new_csrf = token
    return str(token)


def keep_csrf_cookie(request: Request, response: Response) -> None:
    new = getattr(request.state, "new_csrf", None)
    if new is not None:
        set_cookie(response, CSRF_COOKIE, new, max_age=SESSION_HOURS * 3600, same_site="strict")


def check_csrf(request: Request, form: Mapping[str, object]) -> None:
    """403 unless the form's token matches the browser's CSRF cookie (and, when the browser
    says where the form came from, it came from this origin)."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = form.get(CSRF_FIELD)
    if not cookie or not isinstance(sent, str) or not hmac.compare_digest(cookie, sent):
        raise HTTPException(403, "the form has expired; reload the page and try again")
    origin = request.headers.get("origin")
    if origin and origin != "null":
        own = f"{request.url.scheme}://{request.url.netloc}"
        if origin != own:
            raise HTTPException(403, "the form was sent from another site")


def local_path(target: str | None, default: str = "/cases") -> str:
    """A redirect target on this site only: a path, never another origin (`//host`)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target:
        return default
    return target


def sign_in_url(request: Request) -> str:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/signin?next=" + quote(here, safe="")


class SignInRequired(Exception):
    """The page needs a signed-in caller; answered with a redirect to the sign-in page."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


async def page_caller(request: Request) -> Caller:
    """The signed-in caller, verified exactly as an API bearer token; else a redirect to
    the sign-in page that comes back here afterwards (an e-mail link lands on its case)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInRequired(sign_in_url(request))
    try:
        return await authenticate(get_context(request), token, client_address(request))
    except HTTPException as exc:
        if exc.status_code == 401:
            raise SignInRequired(sign_in_url(request)) from None
        raise


# The pages' paths; the JSON API, the codec server and the OpenAPI docs keep their own headers.
PAGE_PREFIXES: Final = ("/cases", "/signin", "/signout", "/language", "/static", "/teams", "/me")


class PageSecurityHeaders:
    """The Content-Security-Policy and its companions on every page and asset."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(PAGE_PREFIXES):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in _PAGE_HEADER_NAMES
                ]
                headers.extend(_PAGE_HEADERS)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


_PAGE_HEADERS: Final = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]
_PAGE_HEADER_NAMES: Final = {name for name, _ in _PAGE_HEADERS}

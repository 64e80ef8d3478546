"""ASGI middleware: response headers, the request-body size limit, CORS for the codec server."""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class SecurityHeaders:
    """`Cache-Control: no-store` and `X-Content-Type-Options: nosniff` on every response.

    The API answers with health data: no browser, proxy or disk cache may keep a copy, and no
    browser may sniff a JSON answer into something it runs. The server banner is left out by
    uvicorn itself (`--no-server-header`), since it is added after the application answers.
    """

    _HEADERS = ((b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff"))

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in self._HEADERS}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": [*kept, *self._HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class AllowedMethods:
    """OPTIONS answers 204 with `Allow`; a method a path does not take, 405 with `Allow`.

    Starlette answers from the first route whose path matches, so a path served by two
    routes (GET and POST /api/v1/cases) named only one method, and OPTIONS got a 405.
    `methods_of(path)` gives every method of every route of the path (empty: no such path).
    """

    def __init__(self, app: ASGIApp, methods_of: Callable[[str], frozenset[str]]) -> None:
        self.app = app
        self.methods_of = methods_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        allowed = self.methods_of(scope["path"]) if scope["type"] == "http" else frozenset()
        if not allowed or scope["method"] in allowed:
            await self.app(scope, receive, send)
            return
        allow = ", ".join(sorted(allowed | {"OPTIONS"})).encode()
        if scope["method"] == "OPTIONS":
            await send(
                {"type": "http.response.start", "status": 204, "headers": [(b"allow", allow)]}
            )
            await send({"type": "http.response.body", "body": b""})
            return
        content = json.dumps({"detail": "Method Not Allowed"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 405,
                "headers": [
                    (b"allow", allow),
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(content)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": content})


class BodySizeLimit:
    """413 for a body above `max_bytes`, counted on the raw bytes before anything parses them.

    A declared Content-Length is refused at once; a chunked body is read up to the limit
    and refused as soon as it crosses it, so an oversized body is never held in full.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = True
            if too_big:
                await self._refuse(send)
                return
        # Read the whole body first (bounded by the limit), then replay it to the app.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        content = json.dumps(
            {"detail": f"the request body is larger than {self.max_bytes} bytes"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(content)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": content})


class CodecCors:
    """CORS for `/codec/*` only: the Temporal UI's origin, with credentials (the cookie).

    The case API stays same-origin; it takes bearer tokens from non-browser clients.
    """

    def __init__(self, app: ASGIApp, origins: list[str], prefix: str = "/codec") -> None:
        self.app = app
        self.prefix = prefix
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_credentials=True,
            allow_methods=["POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-Namespace"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(self.prefix):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)

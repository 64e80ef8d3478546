"""The OpenAPI schema as the API really answers: its error bodies, and every status it can send.

FastAPI documents a 422 body (`HTTPValidationError`) that this API never sends, and only the
statuses a route lists by hand. Every route shares the same refusals (a missing token, a
role without rights, the rate limit, the body limit), so they are added here once, by what
the operation takes, rather than on each route.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from models.api import FieldError, Problem, ValidationProblem

_REF = "#/components/schemas/{model}"
_METHODS = ("get", "put", "post", "delete", "patch")


def _body(model: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF.format(model=model)}}}


def _problem(description: str, **headers: str) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": _body("Problem")}
    if headers:
        response["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return response


_VALIDATION = {
    "description": "A field was rejected: each field's path and the rule, never the value",
    "content": _body("ValidationProblem"),
}
_AUTHENTICATED = {
    "401": _problem("No valid bearer token", **{"WWW-Authenticate": "Bearer realm and error code"}),
    "403": _problem("The caller's role may not do this, or the token carries no known role"),
    "429": _problem(
        "Too many requests from this caller (or, without a valid token, from this address)",
        **{"Retry-After": "Seconds until a request will be taken again"},
    ),
}
_TOO_LARGE = _problem("The request body is larger than the configured limit")


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the real error bodies and statuses to every operation of `schema`, in place."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (FieldError, ValidationProblem, Problem):
        components[model.__name__] = model.model_json_schema(ref_template=_REF)
    for path, item in schema.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            if operation.get("parameters") or operation.get("requestBody"):
                responses["422"] = {**_VALIDATION, **_described(responses.get("422"))}
            if operation.get("requestBody"):
                responses.setdefault("413", _TOO_LARGE)
            # Signing in (codec session) checks a token by hand: no scheme, the same refusals.
            if operation.get("security") or "401" in responses:
                for status, response in _AUTHENTICATED.items():
                    responses[status] = {**response, **_described(responses.get(status))}
            if "{" in path:
                responses.setdefault("404", _problem("No such resource, or not visible to you"))
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


def _described(response: dict[str, Any] | None) -> dict[str, Any]:
    """A route's own description of a status wins; the body is always the real one."""
    if not response or response.get("description") == "Validation Error":  # FastAPI's
        return {}
    return {"description": response["description"]}


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` (and /openapi.json) serve the documented errors."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def methods_by_path(app: FastAPI) -> Callable[[str], frozenset[str]]:
    """`path -> methods` of every documented route, for `Allow`."""
    table: list[tuple[re.Pattern[str], frozenset[str]]] = []

    def methods_of(path: str) -> frozenset[str]:
        if not table:
            for template, item in app.openapi()["paths"].items():
                parameters = re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template))
                methods = frozenset(m.upper() for m in item if m in _METHODS)
                table.append((re.compile(f"^{parameters}$"), methods))
        return frozenset().union(*(methods for pattern, methods in table if pattern.match(path)))

    return methods_of

"""Error responses: the field and the reason, never the rejected value."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from core.i18n import requested_language, translate_reason
from models.api import FieldError, ValidationProblem


class FieldRejected(Exception):
    """A domain rule rejected one field of an otherwise well-formed request."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _field_name(loc: tuple[int | str, ...]) -> str:
    # ("body", "unit_code") -> "unit_code"; keeps "query."/"path." prefixes visible.
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


# Messages of these error types quote fragments of the input; say the rule instead.
_REASONS_BY_TYPE = {
    "uuid_parsing": "must be a UUID",
    "uuid_type": "must be a UUID",
    "json_invalid": "the body is not valid JSON",
}


def _validation_response(request: Request, errors: list[FieldError]) -> JSONResponse:
    # The reason in the language the client asked for (Swedish or English); field names
    # are codes and stay as they are.
    language = requested_language(request.headers.get("accept-language"))
    if language is not None:
        errors = [
            FieldError(field=e.field, reason=translate_reason(language, e.reason)) for e in errors
        ]
    return JSONResponse(status_code=422, content=ValidationProblem(detail=errors).model_dump())


async def _on_request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # pydantic's messages describe the rule ("at most 32 characters"); its "input"
    # and "ctx" entries can carry the rejected value, so they are dropped.
    return _validation_response(
        request,
        [
            FieldError(
                field=_field_name(tuple(e["loc"])),
                reason=_REASONS_BY_TYPE.get(e["type"], e["msg"]),
            )
            for e in exc.errors()
        ],
    )


async def _on_field_rejected(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FieldRejected)
    return _validation_response(request, [FieldError(field=exc.field, reason=exc.reason)])


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(FieldRejected, _on_field_rejected)

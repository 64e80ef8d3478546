"""Screening instruments: the questions a form shows, in the organisation's own wording.

The registry is the shipped instruments plus the definitions in
`REHABFLOW_SCREENING__INSTRUMENTS_DIR` (e.g. licensed official wording), read once at start-up;
the same registry scores every submitted answer (models.screening).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from api.access import CASE_READERS
from api.auth import Caller
from api.deps import ContextDep, require_roles
from models.api import Problem
from models.instruments import Instrument, InvalidInstrument, load_instrument
from models.screening import Registry, registry_with

router = APIRouter(prefix="/api/v1/instruments", tags=["screening"])

Reader = Annotated[Caller, Depends(require_roles("instruments.read", *CASE_READERS))]
_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No valid bearer token"},
    403: {"model": Problem, "description": "The caller's role reads no case content"},
    429: {"model": Problem, "description": "Too many requests from this caller"},
}


def load_registry(directory: Path | None) -> Registry:
    """Shipped instruments plus every `*.json` definition in `directory`.

    A definition that cannot be used stops the start with its file and reason, rather than
    leaving the organisation's wording silently unused.
    """
    if directory is None:
        return registry_with(())
    if not directory.is_dir():
        raise InvalidInstrument(f"{directory}: the instruments directory does not exist")
    loaded = []
    for path in sorted(directory.glob("*.json")):
        try:
            loaded.append(load_instrument(path.read_text(encoding="utf-8")))
        except InvalidInstrument as invalid:
            raise InvalidInstrument(f"{path.name}: {invalid}") from None
    try:
        return registry_with(loaded)
    except ValueError as conflict:
        raise InvalidInstrument(f"{directory}: {conflict}") from None


@router.get(
    "",
    response_model=list[Instrument],
    summary="The screening instruments, with their items, scales, cut-offs and wording",
    description=(
        "What a screening form shows: each instrument's items (ids, labels, response "
        "scales), how it is scored and its bands. Answers are submitted by item id to "
        "`record-screening-result` (and the violence-exposure set with meeting outcomes); "
        "the server scores them."
    ),
    responses=_RESPONSES,
)
async def list_instruments(caller: Reader, context: ContextDep) -> list[Instrument]:
    return sorted(context.instruments.values(), key=lambda i: (i.id, i.version))

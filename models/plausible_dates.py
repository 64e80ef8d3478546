"""Plausible date windows: which fields carry which kind of date, and the check against today.

A model marks a date field with `DateOfKind(kind)` in its `Annotated` metadata; pydantic
ignores the marker, so the models stay what the workflows and their histories know. The API
and the import call `implausible_dates` with the server's date and the policy's windows;
workflow code never does (it has no "today" but `workflow.now()`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime

from pydantic import BaseModel

from models.deadlines import STOCKHOLM
from models.policy import DateKind, DateWindows


@dataclass(frozen=True)
class DateOfKind:
    """Field metadata: the field's date (or instant, read in Europe/Stockholm) is of `kind`."""

    kind: DateKind


@dataclass(frozen=True)
class ImplausibleDate:
    """A date outside its window: the field's path and the rule, never the date itself."""

    field: str
    reason: str


def _marked_fields(model: BaseModel) -> Iterator[tuple[str, DateKind | None, object]]:
    for name, info in type(model).model_fields.items():
        kind = next((m.kind for m in info.metadata if isinstance(m, DateOfKind)), None)
        yield name, kind, getattr(model, name)


def implausible_dates(
    model: BaseModel, windows: DateWindows, today: date, *, prefix: str = ""
) -> list[ImplausibleDate]:
    """Every marked date in `model` (nested models and sequences included) outside its window."""
    found: list[ImplausibleDate] = []
    for name, kind, value in _marked_fields(model):
        path = f"{prefix}{name}"
        if kind is not None and isinstance(value, date):
            day = value.astimezone(STOCKHOLM).date() if isinstance(value, datetime) else value
            window = windows.of(kind)
            if not window.contains(day, today):
                found.append(ImplausibleDate(path, window.reason))
        elif isinstance(value, BaseModel):
            found += implausible_dates(value, windows, today, prefix=f"{path}.")
        elif isinstance(value, tuple | list):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel):
                    found += implausible_dates(item, windows, today, prefix=f"{path}.{index}.")
    return found

"""HTML forms generated from an action's input model, and form data turned back into it.

A form is a list of `FormField`s built by looking at the pydantic model's fields: an enum
or a literal becomes a choice, a tuple of them a set of checkboxes, a date a date input, a
nested model a group of prefixed fields, instrument answers the instrument's items. The
submitted form is rebuilt into the JSON-shaped body the API takes, so the page validates it
with the same model and runs it through the same action path as the JSON API.
"""

from __future__ import annotations

import types
import typing
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ValidationError

from models.instruments import Instrument, ScreeningAnswers

STOCKHOLM = ZoneInfo("Europe/Stockholm")

# Widgets the templates know how to draw.
Widget = typing.Literal[
    "select", "checkboxes", "checkbox", "date", "datetime", "number", "text", "instrument"
]


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


@dataclass(frozen=True)
class FormField:
    """One input (or group of inputs) of a form; `name` is the dotted path of the body."""

    name: str
    widget: Widget
    required: bool
    choices: tuple[Choice, ...] = ()
    # A group of repeated rows (next steps, planned interventions): one blank row is drawn
    # and an all-blank row is left out of the body.
    optional_group: str | None = None
    instrument: Instrument | None = None

    @property
    def html_id(self) -> str:
        return "f-" + self.name.replace(".", "-")


# Choices that only the case knows (ids, its deadlines): field path -> the choices.
IdChoices = Mapping[str, Sequence[Choice]]
Label = Callable[[str], str]


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _strip_annotated(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _enum_values(annotation: Any) -> list[str] | None:
    annotation = _strip_annotated(annotation)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return [str(member.value) for member in annotation]
    if typing.get_origin(annotation) is typing.Literal:
        values: list[str] = []
        for arg in typing.get_args(annotation):
            values.append(str(arg.value) if isinstance(arg, Enum) else str(arg))
        return values
    return None


def form_fields(
    model: type[BaseModel],
    *,
    label: Label,
    id_choices: IdChoices,
    instruments: Callable[[str], Sequence[Instrument]],
    prefix: str = "",
    group: str | None = None,
) -> list[FormField]:
    """The inputs of `model`'s form; `instruments(field)` names the instruments a field of
    answers asks, `id_choices` the ids a field may pick from."""
    fields: list[FormField] = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        annotation, optional = _unwrap_optional(info.annotation)
        annotation = _strip_annotated(annotation)
        required = info.is_required() and not optional and group is None
        origin = typing.get_origin(annotation)
        if path in id_choices:
            many = origin in (tuple, list)
            fields.append(
                FormField(
                    path,
                    "checkboxes" if many else "select",
                    required and not many,
                    tuple(id_choices[path]),
                    group,
                )
            )
            continue
        if annotation is ScreeningAnswers or (
            origin in (tuple, list)
            and _strip_annotated(typing.get_args(annotation)[0]) is ScreeningAnswers
        ):
            many = annotation is not ScreeningAnswers
            for position, instrument in enumerate(instruments(name)):
                item_path = f"{path}.{position}" if many else path
                fields.append(FormField(item_path, "instrument", required, instrument=instrument))
            continue
        if origin in (tuple, list):
            inner = _strip_annotated(typing.get_args(annotation)[0])
            values = _enum_values(inner)
            if values is not None:
                choices = tuple(Choice(v, label(v)) for v in values)
                fields.append(FormField(path, "checkboxes", False, choices, group))
            elif isinstance(inner, type) and issubclass(inner, BaseModel):
                fields.extend(
                    form_fields(
                        inner,
                        label=label,
                        id_choices=id_choices,
                        instruments=instruments,
                        prefix=f"{path}.0.",
                        group=path,
                    )
                )
            continue
        values = _enum_values(annotation)
        if values is not None:
            choices = tuple(Choice(v, label(v)) for v in values)
            fields.append(FormField(path, "select", required, choices, group))
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields.extend(
                form_fields(
                    annotation,
                    label=label,
                    id_choices=id_choices,
                    instruments=instruments,
                    prefix=f"{path}.",
                    group=group,
                )
            )
        elif annotation is bool:
            fields.append(FormField(path, "checkbox", False, (), group))
        elif annotation is date:
            fields.append(FormField(path, "date", required, (), group))
        elif annotation in (datetime, AwareDatetime):
            fields.append(FormField(path, "datetime", required, (), group))
        elif annotation is int:
            fields.append(FormField(path, "number", required, (), group))
        elif annotation is uuid.UUID:
            continue  # an id the server makes (meeting_id, slot_id): never typed in
        else:
            fields.append(FormField(path, "text", required, (), group))
    return fields


# ---------------------------------------------------------------- form data -> body


def _set(body: dict[str, Any], path: Sequence[str], value: Any) -> None:
    node: Any = body
    for part, following in zip(path, [*path[1:], None], strict=True):
        if following is None:
            node[part] = value
            return
        node = node.setdefault(part, {})


def _lists(node: Any) -> Any:
    """Dicts keyed "0", "1", … become lists, recursively."""
    if isinstance(node, dict):
        converted = {k: _lists(v) for k, v in node.items()}
        if converted and all(k.isdigit() for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        return converted
    return node


def _blank(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_blank(v) for v in value.values())
    if isinstance(value, list):
        return all(_blank(v) for v in value)
    return value in (None, "", False)


def _local_datetime(text: str) -> str:
    """`2026-12-01T09:00` typed in a page means Stockholm time; the body carries the offset."""
    try:
        naive = datetime.fromisoformat(text)
    except ValueError:
        return text  # left for the model to refuse with its own reason
    if naive.tzinfo is not None:
        return naive.isoformat()
    return naive.replace(tzinfo=STOCKHOLM).isoformat()


def body_from_form(
    fields: Iterable[FormField], form: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """The JSON-shaped body of a submitted form: empty optional inputs are left out, so the
    model's own defaults and rules apply exactly as for the JSON API."""
    body: dict[str, Any] = {}
    groups: dict[str, bool] = {}
    for f in fields:
        values = [v for v in form.get(f.name, ()) if v != ""]
        if f.widget == "instrument":
            assert f.instrument is not None
            answers = {
                item.id: form.get(f"{f.name}.answers.{item.id}", [""])[0]
                for item in f.instrument.items
            }
            if all(a == "" for a in answers.values()) and not f.required:
                continue
            _set(body, [*f.name.split("."), "instrument_id"], f.instrument.id)
            _set(body, [*f.name.split("."), "instrument_version"], f.instrument.version)
            _set(
                body,
                [*f.name.split("."), "answers"],
                {k: int(v) if v.lstrip("-").isdigit() else v for k, v in answers.items() if v},
            )
            continue
        if f.widget == "checkboxes":
            value: Any = list(values)
            if f.optional_group is None and not value:
                continue
        elif f.widget == "checkbox":
            value = bool(values)
        elif not values:
            continue
        elif f.widget == "datetime":
            value = _local_datetime(values[0])
        elif f.widget == "number":
            value = int(values[0]) if values[0].lstrip("-").isdigit() else values[0]
        else:
            value = values[0]
        if f.optional_group is not None:
            groups.setdefault(f.optional_group, False)
            if not _blank(value):
                groups[f.optional_group] = True
        _set(body, f.name.split("."), value)
    body = _lists(body)
    for group, filled in groups.items():
        if not filled:
            _drop(body, group.split("."))
    return body


def _drop(body: dict[str, Any], path: Sequence[str]) -> None:
    node: Any = body
    for part in path[:-1]:
        node = node.get(part, {})
    if isinstance(node, dict):
        node.pop(path[-1], None)


@dataclass
class FormErrors:
    """Reasons per field path (shown next to the field) and for the whole form."""

    by_field: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.by_field or self.general)


def _field_path(loc: Sequence[int | str]) -> str:
    return ".".join(str(p) for p in loc)


def errors_of(exc: ValidationError, fields: Sequence[FormField], translate: Label) -> FormErrors:
    """Pydantic's reasons, by field (never the rejected value), attached to the nearest input."""
    names = {f.name for f in fields}
    result = FormErrors()
    for error in exc.errors(include_input=False, include_context=False, include_url=False):
        path = _field_path(error["loc"])
        reason = translate(_REASONS_BY_TYPE.get(error["type"], error["msg"]))
        target = _nearest(path, names)
        if target is None:
            result.general.append(reason)
        else:
            result.by_field.setdefault(target, reason)
    return result


def _nearest(path: str, names: set[str]) -> str | None:
    """The input a reason belongs to: the path itself, a shorter prefix, or a longer name."""
    parts = path.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in names:
            return candidate
        for name in names:  # an instrument's answers, a group's first row
            if name.startswith(candidate + "."):
                return name
        parts.pop()
    return None


_REASONS_BY_TYPE = {
    "missing": "Field required",
    "uuid_parsing": "must be a UUID",
    "date_from_datetime_parsing": "must be a date",
    "date_parsing": "must be a date",
    "datetime_from_date_parsing": "must be a date and time",
    "datetime_parsing": "must be a date and time",
    "timezone_aware": "must be a date and time",
    "too_short": "choose at least one",
    "int_parsing": "must be a whole number",
    "enum": "choose one of the options",
    "literal_error": "choose one of the options",
}

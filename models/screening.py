"""Answers in, scores out: the API's screening and meeting bodies, scored by the one engine.

A client submits answers (models.instruments.ScreeningAnswers), never scores. The API scores
them here with models.instruments.score and sends only the scores to the case workflow; the
answers are not stored, logged or sent anywhere. Protected instruments (the violence-exposure
set) are mandatory: at the intake screening, and at every meeting the employee attends —
asked "in a structured and regular way" by the party that holds the meeting.

Every refusal is an InvalidAnswers with the field's path and a reason, never the value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from models.actions import (
    AgreedNextStep,
    MeetingHost,
    MeetingTime,
    Participant,
    RecordFollowUpMeeting,
    RecordMeetingOutcome,
    RecordScreeningResult,
)
from models.case import Track
from models.instruments import (
    INSTRUMENTS,
    Instrument,
    InvalidAnswers,
    Occasion,
    ScreeningAnswers,
    ScreeningScore,
    get_instrument,
    score,
)

# Meetings (the joint meeting and every follow-up) ask the instruments of this occasion.
MEETING: Occasion = "follow_up"
_OCCASION_NAMES: Mapping[Occasion, str] = {
    "intake": "the intake screening",
    "follow_up": "a meeting",
}

Registry = Mapping[tuple[str, int], Instrument]


class InvalidSubmission(InvalidAnswers):
    """A body that cannot become a case update: the field's path and a reason, no value."""


def refuse_repeated_keys(raw: bytes) -> None:
    """Refuse a body that gives one key twice in an object, e.g. an item answered twice.

    JSON parsers keep the last of two equal keys, which would silently decide between two
    answers; the key itself is not named, since it is client text.
    """

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        if len({key for key, _ in pairs}) != len(pairs):
            raise InvalidSubmission("body", "gives the same key twice in one object")
        return dict(pairs)

    try:
        json.loads(raw, object_pairs_hook=unique)
    except ValueError as error:
        if isinstance(error, InvalidSubmission):
            raise
        # Not JSON at all: the request's own validation has already refused it.


def registry_with(loaded: Iterable[Instrument], base: Registry = INSTRUMENTS) -> Registry:
    """The base instruments plus loaded definitions, e.g. licensed official wording.

    A definition with an id and version already known replaces it only if it scores the same
    (it may change the title and item labels, nothing else): otherwise a stored score would
    mean one thing before and another after. A new version is added beside the old ones.
    """
    registry = dict(base)
    for instrument in loaded:
        key = (instrument.id, instrument.version)
        known = registry.get(key)
        if known is not None and _scoring_part(known) != _scoring_part(instrument):
            raise ValueError(
                f"{instrument.id} version {instrument.version} differs from the known "
                "definition in more than wording; give it a new version"
            )
        registry[key] = instrument
    return registry


def _scoring_part(instrument: Instrument) -> dict[str, object]:
    return instrument.model_dump(exclude={"title": True, "items": {"__all__": {"label"}}})


def mandatory_instruments(occasion: Occasion, registry: Registry = INSTRUMENTS) -> list[str]:
    """Ids of the protected instruments asked at `occasion`: they may not be left out."""
    return sorted(
        {i.id for i in registry.values() if i.protected and occasion in i.administered_at}
    )


def score_answers(
    answers: ScreeningAnswers, occasion: Occasion, *, field: str, registry: Registry = INSTRUMENTS
) -> ScreeningScore:
    """Score one filled-in instrument; `field` is where it sits in the request body."""
    try:
        instrument = get_instrument(
            answers.instrument_id, answers.instrument_version, registry=registry
        )
    except LookupError:
        if any(known_id == answers.instrument_id for known_id, _ in registry):
            raise InvalidAnswers(
                f"{field}.instrument_version", "is not a known version of the instrument"
            ) from None
        raise InvalidAnswers(f"{field}.instrument_id", "is not a known instrument") from None
    if occasion not in instrument.administered_at:
        raise InvalidAnswers(
            f"{field}.instrument_id", f"is not asked at {_OCCASION_NAMES[occasion]}"
        )
    try:
        return score(instrument, answers)
    except InvalidAnswers as invalid:
        items = {item.id for item in instrument.items}
        if invalid.field in items:
            raise InvalidAnswers(f"{field}.answers.{invalid.field}", invalid.reason) from None
        if invalid.field in ("instrument_id", "instrument_version"):
            raise InvalidAnswers(f"{field}.{invalid.field}", invalid.reason) from None
        # An unknown item id is client text: name the map, not the key.
        raise InvalidAnswers(
            f"{field}.answers", f"names an item that is not part of {instrument.id}"
        ) from None


def score_screening(
    submitted: Sequence[ScreeningAnswers],
    occasion: Occasion,
    *,
    field: str = "answers",
    registry: Registry = INSTRUMENTS,
) -> tuple[ScreeningScore, ...]:
    """Score each instrument once; the mandatory (protected) ones must all be there."""
    scores: list[ScreeningScore] = []
    for index, answers in enumerate(submitted):
        result = score_answers(answers, occasion, field=f"{field}.{index}", registry=registry)
        if any(s.instrument_id == result.instrument_id for s in scores):
            raise InvalidAnswers(f"{field}.{index}.instrument_id", "is given more than once")
        scores.append(result)
    given = {s.instrument_id for s in scores}
    for required in mandatory_instruments(occasion, registry):
        if required not in given:
            raise InvalidAnswers(
                field,
                f"must include the {required} questions, asked at {_OCCASION_NAMES[occasion]}",
            )
    return tuple(scores)


def score_meeting_questions(
    attended: Sequence[Participant],
    answers: ScreeningAnswers | None,
    *,
    field: str = "violence_questions",
    registry: Registry = INSTRUMENTS,
) -> ScreeningScore | None:
    """The questions asked at a meeting: required when the employee attended, else absent."""
    if "employee" not in attended:
        if answers is not None:
            raise InvalidAnswers(field, "is asked only of an employee who attended the meeting")
        return None
    mandatory = mandatory_instruments(MEETING, registry)
    if answers is None:
        if not mandatory:
            return None
        raise InvalidAnswers(
            field, f"is required: the {mandatory[0]} questions are asked at every meeting"
        )
    result = score_answers(answers, MEETING, field=field, registry=registry)
    if result.instrument_id not in mandatory:
        raise InvalidAnswers(
            f"{field}.instrument_id", "must be a question set asked at every meeting"
        )
    return result


def _check_host(attended: Sequence[Participant], held_by: MeetingHost) -> None:
    if held_by not in attended:
        raise InvalidSubmission("held_by", "must be one of the parties that attended")


# ---------------------------------------------------------------- API request bodies


class _Submission(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SubmitScreening(_Submission):
    """The intake screening: the answers to each instrument, including the violence-exposure
    questions. The server scores them; the answers are never stored."""

    answers: tuple[ScreeningAnswers, ...] = Field(min_length=1, max_length=10)

    def to_update(self, registry: Registry = INSTRUMENTS) -> RecordScreeningResult:
        return RecordScreeningResult(
            scores=score_screening(self.answers, "intake", registry=registry)
        )


class SubmitMeetingOutcome(_Submission):
    """The joint meeting's outcome: who attended, who held it, the needs per track, whether
    reinforced support is needed, the agreed next steps, and the answers to the
    violence-exposure questions that the holder asked (required when the employee attended)."""

    attended: tuple[Participant, ...] = Field(min_length=1)
    held_by: MeetingHost
    needs: tuple[Track, ...] = ()
    reinforced_support: bool
    next_steps: tuple[AgreedNextStep, ...] = Field(default=(), max_length=20)
    violence_questions: ScreeningAnswers | None = None

    def to_update(self, registry: Registry = INSTRUMENTS) -> RecordMeetingOutcome:
        _check_host(self.attended, self.held_by)
        return RecordMeetingOutcome(
            attended=self.attended,
            needs=self.needs,
            reinforced_support=self.reinforced_support,
            held_by=self.held_by,
            violence_screening=score_meeting_questions(
                self.attended, self.violence_questions, registry=registry
            ),
            next_steps=self.next_steps,
        )


class SubmitFollowUpMeeting(_Submission):
    """A follow-up meeting: when, who attended, who held it, and the answers to the
    violence-exposure questions asked again (required when the employee attended)."""

    starts_at: MeetingTime
    ends_at: MeetingTime
    attended: tuple[Participant, ...] = Field(min_length=1)
    held_by: MeetingHost
    violence_questions: ScreeningAnswers | None = None

    def to_update(self, registry: Registry = INSTRUMENTS) -> RecordFollowUpMeeting:
        _check_host(self.attended, self.held_by)
        if self.ends_at <= self.starts_at:
            raise InvalidSubmission("ends_at", "must be after starts_at")
        return RecordFollowUpMeeting(
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            attended=self.attended,
            held_by=self.held_by,
            violence_screening=score_meeting_questions(
                self.attended, self.violence_questions, registry=registry
            ),
        )

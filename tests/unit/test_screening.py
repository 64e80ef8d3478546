"""Answers in, scores out: what the API does with a screening or a meeting before the case."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.instruments import (
    INSTRUMENTS,
    KEDS,
    OREBRO_SHORT_FORM,
    VIOLENCE_EXPOSURE,
    WORK_ABILITY_SCORE,
    Instrument,
    InvalidAnswers,
    ScreeningAnswers,
    load_instrument,
    score,
)
from models.screening import (
    SubmitFollowUpMeeting,
    SubmitMeetingOutcome,
    SubmitScreening,
    mandatory_instruments,
    score_meeting_questions,
    score_screening,
)
from tests.unit.test_instruments import answer_dicts, answered

INTAKE = [KEDS, WORK_ABILITY_SCORE, OREBRO_SHORT_FORM]
NO = dict.fromkeys((item.id for item in VIOLENCE_EXPOSURE.items), 0)


def violence(**yes: int) -> ScreeningAnswers:
    return answered(VIOLENCE_EXPOSURE, NO | yes)


@st.composite
def intake_submissions(draw: st.DrawFn) -> list[ScreeningAnswers]:
    """Any intake screening: some of the ordinary instruments, in any order, plus the
    violence-exposure set somewhere among them."""
    chosen = draw(st.lists(st.sampled_from(INTAKE), unique_by=lambda i: i.id))
    instruments = draw(st.permutations([*chosen, VIOLENCE_EXPOSURE]))
    return [answered(i, draw(answer_dicts(i))) for i in instruments]


@given(submitted=intake_submissions())
def test_the_server_scores_every_instrument_with_the_engine(
    submitted: list[ScreeningAnswers],
) -> None:
    update = SubmitScreening(answers=tuple(submitted)).to_update()
    expected = tuple(score(INSTRUMENTS[(a.instrument_id, 1)], a) for a in submitted)
    assert update.scores == expected
    (protected,) = [s for s in update.scores if s.protected]
    assert protected.disclosure is any(submitted[update.scores.index(protected)].answers.values())


@given(chosen=st.lists(st.sampled_from(INTAKE), min_size=1, unique_by=lambda i: i.id))
def test_an_intake_screening_without_the_violence_set_is_refused(
    chosen: list[Instrument],
) -> None:
    submitted = [answered(i, {item.id: item.scale.low for item in i.items}) for i in chosen]
    with pytest.raises(InvalidAnswers) as raised:
        score_screening(submitted, "intake")
    assert raised.value.field == "answers"
    assert "violence_exposure" in raised.value.reason


@given(data=st.data())
def test_a_bad_answer_is_refused_at_its_path_without_its_value(data: st.DataObject) -> None:
    submitted = data.draw(intake_submissions())
    index = data.draw(st.integers(0, len(submitted) - 1))
    target = submitted[index]
    instrument = INSTRUMENTS[(target.instrument_id, 1)]
    item = data.draw(st.sampled_from(instrument.items))
    bad = data.draw(st.integers(1000, 10**6) | st.integers(-(10**6), -1000))
    submitted[index] = answered(instrument, dict(target.answers) | {item.id: bad})
    with pytest.raises(InvalidAnswers) as raised:
        score_screening(submitted, "intake")
    assert raised.value.field == f"answers.{index}.answers.{item.id}"
    assert str(bad) not in str(raised.value)


@given(key=st.text(min_size=1, max_size=40))
def test_an_unknown_item_is_refused_without_repeating_its_name(key: str) -> None:
    if key in {item.id for item in KEDS.items}:
        return
    stray = answered(KEDS, {item.id: 0 for item in KEDS.items} | {key: 1})
    with pytest.raises(InvalidAnswers) as raised:
        score_screening([stray, violence()], "intake")
    assert (raised.value.field, raised.value.reason) == (
        "answers.0.answers",
        "names an item that is not part of keds",
    )


@pytest.mark.parametrize(
    ("instrument_id", "version", "field", "reason"),
    [
        ("phq9", 1, "answers.0.instrument_id", "is not a known instrument"),
        ("keds", 7, "answers.0.instrument_version", "is not a known version of the instrument"),
    ],
)
def test_unknown_instruments_and_versions_are_refused(
    instrument_id: str, version: int, field: str, reason: str
) -> None:
    unknown = ScreeningAnswers(instrument_id=instrument_id, instrument_version=version, answers={})
    with pytest.raises(InvalidAnswers) as raised:
        score_screening([unknown, violence()], "intake")
    assert (raised.value.field, raised.value.reason) == (field, reason)


def test_meetings_ask_only_the_protected_set_and_only_of_an_attending_employee() -> None:
    assert mandatory_instruments("intake") == mandatory_instruments("follow_up")
    assert mandatory_instruments("follow_up") == ["violence_exposure"]
    asked = score_meeting_questions(("employee", "manager"), violence(threats=1))
    assert asked is not None and asked.protected and asked.disclosure
    assert score_meeting_questions(("manager", "fk"), None) is None
    refusals = [
        (("employee",), None, "violence_questions", "is required"),
        (("manager",), violence(), "violence_questions", "is asked only of an employee"),
        (
            ("employee",),
            answered(KEDS, dict.fromkeys((i.id for i in KEDS.items), 0)),
            "violence_questions.instrument_id",
            "is not asked at a meeting",
        ),
    ]
    for attended, answers, field, reason in refusals:
        with pytest.raises(InvalidAnswers) as raised:
            score_meeting_questions(attended, answers)  # type: ignore[arg-type]
        assert raised.value.field == field and raised.value.reason.startswith(reason)


def test_meeting_bodies_become_updates_with_scores_and_no_answers() -> None:
    outcome = SubmitMeetingOutcome(
        attended=("employee", "coordinator"),
        held_by="coordinator",
        reinforced_support=True,
        violence_questions=violence(physical=1),
    ).to_update()
    assert outcome.held_by == "coordinator"
    assert outcome.violence_screening is not None and outcome.violence_screening.disclosure
    assert "answers" not in outcome.model_dump_json()
    with pytest.raises(InvalidAnswers) as raised:
        SubmitFollowUpMeeting.model_validate(
            {
                "starts_at": "2026-11-23T10:00:00+01:00",
                "ends_at": "2026-11-23T09:00:00+01:00",
                "attended": ["manager"],
                "held_by": "manager",
            }
        ).to_update()
    assert raised.value.field == "ends_at"
    with pytest.raises(InvalidAnswers) as raised:
        SubmitMeetingOutcome(
            attended=("manager",), held_by="fk", reinforced_support=False
        ).to_update()
    assert raised.value.field == "held_by"


def test_an_organisation_loading_licensed_wording_scores_through_the_same_path() -> None:
    definition = json.loads(VIOLENCE_EXPOSURE.model_dump_json()) | {"version": 2}
    for item in definition["items"]:
        item["label"] = "Licensed wording"
    licensed = load_instrument(json.dumps(definition))
    registry = dict(INSTRUMENTS) | {(licensed.id, licensed.version): licensed}
    answers = ScreeningAnswers(
        instrument_id="violence_exposure", instrument_version=2, answers=NO | {"sexual": 1}
    )
    (result,) = score_screening([answers], "intake", registry=registry)
    assert (result.instrument_version, result.disclosure) == (2, True)

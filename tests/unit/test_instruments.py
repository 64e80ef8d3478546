"""Property and edge tests of the screening instruments and their one scoring engine."""

import ast
import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from models.instruments import (
    INSTRUMENTS,
    KEDS,
    OREBRO_SHORT_FORM,
    VIOLENCE_EXPOSURE,
    WORK_ABILITY_SCORE,
    Instrument,
    InvalidAnswers,
    InvalidInstrument,
    Item,
    ScreeningAnswers,
    get_instrument,
    load_instrument,
    score,
)

SHIPPED = list(INSTRUMENTS.values())
OREBRO_REVERSED = {"q3_light_work", "q4_sleep", "q8_work_in_three_months"}


def answered(instrument: Instrument, answers: dict[str, int]) -> ScreeningAnswers:
    return ScreeningAnswers(
        instrument_id=instrument.id, instrument_version=instrument.version, answers=answers
    )


def valid_values(item: Item) -> st.SearchStrategy[int]:
    scale = item.scale
    if scale.kind == "range":
        return st.integers(scale.min, scale.max)
    return st.sampled_from([choice.value for choice in scale.choices])


def answer_dicts(instrument: Instrument) -> st.SearchStrategy[dict[str, int]]:
    return st.fixed_dictionaries({item.id: valid_values(item) for item in instrument.items})


def spread(total: int, instrument: Instrument) -> dict[str, int]:
    """Raw answers of a sum instrument without reversed items that add up to `total`."""
    answers = {}
    for item in instrument.items:
        answers[item.id] = min(total, item.scale.high)
        total -= answers[item.id]
    assert total == 0
    return answers


def orebro_answers(item_scores: dict[str, int]) -> dict[str, int]:
    """Raw ÖMPSQ answers whose item scores are `item_scores` (others score 0)."""
    answers = {}
    for item in OREBRO_SHORT_FORM.items:
        wanted = item_scores.get(item.id, 0)
        answers[item.id] = 10 - wanted if item.id in OREBRO_REVERSED else wanted
    return answers


def shipped_as_json(instrument: Instrument) -> dict[str, Any]:
    return json.loads(instrument.model_dump_json())


# Every scorer


@pytest.mark.parametrize("instrument", SHIPPED, ids=lambda i: i.id)
@given(data=st.data())
def test_every_total_stays_within_its_bounds_and_falls_in_exactly_one_band(
    instrument: Instrument, data: st.DataObject
) -> None:
    result = score(instrument, answered(instrument, data.draw(answer_dicts(instrument))))
    low, high = instrument.total_range
    assert low <= result.total <= high
    assert [band.name for band in instrument.bands if band.min <= result.total <= band.max] == [
        result.band
    ]
    assert result.suggests_reinforced_support == (result.risk_level == "high")


@pytest.mark.parametrize("instrument", SHIPPED, ids=lambda i: i.id)
@given(data=st.data())
def test_raising_one_answer_never_moves_the_total_against_the_item_direction(
    instrument: Instrument, data: st.DataObject
) -> None:
    answers = data.draw(answer_dicts(instrument))
    item = data.draw(st.sampled_from(instrument.items))
    lower, higher = sorted(
        data.draw(st.lists(valid_values(item), min_size=2, max_size=2, unique=True))
    )
    before = score(instrument, answered(instrument, answers | {item.id: lower})).total
    after = score(instrument, answered(instrument, answers | {item.id: higher})).total
    assert after <= before if item.reverse_scored else after >= before


@pytest.mark.parametrize("instrument", SHIPPED, ids=lambda i: i.id)
def test_score_carries_no_per_item_answers(instrument: Instrument) -> None:
    answers = {item.id: item.scale.high for item in instrument.items}
    dumped = score(instrument, answered(instrument, answers)).model_dump()
    # Spelled out, so a field added later (say, the answers) has to be argued for here.
    assert set(dumped) == {
        "instrument_id",
        "instrument_version",
        "total",
        "band",
        "risk_level",
        "suggests_reinforced_support",
        "protected",
        "disclosure",
    }


# KEDS


@given(answers=answer_dicts(KEDS))
def test_keds_total_is_the_sum_and_19_or_more_means_exhaustion(answers: dict[str, int]) -> None:
    result = score(KEDS, answered(KEDS, answers))
    assert result.total == sum(answers.values())
    assert (
        (result.band == "exhaustion") == (result.total >= 19) == result.suggests_reinforced_support
    )


@pytest.mark.parametrize(
    ("total", "band", "risk_level"),
    [(18, "below_cut_off", "low"), (19, "exhaustion", "high"), (0, "below_cut_off", "low")],
)
def test_keds_cut_off_edges(total: int, band: str, risk_level: str) -> None:
    result = score(KEDS, answered(KEDS, spread(total, KEDS)))
    assert (result.total, result.band, result.risk_level) == (total, band, risk_level)


# Örebro short form


@given(answers=answer_dicts(OREBRO_SHORT_FORM))
def test_orebro_items_3_4_and_8_count_as_ten_minus_the_answer(answers: dict[str, int]) -> None:
    expected = sum(
        10 - value if item_id in OREBRO_REVERSED else value for item_id, value in answers.items()
    )
    result = score(OREBRO_SHORT_FORM, answered(OREBRO_SHORT_FORM, answers))
    assert result.total == expected
    assert (result.band == "high_risk") == (expected >= 50) == result.suggests_reinforced_support


def test_orebro_answer_0_on_item_3_contributes_10() -> None:
    lowest = orebro_answers({})
    assert score(OREBRO_SHORT_FORM, answered(OREBRO_SHORT_FORM, lowest)).total == 0
    with_item_3_at_0 = {**lowest, "q3_light_work": 0}
    assert score(OREBRO_SHORT_FORM, answered(OREBRO_SHORT_FORM, with_item_3_at_0)).total == 10


@pytest.mark.parametrize(("total", "band"), [(49, "low_risk"), (50, "high_risk")])
def test_orebro_cut_off_edges(total: int, band: str) -> None:
    # The reversed items reach 10 through raw answers of 0, so the edge relies on reversal too.
    item_scores = dict.fromkeys(OREBRO_REVERSED, 10) | {
        "q2_pain_intensity": 10,
        "q5_tension": total - 40,
    }
    result = score(OREBRO_SHORT_FORM, answered(OREBRO_SHORT_FORM, orebro_answers(item_scores)))
    assert (result.total, result.band) == (total, band)


# Work Ability Score


@pytest.mark.parametrize(
    ("answer", "band", "risk_level", "reinforced"),
    [
        (0, "poor", "high", True),
        (5, "poor", "high", True),
        (6, "moderate", "moderate", False),
        (7, "moderate", "moderate", False),
        (8, "good", "low", False),
        (10, "good", "low", False),
    ],
)
def test_work_ability_band_edges(answer: int, band: str, risk_level: str, reinforced: bool) -> None:
    result = score(
        WORK_ABILITY_SCORE, answered(WORK_ABILITY_SCORE, {"current_work_ability": answer})
    )
    assert result.total == answer
    assert (result.band, result.risk_level, result.suggests_reinforced_support) == (
        band,
        risk_level,
        reinforced,
    )


@given(answer=st.integers(0, 10))
def test_work_ability_total_is_the_single_answer(answer: int) -> None:
    result = score(
        WORK_ABILITY_SCORE, answered(WORK_ABILITY_SCORE, {"current_work_ability": answer})
    )
    assert result.total == answer
    assert result.band == ("poor" if answer <= 5 else "moderate" if answer <= 7 else "good")


# Violence exposure

VIOLENCE_ITEMS = [item.id for item in VIOLENCE_EXPOSURE.items]


def test_violence_all_no_is_no_disclosure() -> None:
    result = score(VIOLENCE_EXPOSURE, answered(VIOLENCE_EXPOSURE, dict.fromkeys(VIOLENCE_ITEMS, 0)))
    assert result.disclosure is False
    assert result.protected
    assert not result.suggests_reinforced_support


@pytest.mark.parametrize("yes_item", VIOLENCE_ITEMS)
def test_violence_any_single_yes_is_a_disclosure(yes_item: str) -> None:
    answers = dict.fromkeys(VIOLENCE_ITEMS, 0) | {yes_item: 1}
    result = score(VIOLENCE_EXPOSURE, answered(VIOLENCE_EXPOSURE, answers))
    assert result.disclosure is True
    assert result.suggests_reinforced_support


@given(yes_items=st.sets(st.sampled_from(VIOLENCE_ITEMS), min_size=1))
def test_violence_score_reveals_neither_which_nor_how_many_items_were_yes(
    yes_items: set[str],
) -> None:
    answers = {item_id: int(item_id in yes_items) for item_id in VIOLENCE_ITEMS}
    only_first = {item_id: int(item_id == VIOLENCE_ITEMS[0]) for item_id in VIOLENCE_ITEMS}
    assert score(VIOLENCE_EXPOSURE, answered(VIOLENCE_EXPOSURE, answers)) == score(
        VIOLENCE_EXPOSURE, answered(VIOLENCE_EXPOSURE, only_first)
    )


def test_violence_set_is_asked_at_intake_and_every_follow_up() -> None:
    assert set(VIOLENCE_EXPOSURE.administered_at) == {"intake", "follow_up"}


@pytest.mark.parametrize("instrument", [KEDS, WORK_ABILITY_SCORE, OREBRO_SHORT_FORM])
def test_unprotected_instruments_have_no_disclosure(instrument: Instrument) -> None:
    answers = {item.id: item.scale.high for item in instrument.items}
    assert score(instrument, answered(instrument, answers)).disclosure is None


# Rejected answers


@pytest.mark.parametrize("instrument", SHIPPED, ids=lambda i: i.id)
@given(data=st.data())
def test_missing_answer_is_rejected_naming_the_item(
    instrument: Instrument, data: st.DataObject
) -> None:
    answers = data.draw(answer_dicts(instrument))
    missing = data.draw(st.sampled_from(sorted(answers)))
    del answers[missing]
    with pytest.raises(InvalidAnswers) as raised:
        score(instrument, answered(instrument, answers))
    assert (raised.value.field, raised.value.reason) == (missing, "is not answered")
    assert str(raised.value) == f"{missing}: is not answered"


@pytest.mark.parametrize("instrument", SHIPPED, ids=lambda i: i.id)
def test_unknown_item_is_rejected_naming_it(instrument: Instrument) -> None:
    answers = {item.id: item.scale.low for item in instrument.items} | {"made_up_item": 0}
    with pytest.raises(InvalidAnswers, match=r"^made_up_item: is not an item of "):
        score(instrument, answered(instrument, answers))


@pytest.mark.parametrize("instrument", SHIPPED, ids=lambda i: i.id)
@given(data=st.data())
def test_out_of_range_answer_is_rejected_naming_the_item_without_echoing_the_value(
    instrument: Instrument, data: st.DataObject
) -> None:
    item = data.draw(st.sampled_from(instrument.items))
    valid = {item.id: item.scale.low for item in instrument.items}
    out_of_range = st.integers(-(10**6), -1000) | st.integers(1000, 10**6)
    first, second = data.draw(out_of_range), data.draw(out_of_range)
    messages = []
    for bad in (first, second):
        with pytest.raises(InvalidAnswers) as raised:
            score(instrument, answered(instrument, valid | {item.id: bad}))
        assert raised.value.field == item.id
        assert str(bad) not in str(raised.value)
        messages.append(str(raised.value))
    # Same message whatever the wrong value: nothing of the answer leaks into it.
    assert messages[0] == messages[1]
    assert messages[0].startswith(f"{item.id}: must be ")


def test_violence_answer_other_than_yes_or_no_is_rejected() -> None:
    answers = dict.fromkeys(VIOLENCE_ITEMS, 0) | {"sexual": 2}
    with pytest.raises(InvalidAnswers, match=r"^sexual: must be one of 0, 1$"):
        score(VIOLENCE_EXPOSURE, answered(VIOLENCE_EXPOSURE, answers))


@pytest.mark.parametrize(
    ("instrument_id", "version", "field"),
    [("orebro_short_form", 1, "instrument_id"), ("keds", 2, "instrument_version")],
)
def test_answers_for_another_instrument_or_version_are_rejected(
    instrument_id: str, version: int, field: str
) -> None:
    answers = ScreeningAnswers(
        instrument_id=instrument_id, instrument_version=version, answers=spread(0, KEDS)
    )
    with pytest.raises(InvalidAnswers) as raised:
        score(KEDS, answers)
    assert raised.value.field == field


def test_item_answered_twice_in_json_is_rejected_naming_it() -> None:
    body = '{"instrument_id": "work_ability_score", "instrument_version": 1,'
    body += ' "answers": {"current_work_ability": 3, "current_work_ability": 9}}'
    with pytest.raises(InvalidAnswers, match=r"^current_work_ability: is given more than once$"):
        ScreeningAnswers.from_json(body)


def test_answers_from_json_score_like_answers_built_in_python() -> None:
    body = json.dumps(
        {"instrument_id": "keds", "instrument_version": 1, "answers": spread(19, KEDS)}
    )
    assert score(KEDS, ScreeningAnswers.from_json(body)) == score(
        KEDS, answered(KEDS, spread(19, KEDS))
    )


def test_non_integer_answer_error_and_answers_repr_do_not_show_the_answer() -> None:
    with pytest.raises(ValidationError) as raised:
        answered(KEDS, {"q1_concentration": "secret-answer"})  # type: ignore[dict-item]
    assert "secret-answer" not in str(raised.value)
    assert "q1_concentration" in str(raised.value)
    assert "4242" not in repr(answered(KEDS, {"q1_concentration": 4242}))


def test_invalid_answers_survives_pickling_with_field_and_reason() -> None:
    copy = pickle.loads(pickle.dumps(InvalidAnswers("q4_sleep", "is not answered")))  # noqa: S301
    assert (copy.field, copy.reason, str(copy)) == (
        "q4_sleep",
        "is not answered",
        "q4_sleep: is not answered",
    )


# Instruments as data


@pytest.mark.parametrize("instrument", SHIPPED, ids=lambda i: i.id)
@given(data=st.data())
def test_instrument_loaded_with_official_wording_scores_like_the_shipped_one(
    instrument: Instrument, data: st.DataObject
) -> None:
    definition = shipped_as_json(instrument)
    for number, item in enumerate(definition["items"], start=1):
        item["label"] = f"Licensed official wording of question {number}"
    loaded = load_instrument(json.dumps(definition))
    assert [item.label for item in loaded.items] != [item.label for item in instrument.items]
    answers = answered(instrument, data.draw(answer_dicts(instrument)))
    assert score(loaded, answers) == score(instrument, answers)


def test_item_multipliers_weight_the_total() -> None:
    definition = shipped_as_json(WORK_ABILITY_SCORE) | {
        "scoring": {"method": "single", "multipliers": {"current_work_ability": 2}},
        "bands": [{"name": "any", "min": 0, "max": 20, "risk_level": "low"}],
    }
    weighted = load_instrument(json.dumps(definition))
    assert weighted.total_range == (0, 20)
    assert score(weighted, answered(weighted, {"current_work_ability": 7})).total == 14


def _broken(change: str) -> str:
    definition = shipped_as_json(KEDS)
    if change == "overlapping bands":
        definition["bands"][1]["min"] = 18
    elif change == "band gap":
        definition["bands"][1]["min"] = 20
    elif change == "bands short of the top":
        definition["bands"][1]["max"] = 53
    elif change == "misspelt field":
        definition["items"][0]["reverse_score"] = True
    elif change == "duplicate item id":
        definition["items"][1]["id"] = definition["items"][0]["id"]
    elif change == "multiplier for unknown item":
        definition["scoring"]["multipliers"] = {"q99": 2}
    elif change == "protected but summed":
        definition["protected"] = True
    elif change == "single with nine items":
        definition["scoring"]["method"] = "single"
    elif change == "empty scale":
        definition["items"][2]["scale"]["max"] = 0
    return json.dumps(definition)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("overlapping bands", "band 'exhaustion' should start at 19"),
        ("band gap", "band 'exhaustion' should start at 19"),
        ("bands short of the top", "bands should end at the highest possible total, 54"),
        ("misspelt field", "items.0.reverse_score: Extra inputs are not permitted"),
        ("duplicate item id", "item ids appear more than once: q1_concentration"),
        ("multiplier for unknown item", "multipliers name unknown items: q99"),
        ("protected but summed", "a protected instrument must use scoring method 'any_positive'"),
        ("single with nine items", "scoring method 'single' needs exactly one item"),
        ("empty scale", "items.2.scale.range: min must be below max"),
    ],
)
def test_invalid_instrument_definition_is_rejected_with_a_clear_reason(
    change: str, message: str
) -> None:
    with pytest.raises(InvalidInstrument) as raised:
        load_instrument(_broken(change))
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"id": "a", "id": "b"}', "key 'id' is given more than once"),
    ],
)
def test_malformed_instrument_json_is_rejected_with_a_clear_reason(text: str, message: str) -> None:
    with pytest.raises(InvalidInstrument, match=message):
        load_instrument(text)


# Registry


def test_registry_holds_the_four_shipped_instruments_by_id_and_version() -> None:
    assert set(INSTRUMENTS) == {
        ("keds", 1),
        ("work_ability_score", 1),
        ("orebro_short_form", 1),
        ("violence_exposure", 1),
    }
    assert [instrument.id for instrument in SHIPPED if instrument.protected] == [
        "violence_exposure"
    ]


def test_get_instrument_returns_the_pinned_version_or_else_the_latest() -> None:
    keds_v2 = KEDS.model_copy(update={"version": 2})
    registry = {("keds", 1): KEDS, ("keds", 2): keds_v2}
    assert get_instrument("keds", registry=registry) is keds_v2
    assert get_instrument("keds", 1, registry=registry) is KEDS
    assert get_instrument("keds") is KEDS


@pytest.mark.parametrize(("instrument_id", "version"), [("unknown", None), ("keds", 9)])
def test_get_instrument_rejects_unknown_id_or_version(
    instrument_id: str, version: int | None
) -> None:
    with pytest.raises(LookupError, match=instrument_id):
        get_instrument(instrument_id, version)


def test_instrument_module_imports_nothing_that_does_io() -> None:
    # Workflows import it inside the Temporal sandbox, which must be able to re-import it.
    source = Path(__file__).parents[2] / "models" / "instruments.py"
    imported = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported <= {"__future__", "collections", "json", "types", "typing", "pydantic"}


# Cut-off edges reached through any combination of answers (reversed items included)


@st.composite
def item_scores_totalling(draw: st.DrawFn, instrument: Instrument, total: int) -> dict[str, int]:
    """Random item scores of a sum instrument that add up to exactly `total`."""
    scores = {item.id: draw(valid_values(item)) for item in instrument.items}
    gap = total - sum(scores.values())
    for item in draw(st.permutations(instrument.items)):
        moved = min(item.scale.high, max(item.scale.low, scores[item.id] + gap))
        gap -= moved - scores[item.id]
        scores[item.id] = moved
    assert gap == 0
    return scores


def raw_answers(instrument: Instrument, item_scores: dict[str, int]) -> dict[str, int]:
    """The answers that give these item scores: a reversed item is answered mirrored."""
    return {
        item.id: item.item_score(item_scores[item.id])
        if item.reverse_scored
        else item_scores[item.id]
        for item in instrument.items
    }


@pytest.mark.parametrize(
    ("instrument", "total", "band"),
    [
        (KEDS, 18, "below_cut_off"),
        (KEDS, 19, "exhaustion"),
        (OREBRO_SHORT_FORM, 49, "low_risk"),
        (OREBRO_SHORT_FORM, 50, "high_risk"),
    ],
    ids=lambda value: getattr(value, "id", str(value)),
)
@given(data=st.data())
def test_every_way_of_reaching_a_cut_off_edge_lands_on_its_side(
    instrument: Instrument, total: int, band: str, data: st.DataObject
) -> None:
    answers = raw_answers(instrument, data.draw(item_scores_totalling(instrument, total)))
    result = score(instrument, answered(instrument, answers))
    assert (result.total, result.band) == (total, band)
    assert result.suggests_reinforced_support == (band in ("exhaustion", "high_risk"))


@given(answer=st.integers(0, 10))
def test_work_ability_cut_offs_5_6_and_7_8(answer: int) -> None:
    result = score(
        WORK_ABILITY_SCORE, answered(WORK_ABILITY_SCORE, {"current_work_ability": answer})
    )
    expected = "poor" if answer <= 5 else "moderate" if answer <= 7 else "good"
    assert (result.band, result.risk_level) == (
        expected,
        {"poor": "high", "moderate": "moderate", "good": "low"}[expected],
    )


@given(answers=answer_dicts(VIOLENCE_EXPOSURE))
def test_violence_disclosure_is_exactly_any_yes(answers: dict[str, int]) -> None:
    result = score(VIOLENCE_EXPOSURE, answered(VIOLENCE_EXPOSURE, answers))
    assert result.disclosure is any(answers.values())
    assert result.total == int(any(answers.values()))

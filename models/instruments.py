"""Screening instruments as validated data, and the one engine that scores them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    StrictInt,
    StringConstraints,
    ValidationError,
    model_validator,
)

# Ids end up in stored rows and audit lines, so keep them plain and predictable.
Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
RiskLevel = Literal["low", "moderate", "high"]
Occasion = Literal["intake", "follow_up"]


class _Frozen(BaseModel):
    # Instruments are passed through into every workflow sandbox and shared between workflows,
    # so they must not change; unknown keys are refused so a typo in loaded JSON is not ignored.
    model_config = ConfigDict(frozen=True, extra="forbid")


class InvalidAnswers(ValueError):
    """Answers that cannot be scored: names the field and the reason, never the answered value."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field, reason)  # both in args, so the error pickles and round-trips
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class InvalidInstrument(ValueError):
    """An instrument definition that cannot be used; the message lists every problem found."""


class RangeScale(_Frozen):
    """Any whole number from `min` to `max`, e.g. a 0-10 rating."""

    kind: Literal["range"] = "range"
    min: int
    max: int

    @model_validator(mode="after")
    def _ordered(self) -> RangeScale:
        if self.min >= self.max:
            raise ValueError("min must be below max")
        return self

    @property
    def low(self) -> int:
        return self.min

    @property
    def high(self) -> int:
        return self.max

    def accepts(self, answer: int) -> bool:
        return self.min <= answer <= self.max

    def describe(self) -> str:
        return f"a whole number from {self.min} to {self.max}"


class Choice(_Frozen):
    value: int
    label: str = Field(min_length=1)


class ChoiceScale(_Frozen):
    """One of a fixed list of labelled options, e.g. no = 0 / yes = 1."""

    kind: Literal["choice"] = "choice"
    choices: tuple[Choice, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _distinct(self) -> ChoiceScale:
        if len({choice.value for choice in self.choices}) != len(self.choices):
            raise ValueError("choice values must be distinct")
        return self

    @property
    def low(self) -> int:
        return min(choice.value for choice in self.choices)

    @property
    def high(self) -> int:
        return max(choice.value for choice in self.choices)

    def accepts(self, answer: int) -> bool:
        return any(choice.value == answer for choice in self.choices)

    def describe(self) -> str:
        return "one of " + ", ".join(str(choice.value) for choice in self.choices)


Scale = Annotated[RangeScale | ChoiceScale, Field(discriminator="kind")]


class Item(_Frozen):
    id: Identifier
    label: str = Field(min_length=1)
    scale: Scale
    reverse_scored: bool = False

    def item_score(self, answer: int) -> int:
        # A reverse-scored item is worded so that a high answer is the healthy one; mirroring it
        # on its scale makes every item point the same way before they are added up.
        return self.scale.low + self.scale.high - answer if self.reverse_scored else answer


class Scoring(_Frozen):
    """`sum` adds item scores, `single` takes the one item, `any_positive` is 1 if any item > 0."""

    method: Literal["sum", "single", "any_positive"]
    # Positive only, so that the total moves the same way as every item score.
    multipliers: dict[str, PositiveInt] = Field(default_factory=dict)


class Band(_Frozen):
    """A named, inclusive range of totals; the cut-offs of an instrument are its band edges."""

    name: Identifier
    min: int
    max: int
    risk_level: RiskLevel

    @model_validator(mode="after")
    def _ordered(self) -> Band:
        if self.min > self.max:
            raise ValueError(f"band {self.name!r} has min above max")
        return self


class Instrument(_Frozen):
    id: Identifier
    version: PositiveInt
    title: str = Field(min_length=1)
    items: tuple[Item, ...] = Field(min_length=1)
    scoring: Scoring
    bands: tuple[Band, ...] = Field(min_length=1)
    # Protected results (violence exposure) belong in the restricted store only.
    protected: bool = False
    # When the workflow asks it: the violence set is asked again at every follow-up meeting.
    administered_at: tuple[Occasion, ...] = ("intake",)

    def weight(self, item: Item) -> int:
        return self.scoring.multipliers.get(item.id, 1)

    @property
    def total_range(self) -> tuple[int, int]:
        if self.scoring.method == "any_positive":
            return 0, 1
        return (
            sum(self.weight(item) * item.scale.low for item in self.items),
            sum(self.weight(item) * item.scale.high for item in self.items),
        )

    def band_for(self, total: int) -> Band:
        return next(band for band in self.bands if band.min <= total <= band.max)

    @model_validator(mode="after")
    def _consistent(self) -> Instrument:
        ids = [item.id for item in self.items]
        if duplicated := sorted({item_id for item_id in ids if ids.count(item_id) > 1}):
            raise ValueError(f"item ids appear more than once: {', '.join(duplicated)}")
        if unknown := sorted(set(self.scoring.multipliers) - set(ids)):
            raise ValueError(f"multipliers name unknown items: {', '.join(unknown)}")
        if self.scoring.method == "single" and len(self.items) != 1:
            raise ValueError("scoring method 'single' needs exactly one item")
        if self.protected and self.scoring.method != "any_positive":
            # Anything richer than a yes/no flag would let a stored total reveal which
            # kinds of violence someone disclosed.
            raise ValueError("a protected instrument must use scoring method 'any_positive'")
        self._check_bands_cover_totals()
        return self

    def _check_bands_cover_totals(self) -> None:
        # Bands must tile the possible totals exactly, so every total gets one band.
        names = [band.name for band in self.bands]
        if len(set(names)) != len(names):
            raise ValueError("band names must be distinct")
        low, high = self.total_range
        expected_min = low
        for band in self.bands:
            if band.min != expected_min:
                raise ValueError(f"band {band.name!r} should start at {expected_min}")
            expected_min = band.max + 1
        if expected_min - 1 != high:
            raise ValueError(f"bands should end at the highest possible total, {high}")


class ScreeningAnswers(_Frozen):
    """One filled-in instrument: item id -> answer."""

    # Neither a validation error nor a log line may show what someone answered.
    model_config = ConfigDict(hide_input_in_errors=True)

    instrument_id: str
    instrument_version: int
    answers: dict[str, StrictInt] = Field(repr=False)

    @classmethod
    def from_json(cls, text: str) -> ScreeningAnswers:
        """Parse answers sent as JSON, refusing an item answered twice instead of keeping one."""
        try:
            return cls.model_validate(_loads_unique_keys(text))
        except _DuplicateKey as duplicate:
            raise InvalidAnswers(duplicate.key, "is given more than once") from None


class ScreeningScore(_Frozen):
    """The result of scoring: totals and bands only, never the per-item answers."""

    instrument_id: str
    instrument_version: int
    total: int
    band: str
    risk_level: RiskLevel
    suggests_reinforced_support: bool
    protected: bool
    # Only set for protected instruments; None means "not a violence-exposure instrument".
    disclosure: bool | None = None


def score(instrument: Instrument, answers: ScreeningAnswers) -> ScreeningScore:
    """Score complete, in-range answers; anything else raises InvalidAnswers."""
    _check_answers(instrument, answers)
    item_scores = [
        instrument.weight(item) * item.item_score(answers.answers[item.id])
        for item in instrument.items
    ]
    if instrument.scoring.method == "any_positive":
        total = int(any(item_score > 0 for item_score in item_scores))
    else:  # "single" is the sum over its one item
        total = sum(item_scores)
    band = instrument.band_for(total)
    return ScreeningScore(
        instrument_id=instrument.id,
        instrument_version=instrument.version,
        total=total,
        band=band.name,
        risk_level=band.risk_level,
        suggests_reinforced_support=band.risk_level == "high",
        protected=instrument.protected,
        disclosure=total > 0 if instrument.protected else None,
    )


def _check_answers(instrument: Instrument, answers: ScreeningAnswers) -> None:
    if answers.instrument_id != instrument.id:
        raise InvalidAnswers("instrument_id", f"does not match instrument {instrument.id!r}")
    if answers.instrument_version != instrument.version:
        raise InvalidAnswers("instrument_version", f"does not match version {instrument.version}")
    known = {item.id for item in instrument.items}
    if unknown := sorted(set(answers.answers) - known):
        raise InvalidAnswers(unknown[0], f"is not an item of {instrument.id}")
    for item in instrument.items:
        if item.id not in answers.answers:
            raise InvalidAnswers(item.id, "is not answered")
        if not item.scale.accepts(answers.answers[item.id]):
            raise InvalidAnswers(item.id, f"must be {item.scale.describe()}")


def load_instrument(json_text: str) -> Instrument:
    """Load an instrument definition, e.g. with licensed official wording, from JSON."""
    try:
        return Instrument.model_validate(_loads_unique_keys(json_text))
    except _DuplicateKey as duplicate:
        raise InvalidInstrument(f"key {duplicate.key!r} is given more than once") from None
    except json.JSONDecodeError as error:
        raise InvalidInstrument(f"not valid JSON: {error}") from error
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, problem['loc'])) or 'instrument'}: "
            + problem["msg"].removeprefix("Value error, ")
            for problem in error.errors(include_input=False)
        )
        raise InvalidInstrument(f"invalid instrument definition: {problems}") from error


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _loads_unique_keys(text: str) -> Any:
    # Plain json.loads silently keeps the last of two equal keys, which would hide an item
    # answered twice or a field defined twice.
    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise _DuplicateKey(key)
            result[key] = value
        return result

    return json.loads(text, object_pairs_hook=unique)


# Shipped instruments. Labels are our own neutral summaries of what each item asks about; an
# organisation holding a licence loads the official wording with load_instrument, keeping the
# item ids so that answers and scores stay comparable.


def _items(
    scale: RangeScale | ChoiceScale,
    *labels: tuple[str, str],
    reverse_scored: frozenset[str] = frozenset(),
) -> tuple[Item, ...]:
    return tuple(
        Item(id=item_id, label=label, scale=scale, reverse_scored=item_id in reverse_scored)
        for item_id, label in labels
    )


KEDS = Instrument(
    id="keds",
    version=1,
    title="Karolinska Exhaustion Disorder Scale (KEDS)",
    items=_items(
        RangeScale(min=0, max=6),
        ("q1_concentration", "Concentration: difficulty keeping focus, past two weeks"),
        ("q2_memory", "Memory: difficulty remembering, past two weeks"),
        ("q3_physical_stamina", "Physical stamina: tiredness in the body, past two weeks"),
        ("q4_mental_stamina", "Mental stamina: tiredness after mental effort, past two weeks"),
        ("q5_recovery", "Recovery: how slowly energy returns after rest, past two weeks"),
        ("q6_sleep", "Sleep: problems with sleep or feeling rested, past two weeks"),
        ("q7_sensory_load", "Sensory load: sensitivity to sound, light or crowds, past two weeks"),
        ("q8_demands", "Demands: everyday demands felt as overwhelming, past two weeks"),
        ("q9_irritability", "Irritability: being easily irritated, past two weeks"),
    ),
    scoring=Scoring(method="sum"),
    bands=(
        Band(name="below_cut_off", min=0, max=18, risk_level="low"),
        Band(name="exhaustion", min=19, max=54, risk_level="high"),
    ),
)

WORK_ABILITY_SCORE = Instrument(
    id="work_ability_score",
    version=1,
    title="Work Ability Score (WAS)",
    items=_items(
        RangeScale(min=0, max=10),
        ("current_work_ability", "Current work ability compared with your lifetime best"),
    ),
    scoring=Scoring(method="single"),
    bands=(
        Band(name="poor", min=0, max=5, risk_level="high"),
        Band(name="moderate", min=6, max=7, risk_level="moderate"),
        Band(name="good", min=8, max=10, risk_level="low"),
    ),
)

OREBRO_SHORT_FORM = Instrument(
    id="orebro_short_form",
    version=1,
    title="Örebro Musculoskeletal Pain Screening Questionnaire, short form (ÖMPSQ-SF)",
    items=_items(
        RangeScale(min=0, max=10),
        ("q1_pain_duration", "How long the current pain problem has lasted"),
        ("q2_pain_intensity", "Pain intensity during the past week"),
        ("q3_light_work", "Ability to do light work for an hour"),
        ("q4_sleep", "Ability to sleep at night despite the pain"),
        ("q5_tension", "Tension or anxiety during the past week"),
        ("q6_low_mood", "Low mood during the past week"),
        ("q7_persistence_risk", "Own estimate of the risk that the pain becomes lasting"),
        ("q8_work_in_three_months", "Own estimate of doing usual work in three months"),
        ("q9_pain_means_stop", "Belief that more pain means stopping the activity"),
        ("q10_avoid_usual_work", "Belief that usual work should wait until pain eases"),
        # These three ask about what goes well, so a high answer means low risk.
        reverse_scored=frozenset({"q3_light_work", "q4_sleep", "q8_work_in_three_months"}),
    ),
    scoring=Scoring(method="sum"),
    bands=(
        Band(name="low_risk", min=0, max=49, risk_level="low"),
        Band(name="high_risk", min=50, max=100, risk_level="high"),
    ),
)

VIOLENCE_EXPOSURE = Instrument(
    id="violence_exposure",
    version=1,
    title="Violence exposure: structured questions",
    items=_items(
        ChoiceScale(choices=(Choice(value=0, label="No"), Choice(value=1, label="Yes"))),
        ("physical", "Physical violence from someone close, now or in the past year"),
        ("psychological", "Controlling, degrading or isolating treatment from someone close"),
        ("sexual", "Sexual violence or pressure into sexual acts, now or in the past year"),
        ("threats", "Threats against you or someone close to you, now or in the past year"),
        ("at_work", "Violence or threats at work, now or in the past year"),
    ),
    scoring=Scoring(method="any_positive"),
    bands=(
        Band(name="no_disclosure", min=0, max=0, risk_level="low"),
        Band(name="disclosure", min=1, max=1, risk_level="high"),
    ),
    protected=True,
    administered_at=("intake", "follow_up"),
)

# Read-only, because the module is shared by every workflow that imports it.
INSTRUMENTS: Mapping[tuple[str, int], Instrument] = MappingProxyType(
    {
        (instrument.id, instrument.version): instrument
        for instrument in (KEDS, WORK_ABILITY_SCORE, OREBRO_SHORT_FORM, VIOLENCE_EXPOSURE)
    }
)


def get_instrument(
    instrument_id: str,
    version: int | None = None,
    *,
    registry: Mapping[tuple[str, int], Instrument] = INSTRUMENTS,
) -> Instrument:
    """The instrument at `version`, or its latest version; workflows should pin the version."""
    versions = [known_version for known_id, known_version in registry if known_id == instrument_id]
    if not versions:
        raise LookupError(f"unknown instrument {instrument_id!r}")
    chosen = max(versions) if version is None else version
    if (instrument_id, chosen) not in registry:
        raise LookupError(f"instrument {instrument_id!r} has no version {chosen}")
    return registry[(instrument_id, chosen)]

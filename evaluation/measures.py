"""What each case tells the evaluation: pure functions from a case's facts to its measures.

Days are counted between local dates (Europe/Stockholm): "days from the first sick day" is
`date - sick_start`, so a case identified on day 15 of its sick leave took 14 days.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime

from evaluation.facts import CaseFacts
from models.deadlines import local_date
from models.policy import get_policy

SEX_LABELS = {"F": "women", "M": "men"}
UNKNOWN = "unknown"
AGE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("-29", 0, 29),
    ("30-39", 30, 39),
    ("40-49", 40, 49),
    ("50-59", 50, 59),
    ("60-", 60, 200),
)
DEADLINE_OUTCOMES = ("on_time", "late", "missed")
STAGES_IN_ORDER = (
    "identified",
    "joint_meeting",
    "screening",
    "planning",
    "interventions",
    "return_to_work",
)
FULL_EXTENT = 100


def age_band(birth_year: int | None, on: date) -> str:
    """The band of the age reached in the year of `on`: coarse on purpose."""
    if birth_year is None:
        return UNKNOWN
    age = on.year - birth_year
    return next((label for label, low, high in AGE_BANDS if low <= age <= high), UNKNOWN)


def deadline_outcome(status: str, due_on: date, met_on: date | None) -> str | None:
    """`on_time`, `late` or `missed`; None while the deadline is still open (pending, due)."""
    if status == "met" and met_on is not None:
        return "on_time" if met_on <= due_on else "late"
    if status == "overdue":
        return "missed"
    return None


@dataclass(frozen=True)
class Duration:
    """Days until an event, or until the case was last observed without it (censored)."""

    days: int
    observed: bool


@dataclass(frozen=True)
class StageStay:
    stage: str
    days: int
    completed: bool


@dataclass(frozen=True)
class CaseMeasures:
    case_id: uuid.UUID
    employee: uuid.UUID
    unit: str
    opened_on: date
    month: str
    sex: str
    age_band: str
    days_to_identification: int | None
    days_to_joint_meeting: int | None
    days_to_plan: int | None
    stays: tuple[StageStay, ...]
    partial_return: Duration | None
    full_return: Duration | None
    full_return_on: date | None
    # Days from the first sick day to the end of observation, whatever happened meanwhile.
    followed_days: int | None
    relapsed: bool | None  # None: the follow-up window has not ended yet, or no full return
    deadlines: dict[str, str] = field(default_factory=dict)
    reinforced_support: bool | None = None


def _days(since: date | None, until: date | None) -> int | None:
    if since is None or until is None:
        return None
    return (until - since).days


def _first(instants: list[datetime]) -> date | None:
    return local_date(min(instants)) if instants else None


def measure_case(case: CaseFacts, as_of: date) -> CaseMeasures:
    """The case's measures, observed up to `as_of` (the report's last day, or today)."""
    opened_on = local_date(case.opened_at)
    closed_on = local_date(case.closed_at) if case.closed_at else None
    start = case.sick_start

    held_joint = [m for m in case.meetings if m.kind == "joint" and m.status == "held"]
    plan_set = [e.occurred_at for e in case.events if e.kind == "plan_set"]

    # Return to work: the first step of any extent, and the first full one.
    steps = sorted(
        (date.fromisoformat(e.detail["from_date"]), int(e.detail["extent"]))
        for e in case.events
        if e.kind == "return_to_work_step" and "from_date" in e.detail
    )
    first_return = steps[0][0] if steps else None
    full_on = next((on for on, extent in steps if extent >= FULL_EXTENT), None)
    observed_until = min(as_of, closed_on) if closed_on else as_of

    def duration(returned_on: date | None) -> Duration | None:
        if start is None:
            return None
        if returned_on is not None and returned_on <= as_of:
            return Duration((returned_on - start).days, True)
        return Duration(max(0, (observed_until - start).days), False)

    relapsed: bool | None = None
    if full_on is not None:
        policy = get_policy(case.policy_id, case.policy_version)
        window_end = max(o.after(full_on) for o in policy.follow_ups_after_return)
        relapses = [
            local_date(e.occurred_at)
            for e in case.events
            if e.kind == "relapse_reported" and full_on <= local_date(e.occurred_at) <= window_end
        ]
        if relapses:
            relapsed = True
        elif window_end <= as_of:
            relapsed = False

    outcomes = {
        d.kind: outcome
        for d in case.deadlines
        if (outcome := deadline_outcome(d.status, d.due_on, d.met_on)) is not None
    }
    reinforced = [m.reinforced_support for m in held_joint if m.reinforced_support is not None]
    return CaseMeasures(
        case_id=case.case_id,
        employee=case.employee,
        unit=case.unit,
        opened_on=opened_on,
        month=f"{opened_on:%Y-%m}",
        sex=SEX_LABELS.get(case.sex or "", UNKNOWN),
        age_band=age_band(case.birth_year, start or opened_on),
        days_to_identification=_days(start, opened_on),
        days_to_joint_meeting=_days(start, _first([m.starts_at for m in held_joint])),
        days_to_plan=_days(start, _first(plan_set)),
        stays=stage_stays(case, as_of),
        partial_return=duration(first_return),
        full_return=duration(full_on),
        full_return_on=full_on,
        followed_days=_days(start, as_of),
        relapsed=relapsed,
        deadlines=outcomes,
        reinforced_support=any(reinforced) if reinforced else None,
    )


def stage_stays(case: CaseFacts, as_of: date) -> tuple[StageStay, ...]:
    """Each stay in a stage, from the event that entered it to the one that left it.

    Events carry the stage the case is in after them, so a change of stage between two
    consecutive events is a transition. The last stay of an open case is still running.
    """
    entered: list[tuple[str, date]] = []
    for event in case.events:
        if not entered or entered[-1][0] != event.stage:
            entered.append((event.stage, local_date(event.occurred_at)))
    stays: list[StageStay] = []
    for (stage, since), (_, until) in itertools.pairwise(entered):
        stays.append(StageStay(stage, (until - since).days, True))
    if entered and entered[-1][0] != "closed":
        stage, since = entered[-1]
        stays.append(StageStay(stage, max(0, (as_of - since).days), False))
    return tuple(s for s in stays if s.stage != "closed")

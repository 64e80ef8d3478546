"""The evaluation report: every measure by unit and month, by sex and age band, suppressed.

Built from the record store's facts only (store/evaluation.py); returns `models.reports.Report`,
which holds aggregates and nothing else.
"""

from __future__ import annotations

import uuid
import warnings
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta

import numpy as np

from evaluation.facts import CaseFacts, ProgrammeFacts
from evaluation.measures import (
    AGE_BANDS,
    DEADLINE_OUTCOMES,
    STAGES_IN_ORDER,
    UNKNOWN,
    CaseMeasures,
    Duration,
    measure_case,
)
from evaluation.suppression import THRESHOLD
from evaluation.tables import ALL, Item, cross_table, share_shown
from models.deadlines import local_date
from models.reports import (
    Comparison,
    DeadlineGap,
    Report,
    ReportTable,
    ReturnToWork,
    StageStall,
    SurvivalCurve,
    UnitCoverage,
)

SEX_ORDER = ("women", "men", UNKNOWN)
AGE_ORDER = (*tuple(label for label, _, _ in AGE_BANDS), UNKNOWN)
BREAKDOWNS: dict[str, tuple[Callable[[CaseMeasures], str], Sequence[str] | None]] = {
    "unit": (lambda m: m.unit, None),
    "month": (lambda m: m.month, None),
    "sex": (lambda m: m.sex, SEX_ORDER),
    "age_band": (lambda m: m.age_band, AGE_ORDER),
}
PAIRS = (("unit", "month"), ("sex", "age_band"))
STEPS: dict[str, tuple[str, Callable[[CaseMeasures], int | None]]] = {
    "identification": (
        "Days from the first sick day to identification",
        lambda m: m.days_to_identification,
    ),
    "joint_meeting": (
        "Days from the first sick day to the first joint meeting",
        lambda m: m.days_to_joint_meeting,
    ),
    "plan": ("Days from the first sick day to the return-to-work plan", lambda m: m.days_to_plan),
}
SURVIVAL_GRID = (0, 30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 330, 365)
WITHIN_DAYS = (90, 180, 365)
STALL_DAYS = 30
TRAINING_VALID_DAYS = 365
PLAN_KIND = "return_to_work_plan"
INTERVENTION_OUTCOMES = ("achieved", "partly_achieved", "not_achieved", "cancelled", "open")
REQUEST_OUTCOMES = ("on_time", "late", "unanswered", "cancelled", "open")
BOOTSTRAP_RESAMPLES = 2000


def build_report(
    cases: Sequence[CaseFacts],
    programme: ProgrammeFacts,
    *,
    first: date,
    last: date,
    today: date,
    change_on: date | None = None,
    seed: int = 16,
) -> Report:
    """The whole report for cases opened from `first` through `last`, observed until today."""
    as_of = min(last, today)
    measured = [measure_case(c, as_of) for c in cases]
    by_id = {c.case_id: c for c in cases}
    tables: list[ReportTable] = []
    tables += _step_tables(measured)
    tables += _deadline_tables(measured)
    stage_summary, stage_tables = _stage_tables(measured)
    tables += [stage_summary, *stage_tables]
    tables += _binary_tables(
        measured,
        "relapse",
        "Relapse within the follow-up window after a full return",
        lambda m: None if m.relapsed is None else ("relapsed" if m.relapsed else "no_relapse"),
        ("relapsed", "no_relapse"),
    )
    tables += _binary_tables(
        measured,
        "reinforced_support",
        "Reinforced support decided at the joint meeting",
        lambda m: (
            None
            if m.reinforced_support is None
            else ("reinforced" if m.reinforced_support else "ordinary")
        ),
        ("reinforced", "ordinary"),
    )
    tables.append(_intervention_table(measured, by_id))
    tables += _request_tables(measured, by_id)

    people = len({m.employee for m in measured})
    change = change_on or first + (last - first) / 2
    return Report(
        first=first,
        last=last,
        generated_at=datetime.now(UTC),
        cases=len(measured) if people >= THRESHOLD else None,
        tables=tables,
        return_to_work=[
            _survival(measured, "partial", lambda m: m.partial_return),
            _survival(measured, "full", lambda m: m.full_return),
        ],
        comparisons=_comparisons(measured, programme, change, seed),
        deadline_gaps=_deadline_gaps(tables),
        stage_stalls=_stage_stalls(measured, stage_summary),
        coverage=programme_coverage(programme, as_of),
        notes=[
            f"Cases opened {first} through {last}, observed until {as_of}.",
            f"No cell shows fewer than {THRESHOLD} people; cells marked - are suppressed, some "
            "of them only so that a suppressed cell cannot be worked out from the totals.",
            "The protected (violence-exposure) track is never counted in any table.",
            "Return to work: Kaplan-Meier estimates; cases still open, or closed without a "
            "return, count until they were last observed (censored).",
            f"Routines compared: cases opened before and from {change}; and cases whose unit "
            f"had a manager trained in the {TRAINING_VALID_DAYS} days before the case opened, "
            "against the others. Intervals: 95 % bootstrap (percentile).",
        ],
    )


# ---------------------------------------------------------------- tables


def _pair_tables(
    key: str,
    title: str,
    measure: str,
    value_label: str,
    values: list[tuple[CaseMeasures, float]],
) -> list[ReportTable]:
    tables = []
    for row_name, col_name in PAIRS:
        row_of, row_order = BREAKDOWNS[row_name]
        col_of, col_order = BREAKDOWNS[col_name]
        tables.append(
            cross_table(
                f"{key}_by_{row_name}_{col_name}",
                f"{title}, by {row_name.replace('_', ' ')} and {col_name.replace('_', ' ')}",
                measure,
                [Item(row_of(m), col_of(m), m.employee, v) for m, v in values],
                row_label=row_name,
                col_label=col_name,
                row_order=row_order,
                col_order=col_order,
                value_label=value_label,
            )
        )
    return tables


def _step_tables(measured: list[CaseMeasures]) -> list[ReportTable]:
    tables = []
    for key, (title, days_of) in STEPS.items():
        values = [(m, float(d)) for m in measured if (d := days_of(m)) is not None]
        tables += _pair_tables(f"days_to_{key}", title, f"days_to_{key}", "median days", values)
    return tables


def _categorical_tables(
    key: str,
    title: str,
    measure: str,
    labelled: list[tuple[CaseMeasures, str]],
    categories: Sequence[str],
) -> list[ReportTable]:
    return [
        cross_table(
            f"{key}_by_{name}",
            f"{title}, by {name.replace('_', ' ')}",
            measure,
            [Item(row_of(m), label, m.employee) for m, label in labelled],
            row_label=name,
            col_label="outcome",
            row_order=row_order,
            col_order=categories,
            # The column totals are the same in every breakdown of this measure.
            shared_total_row=True,
        )
        for name, (row_of, row_order) in BREAKDOWNS.items()
    ]


def _deadline_tables(measured: list[CaseMeasures]) -> list[ReportTable]:
    kinds = sorted({k for m in measured for k in m.deadlines})
    tables = []
    for kind in kinds:
        labelled = [(m, m.deadlines[kind]) for m in measured if kind in m.deadlines]
        tables += _categorical_tables(
            f"deadline_{kind}",
            f"Deadline {kind}: met on time, late or missed",
            f"deadline_{kind}",
            labelled,
            DEADLINE_OUTCOMES,
        )
    return tables


def _binary_tables(
    measured: list[CaseMeasures],
    key: str,
    title: str,
    label_of: Callable[[CaseMeasures], str | None],
    categories: Sequence[str],
) -> list[ReportTable]:
    labelled = [(m, label) for m in measured if (label := label_of(m)) is not None]
    return _categorical_tables(key, title, key, labelled, categories)


def _stage_tables(measured: list[CaseMeasures]) -> tuple[ReportTable, list[ReportTable]]:
    completed = [(m, s) for m in measured for s in m.stays if s.completed]
    summary = cross_table(
        "time_in_stage",
        "Days in each stage (completed stays)",
        "time_in_stage",
        [Item(s.stage, ALL, m.employee, float(s.days)) for m, s in completed],
        row_label="stage",
        col_label=ALL,
        row_order=STAGES_IN_ORDER,
        value_label="median days",
        one_way=True,
        # Stays in different stages do not add up to anything: no total to derive from.
        margins=False,
    )
    per_stage = []
    for stage in STAGES_IN_ORDER:
        values = [(m, float(s.days)) for m, s in completed if s.stage == stage]
        per_stage += _pair_tables(
            f"time_in_{stage}",
            f"Days in stage {stage}",
            "time_in_stage",
            "median days",
            values,
        )
    return summary, per_stage


def _intervention_table(
    measured: list[CaseMeasures], by_id: dict[uuid.UUID, CaseFacts]
) -> ReportTable:
    items = []
    for m in measured:
        for iv in by_id[m.case_id].interventions:
            if iv.status == "completed" and iv.outcome:
                outcome = iv.outcome
            elif iv.status == "cancelled":
                outcome = "cancelled"
            else:
                outcome = "open"
            items.append(Item(f"{iv.track}/{iv.kind}", outcome, m.employee))
    return cross_table(
        "interventions",
        "Interventions by track and kind: outcomes",
        "interventions",
        items,
        row_label="track/kind",
        col_label="outcome",
        col_order=INTERVENTION_OUTCOMES,
    )


def _request_tables(
    measured: list[CaseMeasures], by_id: dict[uuid.UUID, CaseFacts]
) -> list[ReportTable]:
    outcomes, turnaround = [], []
    for m in measured:
        for r in by_id[m.case_id].information_requests:
            if r.received_on is not None:
                outcome = "on_time" if r.received_on <= r.due_on else "late"
                days = (r.received_on - local_date(r.requested_at)).days
                turnaround.append(Item(r.party, ALL, m.employee, float(days)))
            elif r.status == "cancelled":
                outcome = "cancelled"
            elif r.status == "overdue":
                outcome = "unanswered"
            else:
                outcome = "open"
            outcomes.append(Item(r.party, outcome, m.employee))
    return [
        cross_table(
            "information_requests",
            "Information requests per party: answered on time, late, or not",
            "information_requests",
            outcomes,
            row_label="party",
            col_label="outcome",
            col_order=REQUEST_OUTCOMES,
        ),
        cross_table(
            "information_turnaround",
            "Days from an information request to the answer, per party",
            "information_turnaround",
            turnaround,
            row_label="party",
            col_label=ALL,
            value_label="median days",
            one_way=True,
        ),
    ]


# ---------------------------------------------------------------- return to work


def _survival(
    measured: list[CaseMeasures],
    extent: str,
    duration_of: Callable[[CaseMeasures], Duration | None],
) -> ReturnToWork:
    groups: dict[str, list[tuple[uuid.UUID, Duration]]] = defaultdict(list)
    for m in measured:
        d = duration_of(m)
        if d is None:
            continue
        groups[ALL].append((m.employee, d))
        groups[m.sex].append((m.employee, d))
    overall = _km_curve(ALL, groups[ALL]) if ALL in groups else None
    by_sex = [_km_curve(group, groups[group]) for group in SEX_ORDER if group in groups]
    # All sexes or none: with the total shown, one group's head count gives the other's.
    curves = (
        [c for c in (overall, *by_sex) if c is not None]
        if all(by_sex)
        else ([overall] if overall is not None else [])
    )
    within: dict[int, float | None] = {}
    for day in WITHIN_DAYS:
        within[day] = (
            overall.share_returned[overall.days.index(day)]
            if overall is not None and day in overall.days
            else None
        )
    return ReturnToWork(extent=extent, curves=curves, within_days=within)


def _km_curve(group: str, observations: list[tuple[uuid.UUID, Duration]]) -> SurvivalCurve | None:
    """Kaplan-Meier with lifelines, shown on a monthly grid while 5 or more are at risk."""
    from lifelines import KaplanMeierFitter

    people = len({p for p, _ in observations})
    returned = sum(d.observed for _, d in observations)
    if people < THRESHOLD or (0 < returned < THRESHOLD):
        return None
    durations = np.array([d.days for _, d in observations], dtype=float)
    observed = np.array([d.observed for _, d in observations], dtype=bool)
    fitter = KaplanMeierFitter().fit(durations, observed)
    ci = fitter.confidence_interval_survival_function_
    days, share, lower, upper = [], [], [], []
    for day in SURVIVAL_GRID:
        # At risk at `day`: still without a return and still observed on that day.
        if int((durations >= day).sum()) < THRESHOLD:
            break
        surviving = float(fitter.survival_function_at_times(day).iloc[0])
        ci_at = ci[ci.index <= day].iloc[-1]
        days.append(day)
        share.append(round(1 - surviving, 3))
        # The interval of the survival function, turned into one of the share returned.
        lower.append(round(1 - float(ci_at.iloc[1]), 3))
        upper.append(round(1 - float(ci_at.iloc[0]), 3))
    return SurvivalCurve(
        group=group,
        people=people,
        returned=returned,
        days=days,
        share_returned=share,
        lower=lower,
        upper=upper,
    )


# ---------------------------------------------------------------- comparisons


def _trained_units_on(programme: ProgrammeFacts) -> Callable[[str, date], bool]:
    attended: dict[str, list[date]] = defaultdict(list)
    for manager in programme.managers:
        attended[manager.unit] += manager.attended_on

    def trained(unit: str, on: date) -> bool:
        return any(on - timedelta(days=TRAINING_VALID_DAYS) < d <= on for d in attended[unit])

    return trained


def _comparisons(
    measured: list[CaseMeasures], programme: ProgrammeFacts, change_on: date, seed: int
) -> list[Comparison]:
    trained = _trained_units_on(programme)
    splits: list[tuple[str, str, str, Callable[[CaseMeasures], bool]]] = [
        (
            "before_after",
            f"opened before {change_on}",
            f"opened from {change_on}",
            lambda m: m.opened_on >= change_on,
        ),
        (
            "trained_units",
            "unit without a trained manager",
            "unit with a trained manager",
            lambda m: trained(m.unit, m.opened_on),
        ),
    ]
    comparisons = []
    for split, label_a, label_b, in_b in splits:
        for measure, title, value_of, statistic in _COMPARED:
            a = [
                (m.employee, v) for m in measured if not in_b(m) and (v := value_of(m)) is not None
            ]
            b = [(m.employee, v) for m in measured if in_b(m) and (v := value_of(m)) is not None]
            comparisons.append(
                _compare(
                    f"{split}_{measure}", title, measure, label_a, label_b, a, b, statistic, seed
                )
            )
    return comparisons


def _plan_on_time(m: CaseMeasures) -> float | None:
    outcome = m.deadlines.get(PLAN_KIND)
    return None if outcome is None else float(outcome == "on_time")


def _full_return_180(m: CaseMeasures) -> float | None:
    d = m.full_return
    if d is None or m.followed_days is None or m.followed_days < 180:
        return None  # not followed long enough to know; excluding only those is unbiased
    return float(d.observed and d.days <= 180)


_COMPARED: list[tuple[str, str, Callable[[CaseMeasures], float | None], str]] = [
    (
        "days_to_joint_meeting",
        "Median days from the first sick day to the joint meeting",
        lambda m: None if m.days_to_joint_meeting is None else float(m.days_to_joint_meeting),
        "median",
    ),
    ("plan_on_time", "Share of return-to-work plans made on time", _plan_on_time, "share"),
    ("full_return_180", "Share fully back at work within 180 days", _full_return_180, "share"),
]


def _compare(
    key: str,
    title: str,
    measure: str,
    label_a: str,
    label_b: str,
    a: list[tuple[uuid.UUID, float]],
    b: list[tuple[uuid.UUID, float]],
    statistic: str,
    seed: int,
) -> Comparison:
    from scipy.stats import bootstrap

    people_a, people_b = len({p for p, _ in a}), len({p for p, _ in b})
    xa = np.array([v for _, v in a])
    xb = np.array([v for _, v in b])

    def publishable(x: np.ndarray, people: int) -> bool:
        if people < THRESHOLD:
            return False
        return statistic != "share" or share_shown(int(x.sum()), len(x))

    hidden = Comparison(
        key=key,
        title=title,
        measure=measure,
        group_a=label_a,
        group_b=label_b,
        # Both or neither: with one group's size and the total, the other's is known.
        people_a=people_a if min(people_a, people_b) >= THRESHOLD else None,
        people_b=people_b if min(people_a, people_b) >= THRESHOLD else None,
        value_a=None,
        value_b=None,
        difference=None,
        lower=None,
        upper=None,
        note="not shown: a group has fewer than 5 people, or a share would show a small count",
    )
    if not (publishable(xa, people_a) and publishable(xb, people_b)):
        return hidden
    summary = np.median if statistic == "median" else np.mean

    def difference(sample_b: np.ndarray, sample_a: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.asarray(summary(sample_b, axis=axis) - summary(sample_a, axis=axis))

    with warnings.catch_warnings():
        # A degenerate sample (all values equal) gives a zero-width interval; that is fine.
        warnings.simplefilter("ignore")
        result = bootstrap(
            (xb, xa),
            difference,
            n_resamples=BOOTSTRAP_RESAMPLES,
            vectorized=True,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    value_a, value_b = float(summary(xa)), float(summary(xb))
    return hidden.model_copy(
        update={
            "value_a": round(value_a, 3),
            "value_b": round(value_b, 3),
            "difference": round(value_b - value_a, 3),
            "lower": round(float(result.confidence_interval.low), 3),
            "upper": round(float(result.confidence_interval.high), 3),
            "note": "",
        }
    )


# ---------------------------------------------------------------- routine gaps


def _deadline_gaps(tables: list[ReportTable]) -> list[DeadlineGap]:
    """Where deadlines are most often late or missed: per unit and kind, from the published
    by-unit tables only, so a gap never shows more than its table does."""
    gaps = []
    for table in tables:
        if not (table.key.startswith("deadline_") and table.key.endswith("_by_unit")):
            continue
        kind = table.measure.removeprefix("deadline_")
        # Columns are the outcomes that occurred: no `on_time` column means none was on time.
        on_time_col = table.cols.index("on_time") if "on_time" in table.cols else None
        for row, unit in enumerate(table.rows):
            if unit == ALL:
                continue  # the organisation's own figure is in the table; the ranking is units
            total = table.counts[row][-1]
            on_time = table.counts[row][on_time_col] if on_time_col is not None else 0
            if on_time is None or total is None or not share_shown(total - on_time, total):
                continue
            gaps.append((unit, kind, total, (total - on_time) / total))
    gaps.sort(key=lambda g: (-g[3], g[1], g[0]))
    return [
        DeadlineGap(rank=i + 1, unit=unit, kind=kind, cases=total, missed_share=round(share, 3))
        for i, (unit, kind, total, share) in enumerate(gaps)
    ]


def _stage_stalls(measured: list[CaseMeasures], summary: ReportTable) -> list[StageStall]:
    stalls = []
    for row, stage in enumerate(summary.rows):
        open_long = {
            m.employee
            for m in measured
            for s in m.stays
            if s.stage == stage and not s.completed and s.days > STALL_DAYS
        }
        stalls.append(
            (
                stage,
                summary.counts[row][0],
                summary.values[row][0] if summary.values else None,
                len(open_long) if len(open_long) >= THRESHOLD else None,
            )
        )
    stalls.sort(key=lambda s: (s[2] is None, -(s[2] or 0), -(s[3] or 0)))
    return [
        StageStall(
            rank=i + 1,
            stage=stage,
            completed_stays=n,
            median_days=median,
            open_over_30_days=open_long,
        )
        for i, (stage, n, median, open_long) in enumerate(stalls)
    ]


# ---------------------------------------------------------------- programme coverage


def programme_coverage(programme: ProgrammeFacts, as_of: date) -> list[UnitCoverage]:
    since = as_of - timedelta(days=TRAINING_VALID_DAYS)
    rows = []
    for unit in programme.units:
        managers = [m for m in programme.managers if m.unit == unit and m.appointed_on <= as_of]
        dialogues = [
            a for a in programme.apt_dialogues if a.unit == unit and since < a.held_on <= as_of
        ]
        rows.append(
            UnitCoverage(
                unit=unit,
                managers=len(managers),
                trained_within_12_months=sum(
                    any(since < d <= as_of for d in m.attended_on) for m in managers
                ),
                apt_dialogues_12_months=len(dialogues),
                apt_participants_12_months=sum(a.participants for a in dialogues),
            )
        )
    return rows

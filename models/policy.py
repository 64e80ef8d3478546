"""Versioned rehabilitation policies: every threshold and deadline the engine applies, as data."""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from datetime import date, timedelta
from types import MappingProxyType
from typing import Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _add_months(anchor: date, months: int) -> date:
    index = anchor.year * 12 + anchor.month - 1 + months
    year, month_index = divmod(index, 12)
    month = month_index + 1
    # Clamp to month end (Jan 31 + 1 month = Feb 28/29), as dateutil's relativedelta does.
    return anchor.replace(
        year=year, month=month, day=min(anchor.day, calendar.monthrange(year, month)[1])
    )


class CalendarOffset(_Frozen):
    """A calendar distance: whole months first (clamped to the month's end), then days.

    Months are kept as months because "+3 months" and "12 months" are not a fixed number of
    days; converting them would drift by leap days and month lengths.
    """

    months: int = Field(default=0, ge=0)
    days: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _positive(self) -> Self:
        if self.months == 0 and self.days == 0:
            raise ValueError("a calendar offset must be at least one day or one month")
        return self

    def after(self, anchor: date) -> date:
        return _add_months(anchor, self.months) + timedelta(days=self.days)

    def before(self, anchor: date) -> date:
        return _add_months(anchor, -self.months) - timedelta(days=self.days)


# Case actions that can meet a deadline rule on their own (names of RehabCaseWorkflow updates).
MetByAction = Literal["set_plan", "record_meeting_outcome"]


class DeadlineRule(_Frozen):
    """A dated obligation counted in sick days of a sick period (Day 1 = first sick day)."""

    # Stable key: a case records "met" and "overdue" against it, so never rename a kind.
    kind: str = Field(min_length=1, pattern=r"^[a-z0-9_]+$")
    sick_day: PositiveInt
    # Rule applies only when the period is expected to last at least this many sick days.
    expected_sick_days_at_least: PositiveInt | None = None
    # Shown in the Temporal UI and notifications: fixed text, never personal data.
    description: str = Field(min_length=1)
    # The case action that fulfils the obligation by itself; None: the coordinator marks it
    # met explicitly (e.g. the sick notice was sent to Försäkringskassan).
    met_by_action: MetByAction | None = None


class DateWindow(_Frozen):
    """How far from today a date of one kind may plausibly lie, both ends included.

    A date outside is far more likely a typo or a broken export (year 1, year 9999) than a
    fact; such dates would be written for good into the append-only timeline, and an old
    enough start would open a long-term case. `None` on a side means "not beyond today".
    """

    back: CalendarOffset | None
    ahead: CalendarOffset | None
    rationale: str = Field(min_length=1)

    def earliest(self, today: date) -> date:
        return self.back.before(today) if self.back else today

    def latest(self, today: date) -> date:
        return self.ahead.after(today) if self.ahead else today

    def contains(self, day: date, today: date) -> bool:
        return self.earliest(today) <= day <= self.latest(today)

    @property
    def reason(self) -> str:
        """The rule in words, for a 422: the window relative to today, never the date given."""

        def side(offset: CalendarOffset | None, where: str) -> str:
            if offset is None:
                return "today"
            parts = [f"{offset.months} months"] if offset.months else []
            parts += [f"{offset.days} days"] if offset.days else []
            return f"{' and '.join(parts)} {where} today"

        return f"must lie between {side(self.back, 'before')} and {side(self.ahead, 'after')}"


# The kinds of date the API and the import accept; models name theirs with `DateOfKind`.
DateKind = Literal[
    "sick_leave_start",
    "sick_leave_expected_end",
    "absence",
    "meeting",
    "due_date",
    "return_to_work",
    "fact_recorded",
]


class DateWindows(_Frozen):
    """Plausible windows, per kind of date, for every date a person or HR system sends."""

    sick_leave_start: DateWindow
    sick_leave_expected_end: DateWindow
    absence: DateWindow
    meeting: DateWindow
    due_date: DateWindow
    return_to_work: DateWindow
    fact_recorded: DateWindow

    def of(self, kind: DateKind) -> DateWindow:
        window: DateWindow = getattr(self, kind)
        return window


PLAUSIBLE_DATES: Final = DateWindows(
    sick_leave_start=DateWindow(
        back=CalendarOffset(months=60),
        ahead=CalendarOffset(days=31),
        rationale="The rehabilitation chain's last checkpoint is day 550 (about 18 months) and "
        "the long-term track starts on day 366; five years back still admits a long "
        "sick leave that is registered late. A start up to a month ahead covers leave "
        "certified before a planned operation.",
    ),
    sick_leave_expected_end=DateWindow(
        back=CalendarOffset(months=60),
        ahead=CalendarOffset(months=24),
        rationale="Medical certificates rarely look more than a year ahead; two years leaves "
        "room for the long-term track. The end of a leave that started within the start "
        "window may lie as far back as that start.",
    ),
    absence=DateWindow(
        back=CalendarOffset(months=60),
        ahead=CalendarOffset(months=24),
        rationale="Payroll exports cover the past; an absence older than five years cannot "
        "trigger anything (monitors keep twelve months, the long-term track needs 366 "
        "days) except by mistake. Planned absences and expected ends lie ahead, at most "
        "as far as a certificate's expected end.",
    ),
    meeting=DateWindow(
        back=CalendarOffset(months=12),
        ahead=CalendarOffset(months=12),
        rationale="Joint meetings are booked every second week and follow-ups within six "
        "months of the return; a meeting recorded a year late, or booked more than a "
        "year ahead, is a typo.",
    ),
    due_date=DateWindow(
        back=CalendarOffset(months=12),
        ahead=CalendarOffset(months=24),
        rationale="Interventions, agreed next steps and information requests are planned "
        "within the rehabilitation chain (18 months); a plan revision may keep a due "
        "date that passed within the last year.",
    ),
    return_to_work=DateWindow(
        back=CalendarOffset(months=12),
        ahead=CalendarOffset(months=12),
        rationale="A graded return is recorded when it is agreed or shortly after; the "
        "follow-ups after it run for six months.",
    ),
    fact_recorded=DateWindow(
        back=CalendarOffset(months=24),
        ahead=None,
        rationale="The day a deadline was met or a response arrived has happened: not "
        "after today, and at most the retention period (24 months) back.",
    ),
)


class Policy(_Frozen):
    """One version of a jurisdiction's rules; a case snapshots it at start."""

    policy_id: str = Field(min_length=1)
    version: PositiveInt
    jurisdiction: Literal["SE", "NO"]

    # Early identification triggers (Day-N numbers; the trigger fires on that day).
    repeated_absence_occasions: PositiveInt
    repeated_absence_window: CalendarOffset
    long_absence_trigger_day: PositiveInt
    long_term_trigger_day: PositiveInt

    # Sick-day counting. A spell starting at most this many days after the previous spell's
    # last day continues that sick period (so at most relapse_gap_days - 1 healthy days lie
    # between); the healthy days are not counted as sick days.
    relapse_gap_days: PositiveInt
    employer_sick_pay_days: PositiveInt
    # Counted from each spell's own start, not the period's: a relapse needs a new certificate.
    medical_certificate_from_day: PositiveInt | None

    deadlines: tuple[DeadlineRule, ...]

    joint_meeting_interval_days: PositiveInt
    # A joint meeting may be booked after it took place (back-registration), at most this
    # many days back, so its outcome can be recorded at once; 0 allows future bookings only.
    joint_meeting_back_registration_days: int = Field(default=14, ge=0, le=90)
    follow_ups_after_return: tuple[CalendarOffset, ...]
    retention_after_closure: CalendarOffset
    # Days after a missed due date: first a reminder to the owner, later an escalation.
    overdue_reminder_after_days: PositiveInt
    overdue_escalation_after_days: PositiveInt
    # Checked by the API and the import against the server's date, never in workflow code.
    date_windows: DateWindows = PLAUSIBLE_DATES

    @property
    def identification_triggers(self) -> tuple[DeadlineRule, ...]:
        """The day-counted case triggers, as rules so they can be dated like deadlines."""
        return (
            DeadlineRule(
                kind="long_absence",
                sick_day=self.long_absence_trigger_day,
                description="Early identification: sick longer than "
                f"{self.long_absence_trigger_day - 1} days",
            ),
            DeadlineRule(
                kind="long_term",
                sick_day=self.long_term_trigger_day,
                description="Long-term track: sick longer than "
                f"{self.long_term_trigger_day - 1} days",
            ),
        )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        # Unique across triggers too: a case keys met/overdue state by kind.
        kinds = [rule.kind for rule in (*self.identification_triggers, *self.deadlines)]
        if len(kinds) != len(set(kinds)):
            raise ValueError(f"deadline kinds must be unique, got {kinds}")
        if self.overdue_escalation_after_days <= self.overdue_reminder_after_days:
            raise ValueError("overdue escalation must come after the overdue reminder")
        return self


def _chain(day: int, assessment: str) -> DeadlineRule:
    return DeadlineRule(
        kind=f"rehab_chain_day_{day}",
        sick_day=day,
        description=f"Rehabilitation chain day {day}: {assessment}",
    )


SWEDISH_DEFAULT: Final = Policy(
    policy_id="se-default",
    version=1,
    jurisdiction="SE",
    repeated_absence_occasions=6,
    repeated_absence_window=CalendarOffset(months=12),
    long_absence_trigger_day=15,
    # "Sick longer than 365 days" is first true on day 366.
    long_term_trigger_day=366,
    # SjLL 7 § 3 st. with prop. 1992/93:31: the five days run from the first healthy day,
    # so a spell starting on the fifth of them or earlier continues the period.
    relapse_gap_days=5,
    employer_sick_pay_days=14,
    medical_certificate_from_day=8,
    deadlines=(
        DeadlineRule(
            kind="fk_sick_notice",
            sick_day=21,
            description="Employer's sick notice to Försäkringskassan, due within 7 days "
            "after the sick-pay period (days 1-14)",
        ),
        DeadlineRule(
            kind="return_to_work_plan",
            sick_day=30,
            expected_sick_days_at_least=60,
            description="Return-to-work plan (SFB 30 kap. 6 §) when sick leave is expected "
            "to last 60 days or more",
            met_by_action="set_plan",
        ),
        _chain(90, "own-job assessment ends; from day 91 any job at the employer"),
        _chain(180, "from day 181 the normal labour market, unless special reasons apply"),
        _chain(365, "from day 366 the normal labour market, unless overriding reasons apply"),
        _chain(550, "long-term checkpoint; review the case with Försäkringskassan"),
    ),
    joint_meeting_interval_days=14,
    follow_ups_after_return=(
        CalendarOffset(days=14),
        CalendarOffset(months=3),
        CalendarOffset(months=6),
    ),
    retention_after_closure=CalendarOffset(months=24),
    # 3 days lets a deadline falling on a Friday be caught up after the weekend; 7 days
    # escalates before the next biweekly joint meeting.
    overdue_reminder_after_days=3,
    overdue_escalation_after_days=7,
)


def _nav_week(week: int) -> int:
    # "By week W" means by the last day of week W, which is Day 7W with Day 1 = sick start.
    return 7 * week


NORWAY: Final = Policy(
    policy_id="no-nav",
    version=1,
    jurisdiction="NO",
    # Engine defaults, not NAV law: Norway has no occasion-count rule of its own.
    repeated_absence_occasions=6,
    repeated_absence_window=CalendarOffset(months=12),
    # The day after the 16-day arbeidsgiverperiode, as SE triggers after its 14 days.
    long_absence_trigger_day=17,
    long_term_trigger_day=366,
    # ftrl. § 8-19: a new employer period needs at least 16 healthy days in between, so
    # sick again on the 16th day after the last absence or earlier continues it.
    relapse_gap_days=16,
    employer_sick_pay_days=16,
    medical_certificate_from_day=None,
    deadlines=(
        DeadlineRule(
            kind="follow_up_plan",
            sick_day=_nav_week(4),
            description="Follow-up plan (oppfølgingsplan) by the end of week 4",
            met_by_action="set_plan",
        ),
        DeadlineRule(
            kind="dialogue_meeting_1",
            sick_day=_nav_week(7),
            description="Dialogue meeting 1 (dialogmøte 1) by the end of week 7",
            met_by_action="record_meeting_outcome",
        ),
        DeadlineRule(
            kind="activity_requirement",
            sick_day=_nav_week(8),
            description="Activity requirement (aktivitetskrav) assessed at week 8",
        ),
        DeadlineRule(
            kind="dialogue_meeting_2",
            sick_day=_nav_week(26),
            description="Dialogue meeting 2 (dialogmøte 2) by the end of week 26",
        ),
        DeadlineRule(
            kind="benefit_end",
            sick_day=_nav_week(52),
            description="Sickness benefit (sykepenger) maximum period ends at week 52",
        ),
    ),
    joint_meeting_interval_days=14,
    follow_ups_after_return=(
        CalendarOffset(days=14),
        CalendarOffset(months=3),
        CalendarOffset(months=6),
    ),
    retention_after_closure=CalendarOffset(months=24),
    overdue_reminder_after_days=3,
    overdue_escalation_after_days=7,
)

POLICIES: Final[Mapping[tuple[str, int], Policy]] = MappingProxyType(
    {(policy.policy_id, policy.version): policy for policy in (SWEDISH_DEFAULT, NORWAY)}
)


class UnknownPolicyError(LookupError):
    """No registered policy has the requested id or version."""


def get_policy(policy_id: str, version: int | None = None) -> Policy:
    """The policy with this id: the given version, or the latest when version is None."""
    versions = {v: policy for (pid, v), policy in POLICIES.items() if pid == policy_id}
    if not versions:
        known = ", ".join(sorted({pid for pid, _ in POLICIES}))
        raise UnknownPolicyError(f"unknown policy id {policy_id!r}; known ids: {known}")
    if version is None:
        return versions[max(versions)]
    if version not in versions:
        known = ", ".join(str(v) for v in sorted(versions))
        raise UnknownPolicyError(
            f"policy {policy_id!r} has no version {version}; known versions: {known}"
        )
    return versions[version]

"""A synthetic year of casework, in memory, to show what the report looks like.

`starter.py report --synthetic` renders it: the synthetic workforce of ingestion/synthetic.py
(same people, same units) with seeded outcomes for its cases: identification, joint meetings
that come sooner once the biweekly routine starts, plans, returns to work, relapses,
interventions, information requests, manager courses in half the units and APT dialogues.
Nothing here touches the record store; every page it produces says it is synthetic.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, time, timedelta

from core.identity import parse_personnummer
from evaluation.facts import (
    AptFact,
    CaseFacts,
    DeadlineFact,
    EventFact,
    InformationRequestFact,
    InterventionFact,
    ManagerTrainingFact,
    MeetingFact,
    ProgrammeFacts,
)
from ingestion.synthetic import unit_codes, workforce
from models.deadlines import STOCKHOLM

_INTERVENTIONS = (
    ("medical", "care_contact"),
    ("medical", "occupational_health"),
    ("social", "social_services_support"),
    ("work_oriented", "work_adaptation"),
    ("work_oriented", "work_training"),
    ("work_oriented", "redeployment"),
)
_PARTIES = ("healthcare", "fhv", "arbetsformedlingen", "social_services")


def _at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=STOCKHOLM).astimezone(UTC)


def synthetic_casework(
    employees: int, first: date, last: date, change_on: date, seed: int = 16
) -> tuple[list[CaseFacts], ProgrammeFacts]:
    """Cases opened from `first` through `last` for about a fifth of the workforce."""
    rng = random.Random(seed)
    staff = workforce(employees, seed=7)
    units = unit_codes(staff)
    trained_units = set(units[::2])
    span = (last - first).days
    cases = []
    for person in staff:
        pin = parse_personnummer(person.personal_identity_number, today=last)
        woman = pin.legal_sex == "F"
        if rng.random() > (0.24 if woman else 0.1):
            continue
        sick_start = first - timedelta(days=14) + timedelta(days=rng.randrange(span))
        opened_on = sick_start + timedelta(days=14 if rng.random() < 0.8 else rng.randint(15, 45))
        if opened_on > last:
            continue
        cases.append(
            _case(
                rng,
                person.unit_code,
                pin.legal_sex,
                pin.birth_date.year,
                sick_start,
                opened_on,
                last,
                biweekly=opened_on >= change_on,
                trained=person.unit_code in trained_units,
            )
        )
    managers = []
    dialogues = []
    for n, unit in enumerate(units):
        for m in range(2):
            attended = (
                (last - timedelta(days=rng.randint(20, 300)),) if unit in trained_units else ()
            )
            managers.append(ManagerTrainingFact(unit, first - timedelta(days=400 + m), attended))
        for _ in range(rng.randint(0, 3) if n % 3 else 0):
            dialogues.append(
                AptFact(unit, last - timedelta(days=rng.randint(5, 330)), rng.randint(6, 25))
            )
    return cases, ProgrammeFacts(
        units=tuple(units), managers=tuple(managers), apt_dialogues=tuple(dialogues)
    )


def _case(
    rng: random.Random,
    unit: str,
    sex: str,
    birth_year: int,
    sick_start: date,
    opened_on: date,
    last: date,
    *,
    biweekly: bool,
    trained: bool,
) -> CaseFacts:
    events = [EventFact("case_opened", "identified", _at(opened_on, 0))]
    deadlines = []
    meetings = []
    interventions = []
    requests = []
    stage = "identified"
    fk_due = sick_start + timedelta(days=20)
    if fk_due <= last:
        met = fk_due - timedelta(days=rng.randint(0, 6))
        late = rng.random() < (0.15 if trained else 0.3)
        deadlines.append(
            DeadlineFact(
                "fk_sick_notice",
                fk_due,
                "met",
                met if not late else fk_due + timedelta(days=rng.randint(1, 9)),
            )
            if rng.random() < 0.93
            else DeadlineFact("fk_sick_notice", fk_due, "overdue", None)
        )
    # The biweekly joint meeting brings the first meeting forward.
    wait = rng.randint(2, 14) if biweekly else rng.randint(7, 35)
    if trained:
        wait = max(3, wait - rng.randint(0, 5))
    meeting_on = opened_on + timedelta(days=wait)
    plan_due = sick_start + timedelta(days=29)
    plan_on = None
    if meeting_on <= last:
        events.append(
            EventFact("joint_meeting_booked", "joint_meeting", _at(opened_on + timedelta(days=1)))
        )
        events.append(EventFact("joint_meeting_held", "screening", _at(meeting_on)))
        meetings.append(MeetingFact("joint", "held", _at(meeting_on, 9), rng.random() < 0.3))
        stage = "screening"
        screened = meeting_on + timedelta(days=rng.randint(1, 5))
        if screened <= last:
            events.append(EventFact("screening_recorded", "planning", _at(screened)))
            stage = "planning"
            plan_on = screened + timedelta(days=rng.randint(1, 7))
            if plan_on <= last:
                events.append(EventFact("plan_set", "interventions", _at(plan_on)))
                stage = "interventions"
            else:
                plan_on = None
        for _ in range(rng.randint(0, 2)):
            party = rng.choice(_PARTIES)
            due = meeting_on + timedelta(days=14)
            received = meeting_on + timedelta(days=rng.randint(3, 25))
            answered = received <= last
            requests.append(
                InformationRequestFact(
                    party,
                    _at(meeting_on, 12),
                    due,
                    received if answered else None,
                    "answered" if answered else ("overdue" if due < last else "open"),
                )
            )
    if plan_due <= last:
        if plan_on is not None:
            deadlines.append(DeadlineFact("return_to_work_plan", plan_due, "met", plan_on))
        else:
            deadlines.append(DeadlineFact("return_to_work_plan", plan_due, "overdue", None))
    closed_at = None
    if plan_on is not None:
        for _ in range(rng.randint(1, 3)):
            track, kind = rng.choice(_INTERVENTIONS)
            finished = plan_on + timedelta(days=rng.randint(20, 90)) <= last
            roll = rng.random()
            outcome = (
                "achieved" if roll < 0.55 else "partly_achieved" if roll < 0.8 else "not_achieved"
            )
            interventions.append(
                InterventionFact(
                    track,
                    kind,
                    ("cancelled" if roll > 0.93 else "completed") if finished else "open",
                    outcome if finished and roll <= 0.93 else None,
                )
            )
        partial = plan_on + timedelta(days=rng.randint(5, 70 if trained else 110))
        if partial <= last:
            events.append(
                EventFact(
                    "return_to_work_step",
                    "return_to_work",
                    _at(partial),
                    {"extent": rng.choice((25, 50)), "from_date": partial.isoformat()},
                )
            )
            stage = "return_to_work"
            full = partial + timedelta(days=rng.randint(14, 120))
            if full <= last and rng.random() < 0.85:
                events.append(
                    EventFact(
                        "return_to_work_step",
                        "return_to_work",
                        _at(full),
                        {"extent": 100, "from_date": full.isoformat()},
                    )
                )
                relapse = full + timedelta(days=rng.randint(10, 150))
                if rng.random() < 0.12 and relapse <= last:
                    events.append(EventFact("relapse_reported", "joint_meeting", _at(relapse)))
                    stage = "joint_meeting"
                elif full + timedelta(days=183) <= last:
                    closed = full + timedelta(days=183)
                    events.append(EventFact("case_closed", "closed", _at(closed)))
                    stage, closed_at = "closed", _at(closed)
    return CaseFacts(
        case_id=uuid.UUID(int=rng.getrandbits(128)),
        employee=uuid.UUID(int=rng.getrandbits(128)),
        unit=unit,
        policy_id="se-default",
        policy_version=1,
        opened_at=_at(opened_on, 0),
        sick_start=sick_start,
        stage=stage,
        closed_at=closed_at,
        sex=sex,
        birth_year=birth_year,
        events=tuple(events),
        deadlines=tuple(deadlines),
        meetings=tuple(meetings),
        interventions=tuple(interventions),
        information_requests=tuple(requests),
    )

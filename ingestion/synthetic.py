"""A synthetic workforce and a realistic year of absences, for the demo and the benchmarks.

Shaped after the Skaraborg municipalities: most employees have a few short sick absences a
year, some have a long one, a few have been sick for more than a year, and about 85 % of
the sick leave longer than 14 days is women's. Deterministic for a given seed."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

WOMEN_SHARE = 0.85
EMPLOYEES_PER_UNIT = 40


@dataclass(frozen=True)
class SyntheticEmployee:
    personal_identity_number: str
    unit_code: str


def _check_digit(nine: str) -> int:
    total = 0
    for i, digit in enumerate(nine):
        product = int(digit) * (2 if i % 2 == 0 else 1)
        total += product // 10 + product % 10
    return (10 - total % 10) % 10


def synthetic_pin(rng: random.Random, woman: bool) -> str:
    """A valid-looking number (date, sex digit, Luhn) from a range no real person has:
    the serial starts at 98, which the tax agency does not hand out in these tests' years."""
    born = date(1960, 1, 1) + timedelta(days=rng.randrange(0, 365 * 40))
    sex_digit = rng.choice("02468" if woman else "13579")
    nine = f"{born:%y%m%d}98{sex_digit}"
    return f"{born:%Y%m%d}-{nine[6:]}{_check_digit(nine)}"


def workforce(employees: int, seed: int = 7) -> list[SyntheticEmployee]:
    rng = random.Random(seed)
    units = max(1, employees // EMPLOYEES_PER_UNIT)
    seen: set[str] = set()
    staff: list[SyntheticEmployee] = []
    while len(staff) < employees:
        pin = synthetic_pin(rng, woman=rng.random() < WOMEN_SHARE)
        if pin in seen:
            continue
        seen.add(pin)
        staff.append(SyntheticEmployee(pin, f"DEMO-{len(staff) % units:03d}"))
    return staff


def unit_codes(staff: list[SyntheticEmployee]) -> list[str]:
    return sorted({e.unit_code for e in staff})


def year_of_absences(
    staff: list[SyntheticEmployee], today: date, seed: int = 7
) -> Iterator[dict[str, Any]]:
    """Absence events of the past year per employee, oldest first, without overlaps."""
    rng = random.Random(seed)
    for n, employee in enumerate(staff):
        yield from _employee_year(rng, f"demo-{n}", employee, today)


def _employee_year(
    rng: random.Random, prefix: str, employee: SyntheticEmployee, today: date
) -> Iterator[dict[str, Any]]:
    woman = int(employee.personal_identity_number[-2]) % 2 == 0
    count = 0

    def event(kind: str, start: date, end: date | None, **extra: Any) -> dict[str, Any]:
        nonlocal count
        count += 1
        return {
            "event_id": f"{prefix}-{count}",
            "employee_ref": employee.personal_identity_number,
            "unit_code": employee.unit_code,
            "kind": kind,
            "start": start.isoformat(),
            **({"end": end.isoformat()} if end else {}),
            **extra,
        }

    roll = rng.random()
    # Long-term sick (Falun's target group): sick for more than a year, still ongoing.
    if roll < 0.01:
        yield event("sick", today - timedelta(days=rng.randint(370, 500)), None)
        return
    # Women carry most long sick leave; the shares follow the Skaraborg figures roughly.
    has_long = roll < (0.12 if woman else 0.03)
    long_start = today - timedelta(days=rng.randint(20, 300)) if has_long else None
    day = today - timedelta(days=365)
    while True:
        day += timedelta(days=rng.randint(20, 110))
        if day >= today:
            return
        if long_start is not None and day >= long_start:
            length = rng.randint(16, 150)
            end = day + timedelta(days=length - 1)
            ongoing = end >= today
            yield event(
                "sick",
                day,
                None if ongoing else end,
                extent=rng.choice([100, 100, 75, 50, 25]),
                expected_end=(day + timedelta(days=length + 10)).isoformat(),
            )
            if ongoing:
                return
            day, long_start = end + timedelta(days=1), None
            continue
        kind = "care_of_child" if rng.random() < 0.25 else "sick"
        end = min(day + timedelta(days=rng.randint(0, 3)), today)
        yield event(kind, day, end)
        day = end + timedelta(days=1)

"""The timers of a case's child workflows that run up to a due date and past it.

Dates are Europe/Stockholm days (models.deadlines): a reminder opens at 00:00 a given number
of days before the due date, the due date is kept all through its last minute, so "overdue"
comes at 24:00, and later steps at 24:00 a given number of days after it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.deadlines import end_of_day, start_of_day

REMINDER = "reminder"
OVERDUE = "overdue"


def due_date_steps(
    due_on: date,
    *,
    remind_days_before: int,
    since: datetime,
    after_due: tuple[tuple[str, int], ...],
) -> list[tuple[str, datetime]]:
    """(step, instant) in order: the reminder, overdue, then each `(step, days)` after due."""
    steps: list[tuple[str, datetime]] = []
    if remind_days_before > 0:
        remind_at = start_of_day(due_on - timedelta(days=remind_days_before))
        # A reminder that would come before the start (a short due date) is pointless.
        if remind_at > since:
            steps.append((REMINDER, remind_at))
    steps.append((OVERDUE, end_of_day(due_on)))
    steps.extend((step, end_of_day(due_on + timedelta(days=days))) for step, days in after_due)
    return steps


async def finished_before(finished: Callable[[], bool], at: datetime) -> bool:
    """True when `finished()` holds before `at`; False when `at` came first (a durable timer)."""
    timeout = at - workflow.now()
    if timeout <= timedelta(0):
        return finished()
    try:
        await workflow.wait_condition(finished, timeout=timeout)
    except TimeoutError:
        return False
    return True

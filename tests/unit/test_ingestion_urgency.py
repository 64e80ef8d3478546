"""Which monitors an ingestion batch starts first: a case due, sick leave now, the rest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from temporalio.common import Priority

from ingestion.absences import CASE_DUE_PRIORITY, SICK_NOW_PRIORITY, urgency_of
from models.absence import MonitorState
from models.policy import get_policy

TODAY = date(2026, 11, 30)
POLICY = get_policy(
    MonitorState.model_fields["policy_id"].default,
    MonitorState.model_fields["policy_version"].default,
)
DUE_DAY = POLICY.long_absence_trigger_day  # 15 in the default policy


@dataclass
class Event:
    kind: str
    start: date
    end: date | None = None


def ago(days: int) -> date:
    return TODAY - timedelta(days=days)


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        # Going on, and today is the long-absence day: the monitor opens a case now.
        ([Event("sick", ago(DUE_DAY - 1))], CASE_DUE_PRIORITY),
        # Going on, one day short of it: sick now, no case yet.
        ([Event("sick", ago(DUE_DAY - 2))], SICK_NOW_PRIORITY),
        # A long absence that ended last month still opens its case (late import).
        ([Event("sick", ago(60), ago(30))], CASE_DUE_PRIORITY),
        # One that ended over the policy's window ago opens nothing.
        ([Event("sick", ago(500), ago(400))], Priority.default),
        # A short absence that ended: nothing to hurry.
        ([Event("sick", ago(10), ago(8))], Priority.default),
        # Ends in the future: going on now.
        ([Event("sick", ago(2), TODAY + timedelta(days=3))], SICK_NOW_PRIORITY),
        # Care of a child is not sick leave, however long.
        ([Event("care_of_child", ago(40))], Priority.default),
        # The most urgent of an employee's events counts.
        ([Event("sick", ago(200), ago(198)), Event("sick", ago(30))], CASE_DUE_PRIORITY),
    ],
)
def test_urgency_of_a_batch_for_one_employee(events: list[Event], expected: Priority) -> None:
    assert urgency_of(events, POLICY, TODAY) == expected

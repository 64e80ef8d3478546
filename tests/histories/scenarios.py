"""Scenarios whose histories are saved; each drives one workflow type through real paths."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from temporalio.client import Client

from models.case import CaseInput, CaseTrigger, case_workflow_id
from workflows.rehab_case import RehabCaseWorkflow

# A key used only for the committed history files, so the replayer can decode them.
# It protects no real data; production keys come from settings.
HISTORY_PAYLOAD_KEYS = "histories:cmVoYWJmbG93LWhpc3RvcnktZml4dHVyZS1rZXktMzI="

# The pseudonymous employee every scenario's case belongs to (no personal data).
HISTORY_EMPLOYEE = uuid.UUID("00000000-0000-4000-8000-0000000000e1")

Scenario = Callable[[Client, str, str], Awaitable[str]]


async def case_opened(client: Client, task_queue: str, unit_code: str) -> str:
    """A referral opens a case and it is recorded."""
    case_id = uuid.UUID("00000000-0000-4000-8000-000000000001")
    handle = await client.start_workflow(
        RehabCaseWorkflow.run,
        CaseInput(
            case_id=case_id,
            employee_pseudonym=HISTORY_EMPLOYEE,
            unit_code=unit_code,
            trigger=CaseTrigger.MANAGER_CONCERN,
            opened_at=datetime(2026, 1, 12, 8, 0, tzinfo=UTC),
        ),
        id=case_workflow_id(case_id),
        task_queue=task_queue,
    )
    await handle.execute_update(RehabCaseWorkflow.wait_until_recorded)
    return handle.id


SCENARIOS: dict[str, Scenario] = {
    "rehab_case_opened": case_opened,
}

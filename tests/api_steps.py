"""Steps shared by the meeting, screening and protected-track tests: a case driven by the API."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

VIOLENCE_ITEMS = ("physical", "psychological", "sexual", "threats", "at_work")
KEDS_ITEMS = (
    "q1_concentration",
    "q2_memory",
    "q3_physical_stamina",
    "q4_mental_stamina",
    "q5_recovery",
    "q6_sleep",
    "q7_sensory_load",
    "q8_demands",
    "q9_irritability",
)


def violence(*yes: str) -> dict[str, Any]:
    """The violence-exposure question set answered no, except the items in `yes`."""
    return {
        "instrument_id": "violence_exposure",
        "instrument_version": 1,
        "answers": {item: int(item in yes) for item in VIOLENCE_ITEMS},
    }


def keds(*answers: int) -> dict[str, Any]:
    """KEDS with the given answers in item order (the rest 0)."""
    values = list(answers) + [0] * (len(KEDS_ITEMS) - len(answers))
    return {
        "instrument_id": "keds",
        "instrument_version": 1,
        "answers": dict(zip(KEDS_ITEMS, values, strict=True)),
    }


async def post(
    api: httpx.AsyncClient, case_id: str, action: str, body: dict[str, Any], headers: Any
) -> httpx.Response:
    return await api.post(f"/api/v1/cases/{case_id}/{action}", json=body, headers=headers)


async def ok(
    api: httpx.AsyncClient, case_id: str, action: str, body: dict[str, Any], headers: Any
) -> dict[str, Any]:
    response = await post(api, case_id, action, body, headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def case_at_joint_meeting(
    api: httpx.AsyncClient,
    env: WorkflowEnvironment,
    unit_code: str,
    headers: dict[str, str],
    *,
    pin: str,
    consents: Sequence[str] = ("fk", "fhv"),
) -> str:
    """Referred, consents given, the joint meeting booked and begun; the case id."""
    created = await api.post(
        "/api/v1/cases",
        json={"employee_ref": pin, "unit_code": unit_code, "trigger": "manager_concern"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    case_id: str = created.json()["case_id"]
    for party in consents:
        await ok(api, case_id, "record-consent", {"party": party, "given": True}, headers)
    starts = await env.get_current_time() + timedelta(hours=1)
    await ok(
        api,
        case_id,
        "book-joint-meeting",
        {
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=1)).isoformat(),
            "invite": list(consents),
        },
        headers,
    )
    await env.sleep(timedelta(hours=2))
    return case_id


def meeting_outcome(
    *,
    questions: dict[str, Any] | None,
    held_by: str = "coordinator",
    attended: Sequence[str] = ("employee", "manager", "coordinator"),
    next_steps: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "attended": list(attended),
        "held_by": held_by,
        "needs": ["work_oriented", "social"],
        "reinforced_support": False,
        "next_steps": list(next_steps),
    }
    if questions is not None:
        body["violence_questions"] = questions
    return body

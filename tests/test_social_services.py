"""Social services as a role: only with the employee's consent, only the social track, never
the protected track; they record the responses to their own information requests."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.auth import EmbeddedIssuer
from models.api import Role
from tests.api_steps import case_at_joint_meeting, meeting_outcome, ok, post, violence
from tests.case_steps import eventually
from tests.conftest import bearer

pytestmark = pytest.mark.own_temporal("module")


async def test_social_services_see_and_answer_only_their_part_and_only_with_consent(
    api: httpx.AsyncClient,
    issuer: EmbeddedIssuer,
    worker: Worker,
    time_skipping_env: WorkflowEnvironment,
    unit_code: str,
    coordinator_headers: dict[str, str],
) -> None:
    env = time_skipping_env
    social = bearer(issuer.mint(Role.SOCIAL_SERVICES, subject="socialsekreterare-3"))
    case_id = await case_at_joint_meeting(
        api, env, unit_code, coordinator_headers, pin="19811218-9876", consents=("fk",)
    )
    assert (await api.get(f"/api/v1/cases/{case_id}", headers=social)).status_code == 404

    due = str((await env.get_current_time()).date() + timedelta(days=14))
    steps = [
        {"track": "social", "kind": "debt_counselling", "owner": "social_services", "due_on": due},
        {"track": "work_oriented", "kind": "work_adaptation", "owner": "manager", "due_on": due},
    ]
    await ok(
        api,
        case_id,
        "record-meeting-outcome",
        meeting_outcome(questions=violence("threats"), next_steps=steps),
        coordinator_headers,
    )
    for party in ("social_services", "healthcare"):
        await ok(
            api, case_id, "record-consent", {"party": party, "given": True}, coordinator_headers
        )
    requests = {}
    for party in ("social_services", "healthcare"):
        created = await ok(
            api,
            case_id,
            "request-information",
            {"party": party, "due_on": due},
            coordinator_headers,
        )
        requests[party] = created["created_ids"][0]

    # Each request's row is written by its own child workflow, just after the answer.
    async def requests_recorded() -> int:
        view = await api.get(f"/api/v1/cases/{case_id}", headers=coordinator_headers)
        return len(view.json()["information_requests"])

    await eventually(requests_recorded, lambda count: count == 2)
    view = await api.get(f"/api/v1/cases/{case_id}", headers=social)
    assert view.status_code == 200, view.text
    body = view.json()
    assert body["audience"] == "social_services"
    assert [s["kind"] for s in body["next_steps"]] == ["debt_counselling"]
    assert [r["party"] for r in body["information_requests"]] == ["social_services"]
    # The safety support started by the disclosure is social-track, yet never theirs.
    assert body["interventions"] == []
    for word in ("violence", "safety_support", "work_adaptation", "risk_level", "healthcare"):
        assert word not in view.text, word
    timeline = await api.get(f"/api/v1/cases/{case_id}/timeline", headers=social)
    assert timeline.status_code == 200 and "detail" not in timeline.text

    refused = await post(
        api,
        case_id,
        "record-information-response",
        {"request_id": requests["healthcare"]},
        social,
    )
    assert refused.status_code == 403
    answered = await post(
        api,
        case_id,
        "record-information-response",
        {"request_id": requests["social_services"]},
        social,
    )
    assert answered.status_code == 200, answered.text

    await ok(
        api,
        case_id,
        "record-consent",
        {"party": "social_services", "given": False},
        coordinator_headers,
    )
    assert (await api.get(f"/api/v1/cases/{case_id}", headers=social)).status_code == 404

"""Meeting outcomes, follow-up meetings and the intake screening, through the real API.

Clients send answers, never scores: the server scores them with the one engine, and a bad
answer is a 422 naming the field and the reason, never the value. The violence-exposure
questions are part of the intake screening and of every meeting the employee attends.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.auth import EmbeddedIssuer
from models.api import Role
from store.schema import Case, Meeting, Screening
from tests.api_steps import (
    case_at_joint_meeting,
    keds,
    meeting_outcome,
    ok,
    post,
    violence,
)
from tests.case_steps import eventually, today
from tests.conftest import bearer

PIN = "19811218-9876"


pytestmark = pytest.mark.own_temporal("test")


def tokens(issuer: EmbeddedIssuer, unit_code: str, employee: uuid.UUID) -> dict[Role, Any]:
    return {
        role: bearer(
            issuer.mint(
                role,
                subject=f"{role.value}-1",
                units=[unit_code] if role in (Role.MANAGER, Role.COORDINATOR) else [],
                employee_pseudonym=employee if role is Role.EMPLOYEE else None,
            )
        )
        for role in Role
    }


async def employee_of(sessionmaker: async_sessionmaker[AsyncSession], case_id: str) -> uuid.UUID:
    async with sessionmaker() as session:
        case = await session.get(Case, uuid.UUID(case_id))
        assert case is not None
        return case.employee_pseudonym


async def stage_of(api: httpx.AsyncClient, case_id: str, headers: dict[str, str]) -> str:
    response = await api.get(f"/api/v1/cases/{case_id}", headers=headers)
    stage: str = response.json()["stage"]
    return stage


async def test_screening_answers_are_scored_by_the_server_and_bad_ones_are_refused_by_field(
    api: httpx.AsyncClient,
    worker: Worker,
    time_skipping_env: WorkflowEnvironment,
    unit_code: str,
    coordinator_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    c = coordinator_headers
    case_id = await case_at_joint_meeting(api, time_skipping_env, unit_code, c, pin=PIN)
    await ok(api, case_id, "record-meeting-outcome", meeting_outcome(questions=violence()), c)

    over_range = keds(4711)
    unanswered = keds()
    del unanswered["answers"]["q9_irritability"]
    stray_item = keds()
    stray_item["answers"]["Kanarie_item"] = 1
    not_a_number = keds()
    not_a_number["answers"]["q1_concentration"] = "secret-answer"
    forged = {
        "scores": [
            {
                "instrument_id": "keds",
                "instrument_version": 1,
                "total": 54,
                "band": "exhaustion",
                "risk_level": "high",
                "suggests_reinforced_support": True,
                "protected": False,
            }
        ]
    }
    unknown = {"instrument_id": "phq9", "instrument_version": 1, "answers": {}}
    refusals: list[tuple[dict[str, Any], str, str]] = [
        (forged, "scores", "Extra inputs are not permitted"),
        (
            {"answers": [unknown, violence()]},
            "answers.0.instrument_id",
            "is not a known instrument",
        ),
        (
            {"answers": [keds() | {"instrument_version": 9}, violence()]},
            "answers.0.instrument_version",
            "is not a known version of the instrument",
        ),
        (
            {"answers": [over_range, violence()]},
            "answers.0.answers.q1_concentration",
            "must be a whole number from 0 to 6",
        ),
        (
            {"answers": [violence(), unanswered]},
            "answers.1.answers.q9_irritability",
            "is not answered",
        ),
        (
            {"answers": [stray_item, violence()]},
            "answers.0.answers",
            "names an item that is not part of keds",
        ),
        (
            {"answers": [keds(), violence(), keds()]},
            "answers.2.instrument_id",
            "is given more than once",
        ),
        (
            {"answers": [keds(6, 6, 6)]},
            "answers",
            "must include the violence_exposure questions, asked at the intake screening",
        ),
    ]
    for body, field, reason in refusals:
        response = await post(api, case_id, "record-screening-result", body, c)
        assert response.status_code == 422, response.text
        assert {"field": field, "reason": reason} in response.json()["detail"], response.text
        assert "4711" not in response.text and "Kanarie" not in response.text
    typed = await post(api, case_id, "record-screening-result", {"answers": [not_a_number]}, c)
    assert typed.status_code == 422 and "secret-answer" not in typed.text
    # An item answered twice is not decided by the JSON parser keeping the last value.
    twice = (
        '{"answers": [{"instrument_id": "work_ability_score", "instrument_version": 1, '
        '"answers": {"current_work_ability": 3, "current_work_ability": 9}}, '
        + json.dumps(violence())
        + "]}"
    )
    repeated = await api.post(
        f"/api/v1/cases/{case_id}/record-screening-result",
        content=twice,
        headers=c | {"content-type": "application/json"},
    )
    assert repeated.status_code == 422
    assert repeated.json()["detail"] == [
        {"field": "body", "reason": "gives the same key twice in one object"}
    ]
    assert await stage_of(api, case_id, c) == "screening"  # nothing changed

    # KEDS 19 is over the cut-off, WAS 6 is moderate; the client never says so.
    work_ability = {
        "instrument_id": "work_ability_score",
        "instrument_version": 1,
        "answers": {"current_work_ability": 6},
    }
    screened = await ok(
        api,
        case_id,
        "record-screening-result",
        {"answers": [keds(6, 6, 6, 1), work_ability, violence()]},
        c,
    )
    assert screened["stage"] == "planning" and screened["created_ids"] == []
    view = (await api.get(f"/api/v1/cases/{case_id}", headers=c)).json()
    assert {
        (s["instrument_id"], s["total"], s["band"], s["risk_level"]) for s in view["screenings"]
    } == {("keds", 19, "exhaustion", "high"), ("work_ability_score", 6, "moderate", "moderate")}
    assert view["violence_disclosed"] is False
    async with sessionmaker() as session:
        # The violence set was asked, but without a disclosure it is stored nowhere.
        stored = await session.scalars(select(Screening.instrument_id))
        assert sorted(stored) == ["keds", "work_ability_score"]

    again = await post(
        api, case_id, "record-screening-result", {"answers": [keds(), violence()]}, c
    )
    assert again.status_code == 409
    assert "only in stage screening; the case is in stage planning" in again.text


async def test_the_employee_answers_the_own_intake_screening(
    api: httpx.AsyncClient,
    worker: Worker,
    time_skipping_env: WorkflowEnvironment,
    unit_code: str,
    issuer: EmbeddedIssuer,
    coordinator_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    c = coordinator_headers
    case_id = await case_at_joint_meeting(api, time_skipping_env, unit_code, c, pin=PIN)
    await ok(api, case_id, "record-meeting-outcome", meeting_outcome(questions=violence()), c)
    t = tokens(issuer, unit_code, await employee_of(sessionmaker, case_id))
    # Somebody else's case is not there for an employee.
    other = bearer(
        issuer.mint(Role.EMPLOYEE, subject="employee-2", employee_pseudonym=uuid.uuid4())
    )
    body = {"answers": [keds(1, 2, 3), violence()]}
    assert (await post(api, case_id, "record-screening-result", body, other)).status_code == 404
    screened = await ok(api, case_id, "record-screening-result", body, t[Role.EMPLOYEE])
    assert screened["stage"] == "planning"
    for role in (Role.MANAGER, Role.FK_OFFICER):
        refused = await post(api, case_id, "record-screening-result", body, t[role])
        assert refused.status_code == 403


async def test_meeting_outcome_keeps_host_and_next_steps_seen_per_track_and_adopted_by_the_plan(
    api: httpx.AsyncClient,
    worker: Worker,
    time_skipping_env: WorkflowEnvironment,
    unit_code: str,
    issuer: EmbeddedIssuer,
    coordinator_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    c = coordinator_headers
    env = time_skipping_env
    case_id = await case_at_joint_meeting(api, env, unit_code, c, pin=PIN)
    t = tokens(issuer, unit_code, await employee_of(sessionmaker, case_id))
    day = await today(env)
    work_step = {
        "track": "work_oriented",
        "kind": "work_adaptation",
        "owner": "manager",
        "due_on": (day + timedelta(days=14)).isoformat(),
    }
    medical_step = {
        "track": "medical",
        "kind": "physiotherapy",
        "owner": "healthcare",
        "due_on": (day + timedelta(days=21)).isoformat(),
    }
    attended = ("employee", "manager", "coordinator", "fk")
    refusals: list[tuple[dict[str, Any], str, str]] = [
        (
            meeting_outcome(questions=None, attended=attended),
            "violence_questions",
            "is required: the violence_exposure questions are asked at every meeting",
        ),
        (
            meeting_outcome(questions=violence(), attended=("manager", "coordinator")),
            "violence_questions",
            "is asked only of an employee who attended the meeting",
        ),
        (
            meeting_outcome(questions=violence(), held_by="fhv", attended=attended),
            "held_by",
            "must be one of the parties that attended",
        ),
        (
            meeting_outcome(questions=keds(), attended=attended),
            "violence_questions.instrument_id",
            "is not asked at a meeting",
        ),
        (
            meeting_outcome(
                questions=violence(), next_steps=[work_step | {"kind": "safety_support"}]
            ),
            "next_steps.0.kind",
            "Value error, this kind is reserved; it is started by the case itself",
        ),
    ]
    for body, field, reason in refusals:
        response = await post(api, case_id, "record-meeting-outcome", body, t[Role.FK_OFFICER])
        assert response.status_code == 422, response.text
        assert response.json()["detail"] == [{"field": field, "reason": reason}]

    # Försäkringskassan held this one and asked the questions.
    held = await ok(
        api,
        case_id,
        "record-meeting-outcome",
        meeting_outcome(
            questions=violence(),
            held_by="fk",
            attended=attended,
            next_steps=[work_step, medical_step],
        ),
        t[Role.FK_OFFICER],
    )
    assert held["stage"] == "screening" and len(held["created_ids"]) == 2
    async with sessionmaker() as session:
        meeting = await session.scalar(select(Meeting))
        assert meeting is not None and (meeting.kind, meeting.held_by) == ("joint", "fk")
    again = await post(
        api, case_id, "record-meeting-outcome", meeting_outcome(questions=violence()), c
    )
    assert again.status_code == 409 and "only in stage joint_meeting" in again.text

    async def next_steps(role: Role) -> list[tuple[str, bool]] | None:
        view = (await api.get(f"/api/v1/cases/{case_id}", headers=t[role])).json()
        if "next_steps" not in view:
            return None
        return [(s["kind"], s["planned"]) for s in view["next_steps"]]

    assert await next_steps(Role.COORDINATOR) == [
        ("work_adaptation", False),
        ("physiotherapy", False),
    ]
    assert await next_steps(Role.MANAGER) == [("work_adaptation", False)]
    assert await next_steps(Role.FHV) == [("physiotherapy", False)]
    assert await next_steps(Role.FK_OFFICER) is None
    assert await next_steps(Role.EMPLOYEE) is None

    await ok(api, case_id, "record-screening-result", {"answers": [keds(), violence()]}, c)
    work_step_id = held["created_ids"][0]
    planned = await ok(api, case_id, "set-plan", {"adopt_next_steps": [work_step_id]}, c)
    assert planned["stage"] == "interventions" and len(planned["created_ids"]) == 1
    assert await next_steps(Role.MANAGER) == [("work_adaptation", True)]

    async def manager_interventions() -> list[tuple[str, str, str, str]]:
        view = (await api.get(f"/api/v1/cases/{case_id}", headers=t[Role.MANAGER])).json()
        return [
            (i["intervention_id"], i["kind"], i["owner"], i["due_on"])
            for i in view["interventions"]
        ]

    # The step became the plan's intervention, with the step's kind, owner and due date (its
    # row is written by the intervention's own workflow, a moment later).
    expected = [(planned["created_ids"][0], "work_adaptation", "manager", work_step["due_on"])]
    assert await eventually(manager_interventions, lambda found: found == expected)
    twice = await post(api, case_id, "set-plan", {"adopt_next_steps": [work_step_id]}, c)
    assert twice.status_code == 409 and "already part of the plan" in twice.text
    unknown = await post(api, case_id, "set-plan", {"adopt_next_steps": [str(uuid.uuid4())]}, c)
    assert unknown.status_code == 409 and "no agreed next step" in unknown.text


async def test_follow_up_meetings_ask_the_questions_again_and_fit_only_once_the_plan_is_set(
    api: httpx.AsyncClient,
    worker: Worker,
    time_skipping_env: WorkflowEnvironment,
    unit_code: str,
    issuer: EmbeddedIssuer,
    coordinator_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    c = coordinator_headers
    env = time_skipping_env
    case_id = await case_at_joint_meeting(api, env, unit_code, c, pin=PIN)
    t = tokens(issuer, unit_code, await employee_of(sessionmaker, case_id))
    await ok(api, case_id, "record-meeting-outcome", meeting_outcome(questions=violence()), c)
    await ok(api, case_id, "record-screening-result", {"answers": [keds(), violence()]}, c)

    now = await env.get_current_time()

    def follow_up(
        held_by: str, attended: tuple[str, ...], questions: dict[str, Any] | None, start: Any = None
    ) -> dict[str, Any]:
        starts = start or now - timedelta(hours=1)
        body: dict[str, Any] = {
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(minutes=45)).isoformat(),
            "attended": list(attended),
            "held_by": held_by,
        }
        return body | ({"violence_questions": questions} if questions else {})

    with_employee = ("employee", "manager")
    early = await post(
        api, case_id, "record-follow-up-meeting", follow_up("manager", with_employee, violence()), c
    )
    assert early.status_code == 409
    assert "only in stage interventions, return_to_work; the case is in stage planning" in (
        early.text
    )
    await ok(api, case_id, "set-plan", {}, c)

    manager = t[Role.MANAGER]
    unasked = await post(
        api, case_id, "record-follow-up-meeting", follow_up("manager", with_employee, None), manager
    )
    assert unasked.status_code == 422
    assert unasked.json()["detail"][0]["field"] == "violence_questions"
    ahead = await post(
        api,
        case_id,
        "record-follow-up-meeting",
        follow_up("manager", with_employee, violence(), start=now + timedelta(days=1)),
        manager,
    )
    assert ahead.status_code == 409 and "once it has started" in ahead.text

    # The manager held this follow-up and asked the questions; FK held the next one, which the
    # employee did not attend, so nothing was asked.
    first = await ok(
        api,
        case_id,
        "record-follow-up-meeting",
        follow_up("manager", with_employee, violence()),
        manager,
    )
    assert first["stage"] == "interventions" and len(first["created_ids"]) == 1
    await ok(
        api,
        case_id,
        "record-follow-up-meeting",
        follow_up("fk", ("fk", "coordinator"), None),
        t[Role.FK_OFFICER],
    )
    async with sessionmaker() as session:
        rows = (await session.scalars(select(Meeting).order_by(Meeting.created_at))).all()
    assert [(m.kind, m.status, m.held_by) for m in rows] == [
        ("joint", "held", "coordinator"),
        ("follow_up", "held", "manager"),
        ("follow_up", "held", "fk"),
    ]
    manager_view = (await api.get(f"/api/v1/cases/{case_id}", headers=manager)).json()
    assert [m["kind"] for m in manager_view["meetings"]] == ["joint", "follow_up", "follow_up"]
    timeline = (await api.get(f"/api/v1/cases/{case_id}/timeline", headers=manager)).json()
    assert [e["kind"] for e in timeline["entries"]].count("meeting_follow_up_held") == 2
    refused = await post(
        api,
        case_id,
        "record-follow-up-meeting",
        follow_up("manager", with_employee, violence()),
        t[Role.EMPLOYEE],
    )
    assert refused.status_code == 403

"""Scenarios whose histories are saved; each drives one workflow type through real paths."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import google.protobuf.empty_pb2
from temporalio.api.testservice.v1 import SleepRequest
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy

from activities.absences import rule_case_id
from core.case_start import start_case
from models.absence import (
    AbsenceBatch,
    AbsenceRecord,
    CaseReferral,
    MonitorState,
    monitor_workflow_id,
)
from models.actions import (
    AbsenceNews,
    AddIntervention,
    AgreedNextStep,
    BookJointMeeting,
    CancelIntervention,
    CaseActionResult,
    CloseCase,
    CompleteIntervention,
    PlannedIntervention,
    RecordConsent,
    RecordDeadlineMet,
    RecordFollowUpMeeting,
    RecordMeetingOutcome,
    RecordReturnToWorkStep,
    RecordScreeningResult,
    SetPlan,
    SetSickLeave,
)
from models.case import (
    CaseInput,
    CaseOutcome,
    CaseResult,
    CaseTrigger,
    ConsentParty,
    InterventionOutcome,
    InterventionOwner,
    Track,
    case_workflow_id,
    information_request_workflow_id,
    intervention_workflow_id,
)
from models.deadlines import local_date
from models.information_requests import (
    CancelInformationRequest,
    RecordInformationResponse,
    RequestInformation,
)
from models.instruments import (
    KEDS,
    VIOLENCE_EXPOSURE,
    ScreeningAnswers,
    ScreeningScore,
    score,
)
from tests.case_steps import eventually
from workflows.absence_monitor import AbsenceMonitorWorkflow, new_monitor_input
from workflows.information_request import InformationRequestWorkflow
from workflows.intervention import InterventionWorkflow
from workflows.rehab_case import RehabCaseWorkflow

# A key used only for the committed history files, so the replayer can decode them.
# It protects no real data; production keys come from settings.
HISTORY_PAYLOAD_KEYS = "histories:cmVoYWJmbG93LWhpc3RvcnktZml4dHVyZS1rZXktMzI="

# The pseudonymous employee every scenario's case belongs to (no personal data).
HISTORY_EMPLOYEE = uuid.UUID("00000000-0000-4000-8000-0000000000e1")
# An employee of their own for the monitor that tells an open case (one case per employee).
RELAPSING_EMPLOYEE = uuid.UUID("00000000-0000-4000-8000-0000000000e2")
# And one whose monitor decides manual referrals.
REFERRED_EMPLOYEE = uuid.UUID("00000000-0000-4000-8000-0000000000e3")
# And one imported a hundred days into a sick leave.
LATE_EMPLOYEE = uuid.UUID("00000000-0000-4000-8000-0000000000e4")

# Each scenario returns a workflow id; the latest run's history is saved. Scenarios share one
# time-skipping server, so none may leave a workflow with timers running.
# A scenario returns the workflow id whose latest run is saved, or (workflow id, run id).
Scenario = Callable[[Client, str, str], Awaitable[str | tuple[str, str]]]


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
    await _until_idle(handle)
    return handle.id


async def _until_idle(handle: WorkflowHandle[Any, Any]) -> None:
    """Wait for the workflow's pending activities: the test server stops its clock for an
    activity whose worker is gone, even after the workflow is terminated."""
    for _ in range(200):
        described = await handle.describe()
        if not described.raw_description.pending_activities:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{handle.id} still has pending activities")


# The time-skipping test server's clock (scenarios get only its client).
async def _now(client: Client) -> datetime:
    resp = await client.test_service.get_current_time(google.protobuf.empty_pb2.Empty())
    return resp.time.ToDatetime().replace(tzinfo=UTC)


async def _skip(client: Client, duration: timedelta) -> None:
    request = SleepRequest()
    request.duration.FromTimedelta(duration)
    await client.test_service.unlock_time_skipping_with_sleep(request)


_KEDS = ScreeningScore(
    instrument_id="keds",
    instrument_version=1,
    total=8,
    band="low",
    risk_level="low",
    suggests_reinforced_support=False,
    protected=False,
)


def _planned(due_on: date, kind: str = "work_adaptation") -> PlannedIntervention:
    return PlannedIntervention(
        track=Track.WORK_ORIENTED, kind=kind, owner=InterventionOwner.MANAGER, due_on=due_on
    )


async def _to_planning(
    client: Client, task_queue: str, unit_code: str, case_id: uuid.UUID
) -> WorkflowHandle[RehabCaseWorkflow, CaseResult]:
    """Open a sick-listed case and take it through meeting and screening."""
    now = await _now(client)
    sick_start = local_date(now) - timedelta(days=3)
    handle = await client.start_workflow(
        RehabCaseWorkflow.run,
        CaseInput(
            case_id=case_id,
            employee_pseudonym=HISTORY_EMPLOYEE,
            unit_code=unit_code,
            trigger=CaseTrigger.LONG_ABSENCE,
            opened_at=now,
            sick_start=sick_start,
            expected_end=sick_start + timedelta(days=69),
        ),
        id=case_workflow_id(case_id),
        task_queue=task_queue,
    )
    await handle.execute_update(RehabCaseWorkflow.wait_until_recorded)
    await handle.execute_update(
        "record_consent",
        RecordConsent(party=ConsentParty.FK, given=True),
        result_type=CaseActionResult,
    )
    await handle.execute_update(
        "book_joint_meeting",
        BookJointMeeting(
            starts_at=now + timedelta(days=1),
            ends_at=now + timedelta(days=1, hours=1),
            invite=(ConsentParty.FK,),
        ),
        result_type=CaseActionResult,
    )
    await _skip(client, timedelta(days=1, hours=2))
    await handle.execute_update(
        "record_meeting_outcome",
        RecordMeetingOutcome(
            attended=("employee", "manager", "coordinator", "fk"),
            needs=(Track.WORK_ORIENTED,),
            reinforced_support=False,
        ),
        result_type=CaseActionResult,
    )
    await handle.execute_update(
        "record_screening_result",
        RecordScreeningResult(scores=(_KEDS,)),
        result_type=CaseActionResult,
    )
    return handle


async def case_planned_with_interventions(client: Client, task_queue: str, unit_code: str) -> str:
    """Plan, deadlines met, interventions added and withdrawn, consent withdrawn, dates moved.

    The intervention still running keeps this run open, so its history is the one saved.
    """
    case_id = uuid.UUID("00000000-0000-4000-8000-000000000002")
    handle = await _to_planning(client, task_queue, unit_code, case_id)
    today = local_date(await _now(client))
    await handle.execute_update(
        "set_plan",
        SetPlan(interventions=(_planned(today + timedelta(days=10)),)),
        result_type=CaseActionResult,
    )
    await handle.execute_update(
        "record_deadline_met",
        RecordDeadlineMet(kind="fk_sick_notice"),
        result_type=CaseActionResult,
    )
    added = await handle.execute_update(
        "add_intervention",
        AddIntervention(intervention=_planned(today + timedelta(days=20), "work_training")),
        result_type=CaseActionResult,
    )
    await handle.execute_update(
        "cancel_intervention",
        CancelIntervention(intervention_id=added.created_ids[0]),
        result_type=CaseActionResult,
    )
    await handle.execute_update(
        "set_sick_leave",
        SetSickLeave(expected_end=today + timedelta(days=90)),
        result_type=CaseActionResult,
    )
    await handle.execute_update(
        "record_consent",
        RecordConsent(party=ConsentParty.FK, given=False),
        result_type=CaseActionResult,
    )
    # Nothing may be left with timers: later scenarios skip time on the same server.
    view = await handle.query(RehabCaseWorkflow.state)
    for iv in view.interventions:
        child = client.get_workflow_handle(intervention_workflow_id(iv.intervention_id))
        await _until_idle(child)
        if iv.is_open:
            await child.terminate("history saved")
    await _until_idle(handle)
    await handle.terminate("history saved")
    return handle.id


async def intervention_completed(client: Client, task_queue: str, unit_code: str) -> str:
    """An intervention assigned, reminded and completed with an outcome."""
    case_id = uuid.UUID("00000000-0000-4000-8000-000000000003")
    handle = await _to_planning(client, task_queue, unit_code, case_id)
    today = local_date(await _now(client))
    planned = await handle.execute_update(
        "set_plan",
        SetPlan(interventions=(_planned(today + timedelta(days=10)),)),
        result_type=CaseActionResult,
    )
    await _skip(client, timedelta(days=8))
    (intervention_id,) = planned.created_ids
    await handle.execute_update(
        "complete_intervention",
        CompleteIntervention(intervention_id=intervention_id, outcome=InterventionOutcome.ACHIEVED),
        result_type=CaseActionResult,
    )
    child = client.get_workflow_handle_for(
        InterventionWorkflow.run, intervention_workflow_id(intervention_id)
    )
    await child.result()
    await _until_idle(handle)
    await handle.terminate("history saved")
    return child.id


async def case_closed_and_erased(client: Client, task_queue: str, unit_code: str) -> str:
    """Return to work in full, closure, and erasure when the retention period ends."""
    case_id = uuid.UUID("00000000-0000-4000-8000-000000000004")
    handle = await _to_planning(client, task_queue, unit_code, case_id)
    await handle.execute_update("set_plan", SetPlan(), result_type=CaseActionResult)
    today = local_date(await _now(client))
    await handle.execute_update(
        "record_return_to_work_step",
        RecordReturnToWorkStep(extent=100, from_date=today),
        result_type=CaseActionResult,
    )
    await handle.execute_update(
        "close_case", CloseCase(outcome=CaseOutcome.RETURNED_SAME_JOB), result_type=CaseActionResult
    )
    await handle.result()
    return handle.id


async def _lean_case(
    client: Client, task_queue: str, unit_code: str, case_id: uuid.UUID
) -> WorkflowHandle[Any, CaseResult]:
    """A case as the opener starts it today: opened with its first change, its team known,
    its record-store writes local activities."""
    handle = await start_case(
        client,
        CaseInput(
            case_id=case_id,
            employee_pseudonym=HISTORY_EMPLOYEE,
            unit_code=unit_code,
            trigger=CaseTrigger.MANAGER_CONCERN,
            opened_at=await _now(client),
            opened_with_first_change=True,
            team_known=True,
            records_locally=True,
        ),
        task_queue,
    )
    await handle.execute_update(RehabCaseWorkflow.wait_until_recorded)
    return handle


async def _lean_to_plan(client: Client, handle: WorkflowHandle[Any, CaseResult]) -> uuid.UUID:
    """Sick leave, a back-registered meeting, its outcome, screening and a one-item plan."""
    now = await _now(client)
    today = local_date(now)
    await handle.execute_update(
        "set_sick_leave",
        SetSickLeave(start=today - timedelta(days=3), expected_end=today + timedelta(days=66)),
        result_type=CaseActionResult,
    )
    held = now - timedelta(hours=2)
    await handle.execute_update(
        "book_joint_meeting",
        BookJointMeeting(starts_at=held, ends_at=held + timedelta(hours=1)),
        result_type=CaseActionResult,
    )
    await handle.execute_update(
        "record_meeting_outcome",
        RecordMeetingOutcome(
            attended=("employee", "manager", "coordinator"),
            needs=(Track.WORK_ORIENTED,),
            reinforced_support=False,
        ),
        result_type=CaseActionResult,
    )
    await handle.execute_update(
        "record_screening_result",
        RecordScreeningResult(scores=(_KEDS,)),
        result_type=CaseActionResult,
    )
    planned = await handle.execute_update(
        "set_plan",
        SetPlan(interventions=(_planned(today + timedelta(days=10)),)),
        result_type=CaseActionResult,
    )
    (intervention_id,) = planned.created_ids
    return intervention_id


async def _lean_to_closed(client: Client, handle: WorkflowHandle[Any, CaseResult]) -> None:
    """Through plan, the intervention completed, return to work at 50 % and 100 %, closure."""
    intervention_id = await _lean_to_plan(client, handle)
    today = local_date(await _now(client))
    await handle.execute_update(
        "complete_intervention",
        CompleteIntervention(intervention_id=intervention_id, outcome=InterventionOutcome.ACHIEVED),
        result_type=CaseActionResult,
    )
    for extent in (50, 100):
        await handle.execute_update(
            "record_return_to_work_step",
            RecordReturnToWorkStep(extent=extent, from_date=today),
            result_type=CaseActionResult,
        )
    await handle.execute_update(
        "close_case", CloseCase(outcome=CaseOutcome.RETURNED_SAME_JOB), result_type=CaseActionResult
    )


async def case_lifecycle_lean_opening(client: Client, task_queue: str, unit_code: str) -> str:
    """Today's case through plan, intervention, return to work, closure and erasure."""
    handle = await _lean_case(
        client, task_queue, unit_code, uuid.UUID("00000000-0000-4000-8000-000000000009")
    )
    await _lean_to_closed(client, handle)
    await handle.result()
    return handle.id


async def case_lifecycle_opened_by_referral(client: Client, task_queue: str, unit_code: str) -> str:
    """A referral decided by the monitor, whose opener writes the case's first change with
    its row (`opening_recorded`); then the whole lifecycle to closure."""
    monitor = WithStartWorkflowOperation(
        AbsenceMonitorWorkflow.run,
        new_monitor_input(MonitorState(employee_pseudonym=REFERRED_EMPLOYEE, unit_code=unit_code)),
        id=monitor_workflow_id(REFERRED_EMPLOYEE),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    decided = await client.execute_update_with_start_workflow(
        AbsenceMonitorWorkflow.open_case,
        CaseReferral(
            case_id=uuid.UUID("00000000-0000-4000-8000-00000000000b"),
            unit_code=unit_code,
            trigger=CaseTrigger.MANAGER_CONCERN,
            opened_at=await _now(client),
        ),
        start_workflow_operation=monitor,
    )
    assert decided.opened and decided.recorded
    handle = client.get_workflow_handle_for(
        RehabCaseWorkflow.run, case_workflow_id(decided.case_id)
    )
    await _lean_to_closed(client, handle)
    # Closed; its erasure, years on, is the lean lifecycle's history (the monitor here
    # would wake all through them).
    await _until_idle(handle)
    return handle.id


async def case_overdue_when_opened(client: Client, task_queue: str, unit_code: str) -> str:
    """A case opened a hundred days into a sick leave: the deadlines it finds passed are
    written together (`records_in_batches`), then a coordinator acts on it."""
    today = local_date(await _now(client))
    handle = await start_case(
        client,
        CaseInput(
            case_id=uuid.UUID("00000000-0000-4000-8000-00000000000c"),
            employee_pseudonym=HISTORY_EMPLOYEE,
            unit_code=unit_code,
            trigger=CaseTrigger.LONG_ABSENCE,
            opened_at=await _now(client),
            sick_start=today - timedelta(days=100),
            opened_with_first_change=True,
            team_known=True,
            records_locally=True,
            records_in_batches=True,
        ),
        task_queue,
    )
    await handle.execute_update(RehabCaseWorkflow.wait_until_recorded)
    await eventually(lambda: handle.query(RehabCaseWorkflow.state), lambda view: view.overdue)
    held = await _now(client) - timedelta(hours=2)
    await handle.execute_update(
        "book_joint_meeting",
        BookJointMeeting(starts_at=held, ends_at=held + timedelta(hours=1)),
        result_type=CaseActionResult,
    )
    await _until_idle(handle)
    return handle.id


async def intervention_recorded_locally(client: Client, task_queue: str, unit_code: str) -> str:
    """A child of today's case: assigned, reminded and completed, written by local activities."""
    handle = await _lean_case(
        client, task_queue, unit_code, uuid.UUID("00000000-0000-4000-8000-00000000000a")
    )
    intervention_id = await _lean_to_plan(client, handle)
    await _skip(client, timedelta(days=8))
    await handle.execute_update(
        "complete_intervention",
        CompleteIntervention(intervention_id=intervention_id, outcome=InterventionOutcome.ACHIEVED),
        result_type=CaseActionResult,
    )
    child = client.get_workflow_handle_for(
        InterventionWorkflow.run, intervention_workflow_id(intervention_id)
    )
    await child.result()
    await _until_idle(handle)
    await handle.terminate("history saved")
    return child.id


def _violence(*yes: str) -> ScreeningScore:
    """The violence-exposure set as the API scores it (answers never reach the workflow)."""
    answers = {item.id: int(item.id in yes) for item in VIOLENCE_EXPOSURE.items}
    return score(
        VIOLENCE_EXPOSURE,
        ScreeningAnswers(instrument_id="violence_exposure", instrument_version=1, answers=answers),
    )


async def case_structured_questions(client: Client, task_queue: str, unit_code: str) -> str:
    """The protected track: a disclosure at the joint meeting (which also agrees a next step)
    starts the safety support; the intake screening asks the questions again, the plan adopts
    the next step, a follow-up meeting asks again. The running safety support keeps the case
    from continuing as new, so the saved run holds every step."""
    case_id = uuid.UUID("00000000-0000-4000-8000-000000000005")
    now = await _now(client)
    handle = await client.start_workflow(
        RehabCaseWorkflow.run,
        CaseInput(
            case_id=case_id,
            employee_pseudonym=HISTORY_EMPLOYEE,
            unit_code=unit_code,
            trigger=CaseTrigger.MANAGER_CONCERN,
            opened_at=now,
        ),
        id=case_workflow_id(case_id),
        task_queue=task_queue,
    )
    await handle.execute_update(RehabCaseWorkflow.wait_until_recorded)
    await handle.execute_update(
        "book_joint_meeting",
        BookJointMeeting(starts_at=now + timedelta(hours=1), ends_at=now + timedelta(hours=2)),
        result_type=CaseActionResult,
    )
    await _skip(client, timedelta(hours=3))
    today = local_date(await _now(client))
    held = await handle.execute_update(
        "record_meeting_outcome",
        RecordMeetingOutcome(
            attended=("employee", "manager", "coordinator"),
            needs=(Track.WORK_ORIENTED, Track.SOCIAL),
            reinforced_support=True,
            held_by="coordinator",
            violence_screening=_violence("psychological"),
            next_steps=(
                AgreedNextStep(
                    track=Track.WORK_ORIENTED,
                    kind="work_adaptation",
                    owner=InterventionOwner.MANAGER,
                    due_on=today + timedelta(days=20),
                ),
            ),
        ),
        result_type=CaseActionResult,
    )
    keds = score(
        KEDS,
        ScreeningAnswers(
            instrument_id="keds",
            instrument_version=1,
            answers={item.id: 3 for item in KEDS.items},
        ),
    )
    await handle.execute_update(
        "record_screening_result",
        RecordScreeningResult(scores=(keds, _violence())),
        result_type=CaseActionResult,
    )
    await handle.execute_update(
        "set_plan", SetPlan(adopt_next_steps=held.created_ids), result_type=CaseActionResult
    )
    now = await _now(client)
    await handle.execute_update(
        "record_follow_up_meeting",
        RecordFollowUpMeeting(
            starts_at=now - timedelta(minutes=50),
            ends_at=now - timedelta(minutes=5),
            attended=("employee", "manager"),
            held_by="manager",
            violence_screening=_violence(),
        ),
        result_type=CaseActionResult,
    )
    # Nothing may be left with timers: later scenarios skip time on the same server.
    view = await handle.query(RehabCaseWorkflow.state)
    protected = await handle.query(RehabCaseWorkflow.protected_track)
    for iv in (*view.interventions, *protected.interventions):
        child = client.get_workflow_handle(intervention_workflow_id(iv.intervention_id))
        await _until_idle(child)
        await child.terminate("history saved")
    await _until_idle(handle)
    await handle.terminate("history saved")
    return handle.id


SCENARIOS: dict[str, Scenario] = {
    "rehab_case_opened": case_opened,
    "rehab_case_structured_questions": case_structured_questions,
    "rehab_case_planned_with_interventions": case_planned_with_interventions,
    "rehab_case_closed_and_erased": case_closed_and_erased,
    "intervention_completed": intervention_completed,
    "rehab_case_lifecycle_lean_opening": case_lifecycle_lean_opening,
    "intervention_recorded_locally": intervention_recorded_locally,
    "rehab_case_lifecycle_opened_by_referral": case_lifecycle_opened_by_referral,
    "rehab_case_overdue_when_opened": case_overdue_when_opened,
}


async def _monitor_told_of_sick_leave(
    client: Client, task_queue: str, unit_code: str, state: MonitorState, event_id: str, days: int
) -> WorkflowHandle[AbsenceMonitorWorkflow, None]:
    """The employee's monitor, started by one sick leave that began `days` ago."""
    today = local_date(await _now(client))
    return await client.start_workflow(
        AbsenceMonitorWorkflow.run,
        new_monitor_input(state),
        id=monitor_workflow_id(state.employee_pseudonym),
        task_queue=task_queue,
        start_signal="record_absences",
        start_signal_args=[
            AbsenceBatch(
                unit_code=unit_code,
                records=(
                    AbsenceRecord(
                        event_id=event_id, kind="sick", start=today - timedelta(days=days)
                    ),
                ),
            )
        ],
    )


async def absence_monitor_opens_case(client: Client, task_queue: str, unit_code: str) -> str:
    """A late-imported long absence: the monitor opens a case at once, then keeps watching."""
    handle = await _monitor_told_of_sick_leave(
        client,
        task_queue,
        unit_code,
        MonitorState(employee_pseudonym=HISTORY_EMPLOYEE, unit_code=unit_code),
        "h1",
        days=20,
    )
    await eventually(
        lambda: handle.query(AbsenceMonitorWorkflow.summary),
        lambda view: any(key.startswith("long_absence") for key in view.fired),
    )
    return handle.id


SCENARIOS["absence_monitor_opens_case"] = absence_monitor_opens_case


async def absence_monitor_decides_referrals(client: Client, task_queue: str, unit_code: str) -> str:
    """Two referrals reach the employee's monitor: the first opens a case, the second loses."""
    monitor = WithStartWorkflowOperation(
        AbsenceMonitorWorkflow.run,
        new_monitor_input(MonitorState(employee_pseudonym=REFERRED_EMPLOYEE, unit_code=unit_code)),
        id=monitor_workflow_id(REFERRED_EMPLOYEE),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    referral = CaseReferral(
        case_id=uuid.UUID("00000000-0000-4000-8000-00000000ca5e"),
        unit_code=unit_code,
        trigger=CaseTrigger.MANAGER_CONCERN,
        opened_at=await _now(client),
    )
    first = await client.execute_update_with_start_workflow(
        AbsenceMonitorWorkflow.open_case, referral, start_workflow_operation=monitor
    )
    handle = client.get_workflow_handle_for(
        AbsenceMonitorWorkflow.run, monitor_workflow_id(REFERRED_EMPLOYEE)
    )
    second = await handle.execute_update(
        AbsenceMonitorWorkflow.open_case,
        referral.model_copy(update={"case_id": uuid.UUID("00000000-0000-4000-8000-00000000ca5f")}),
    )
    assert first.opened and not second.opened and second.case_id == first.case_id
    return handle.id


SCENARIOS["absence_monitor_decides_referrals"] = absence_monitor_decides_referrals
# The same referrals decided by a local activity (patch absence-local-referral): the file
# above keeps guarding monitors that decided them with an activity.
SCENARIOS["absence_monitor_decides_referrals_locally"] = absence_monitor_decides_referrals


# ---------------------------------------------------------------- information requests (issue 7)


async def _case_in_joint_meeting(
    client: Client, task_queue: str, unit_code: str, case_id: uuid.UUID
) -> WorkflowHandle[RehabCaseWorkflow, CaseResult]:
    now = await _now(client)
    handle = await client.start_workflow(
        RehabCaseWorkflow.run,
        CaseInput(
            case_id=case_id,
            employee_pseudonym=HISTORY_EMPLOYEE,
            unit_code=unit_code,
            trigger=CaseTrigger.MANAGER_CONCERN,
            opened_at=now,
        ),
        id=case_workflow_id(case_id),
        task_queue=task_queue,
    )
    await handle.execute_update(RehabCaseWorkflow.wait_until_recorded)
    await handle.execute_update(
        "book_joint_meeting",
        BookJointMeeting(
            starts_at=now + timedelta(days=1), ends_at=now + timedelta(days=1, hours=1)
        ),
        result_type=CaseActionResult,
    )
    return handle


async def case_requests_information(client: Client, task_queue: str, unit_code: str) -> str:
    """Requests to three consented parties: one overdue, then answered; one cancelled when its
    consent is withdrawn; one cancelled by the coordinator."""
    case_id = uuid.UUID("00000000-0000-4000-8000-000000000701")
    handle = await _case_in_joint_meeting(client, task_queue, unit_code, case_id)
    today = local_date(await _now(client))
    ids: list[uuid.UUID] = []
    for party, due_in in (
        (ConsentParty.HEALTHCARE, 2),
        (ConsentParty.ARBETSFORMEDLINGEN, 20),
        (ConsentParty.SOCIAL_SERVICES, 20),
    ):
        await handle.execute_update(
            "record_consent", RecordConsent(party=party, given=True), result_type=CaseActionResult
        )
        result = await handle.execute_update(
            "request_information",
            RequestInformation(party=party, due_on=today + timedelta(days=due_in)),
            result_type=CaseActionResult,
        )
        ids.extend(result.created_ids)
    # Past the first due date: the request tells the case it is overdue.
    await _skip(client, timedelta(days=4))
    for _ in range(200):
        view = await handle.query(RehabCaseWorkflow.state)
        if view.overdue:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the request did not become overdue")
    await handle.execute_update(
        "record_information_response",
        RecordInformationResponse(request_id=ids[0]),
        result_type=CaseActionResult,
    )
    await handle.execute_update(
        "record_consent",
        RecordConsent(party=ConsentParty.ARBETSFORMEDLINGEN, given=False),
        result_type=CaseActionResult,
    )
    await handle.execute_update(
        "cancel_information_request",
        CancelInformationRequest(request_id=ids[2]),
        result_type=CaseActionResult,
    )
    for request_id in ids:
        await client.get_workflow_handle(information_request_workflow_id(request_id)).result()
    await _until_idle(handle)
    await handle.terminate("history saved")
    return handle.id


async def information_request_answered(client: Client, task_queue: str, unit_code: str) -> str:
    """A request sent, the party reminded before the due date, the response recorded."""
    case_id = uuid.UUID("00000000-0000-4000-8000-000000000702")
    handle = await _case_in_joint_meeting(client, task_queue, unit_code, case_id)
    await handle.execute_update(
        "record_consent",
        RecordConsent(party=ConsentParty.FHV, given=True),
        result_type=CaseActionResult,
    )
    today = local_date(await _now(client))
    requested = await handle.execute_update(
        "request_information",
        RequestInformation(party=ConsentParty.FHV, due_on=today + timedelta(days=10)),
        result_type=CaseActionResult,
    )
    await _skip(client, timedelta(days=8))
    (request_id,) = requested.created_ids
    await handle.execute_update(
        "record_information_response",
        RecordInformationResponse(request_id=request_id),
        result_type=CaseActionResult,
    )
    child = client.get_workflow_handle_for(
        InformationRequestWorkflow.run, information_request_workflow_id(request_id)
    )
    await child.result()
    await _until_idle(handle)
    await handle.terminate("history saved")
    return child.id


SCENARIOS["rehab_case_requests_information"] = case_requests_information
SCENARIOS["information_request_answered"] = information_request_answered


async def case_relapse_from_absence_data(
    client: Client, task_queue: str, unit_code: str
) -> tuple[str, str]:
    """Back at work in full, then new sick leave in payroll data: the news is a relapse."""
    case_id = uuid.UUID("00000000-0000-4000-8000-000000000601")
    handle = await _to_planning(client, task_queue, unit_code, case_id)
    await handle.execute_update("set_plan", SetPlan(), result_type=CaseActionResult)
    today = local_date(await _now(client))
    await handle.execute_update(
        "record_return_to_work_step",
        RecordReturnToWorkStep(extent=100, from_date=today),
        result_type=CaseActionResult,
    )
    await _skip(client, timedelta(days=2))
    # The stage change continued the case as new: the run in follow-up is the one to save.
    await _until_idle(client.get_workflow_handle(handle.id))
    in_follow_up = (await client.get_workflow_handle(handle.id).describe()).run_id
    relapse = local_date(await _now(client))
    news = AbsenceNews(key=f"spell:{relapse}", sick_start=relapse, spell_start=relapse)
    await handle.signal(RehabCaseWorkflow.absence_news, news)
    await handle.signal(RehabCaseWorkflow.absence_news, news)  # a resend changes nothing
    await eventually(
        lambda: handle.query(RehabCaseWorkflow.state), lambda view: view.relapse_count == 1
    )
    latest = client.get_workflow_handle(handle.id)
    await _until_idle(latest)
    await latest.terminate("history saved")
    assert in_follow_up is not None
    return handle.id, in_follow_up


async def absence_monitor_tells_open_case(client: Client, task_queue: str, unit_code: str) -> str:
    """A long absence opens a case; its end and a relapse two days later are news for it."""
    employee = RELAPSING_EMPLOYEE
    today = local_date(await _now(client))
    start = today - timedelta(days=20)

    def batch(*records: AbsenceRecord) -> AbsenceBatch:
        return AbsenceBatch(unit_code=unit_code, records=records)

    handle = await client.start_workflow(
        AbsenceMonitorWorkflow.run,
        new_monitor_input(MonitorState(employee_pseudonym=employee, unit_code=unit_code)),
        id=monitor_workflow_id(employee),
        task_queue=task_queue,
        start_signal="record_absences",
        start_signal_args=[batch(AbsenceRecord(event_id="t1", kind="sick", start=start))],
    )
    await handle.signal(
        AbsenceMonitorWorkflow.record_absences,
        batch(
            AbsenceRecord(event_id="t2", kind="sick", start=start, end=today - timedelta(days=3)),
            AbsenceRecord(event_id="t3", kind="sick", start=today - timedelta(days=1)),
        ),
    )
    await eventually(
        lambda: handle.query(AbsenceMonitorWorkflow.summary),
        lambda view: any(key.startswith("spell:") for key in view.fired) and not view.busy,
    )
    return handle.id


SCENARIOS["rehab_case_relapse_from_absence_data"] = case_relapse_from_absence_data
SCENARIOS["absence_monitor_tells_open_case"] = absence_monitor_tells_open_case


async def absence_monitor_knows_its_open_case(
    client: Client, task_queue: str, unit_code: str
) -> str:
    """A monitor started knowing the employee has no open case: a short sick period asks
    nothing; a referral opens a case, which the next sick period is told of in one question."""
    employee = REFERRED_EMPLOYEE
    today = local_date(await _now(client))

    def batch(*records: AbsenceRecord) -> AbsenceBatch:
        return AbsenceBatch(unit_code=unit_code, records=records)

    def short(event_id: str, days_ago: int) -> AbsenceRecord:
        start = today - timedelta(days=days_ago)
        return AbsenceRecord(event_id=event_id, kind="sick", start=start, end=start)

    handle = await client.start_workflow(
        AbsenceMonitorWorkflow.run,
        new_monitor_input(
            MonitorState(employee_pseudonym=employee, unit_code=unit_code, knows_open_case=True)
        ),
        id=monitor_workflow_id(employee),
        task_queue=task_queue,
        start_signal="record_absences",
        start_signal_args=[batch(short("k1", 60))],
    )
    await eventually(
        lambda: handle.query(AbsenceMonitorWorkflow.summary),
        lambda view: view.last_event_id == "k1" and not view.busy,
    )
    referral = CaseReferral(
        case_id=uuid.UUID("00000000-0000-4000-8000-00000000ca60"),
        unit_code=unit_code,
        trigger=CaseTrigger.MANAGER_CONCERN,
        opened_at=await _now(client),
    )
    assert (await handle.execute_update(AbsenceMonitorWorkflow.open_case, referral)).opened
    await handle.signal(AbsenceMonitorWorkflow.record_absences, batch(short("k2", 10)))
    await eventually(
        lambda: handle.query(AbsenceMonitorWorkflow.summary),
        lambda view: view.last_event_id == "k2" and not view.busy,
    )
    return handle.id


SCENARIOS["absence_monitor_knows_its_open_case"] = absence_monitor_knows_its_open_case


async def case_opened_with_what_had_passed(client: Client, task_queue: str, unit_code: str) -> str:
    """A monitor opens a case a hundred days into a sick leave: the opener writes the passed
    deadlines with the opening (`passed_recorded`) and starts the case overdue; then a
    coordinator acts on it."""
    monitor = await _monitor_told_of_sick_leave(
        client,
        task_queue,
        unit_code,
        MonitorState(employee_pseudonym=LATE_EMPLOYEE, unit_code=unit_code, knows_open_case=True),
        "late",
        days=100,
    )
    view = await eventually(
        lambda: monitor.query(AbsenceMonitorWorkflow.summary),
        lambda view: any(key.startswith("long_absence") for key in view.fired) and not view.busy,
    )
    key = next(key for key in view.fired if key.startswith("long_absence"))
    handle = client.get_workflow_handle_for(
        RehabCaseWorkflow.run, case_workflow_id(rule_case_id(LATE_EMPLOYEE, key))
    )
    assert (await handle.query(RehabCaseWorkflow.state)).overdue
    held = await _now(client) - timedelta(hours=2)
    await handle.execute_update(
        "book_joint_meeting",
        BookJointMeeting(starts_at=held, ends_at=held + timedelta(hours=1)),
        result_type=CaseActionResult,
    )
    await _until_idle(handle)
    await handle.terminate("history saved")
    await monitor.terminate("history saved")
    return handle.id


SCENARIOS["rehab_case_opened_with_what_had_passed"] = case_opened_with_what_had_passed
# The same monitors asking the record store by a local activity (patch
# absence-local-question): the files above keep guarding monitors that asked by activity.
SCENARIOS["absence_monitor_opens_case_locally"] = absence_monitor_opens_case
SCENARIOS["absence_monitor_tells_open_case_locally"] = absence_monitor_tells_open_case
SCENARIOS["absence_monitor_knows_its_open_case_locally"] = absence_monitor_knows_its_open_case
# Monitors started by today's code (`new_monitor_input`) know every patch they were started
# with and record no patch markers: the `_locally` files keep guarding monitors that did.
SCENARIOS["absence_monitor_opens_case_unmarked"] = absence_monitor_opens_case
SCENARIOS["absence_monitor_tells_open_case_unmarked"] = absence_monitor_tells_open_case
SCENARIOS["absence_monitor_knows_its_open_case_unmarked"] = absence_monitor_knows_its_open_case
SCENARIOS["absence_monitor_decides_referrals_unmarked"] = absence_monitor_decides_referrals

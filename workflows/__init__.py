"""Every workflow type the worker runs."""

from temporalio import workflow

# Each workflow run imports its own module afresh inside the sandbox, and with it this
# package. Importing every workflow module there as well made each new run (a start, a
# continue-as-new, a cache miss, a replay) pay for all of them; inside the sandbox only the
# run's own module is needed. Worker, API and replayer import the list outside it.
if not workflow.unsafe.in_sandbox():
    from workflows.absence_monitor import AbsenceMonitorWorkflow
    from workflows.information_request import InformationRequestWorkflow
    from workflows.intervention import InterventionWorkflow
    from workflows.meeting_team import MeetingTeamWorkflow
    from workflows.notification_dispatcher import NotificationDispatcherWorkflow
    from workflows.programme_cycle import ProgrammeCycleWorkflow
    from workflows.rehab_case import RehabCaseWorkflow

    ALL_WORKFLOWS: list[type] = [
        RehabCaseWorkflow,
        InterventionWorkflow,
        AbsenceMonitorWorkflow,
        NotificationDispatcherWorkflow,
        InformationRequestWorkflow,
        MeetingTeamWorkflow,
        ProgrammeCycleWorkflow,
    ]

__all__ = [
    "ALL_WORKFLOWS",
    "AbsenceMonitorWorkflow",
    "InformationRequestWorkflow",
    "InterventionWorkflow",
    "MeetingTeamWorkflow",
    "NotificationDispatcherWorkflow",
    "ProgrammeCycleWorkflow",
    "RehabCaseWorkflow",
]

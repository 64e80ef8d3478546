"""Every workflow type the worker runs."""

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

"""Every workflow type the worker runs."""

from workflows.rehab_case import RehabCaseWorkflow

ALL_WORKFLOWS: list[type] = [RehabCaseWorkflow]

__all__ = ["ALL_WORKFLOWS", "RehabCaseWorkflow"]

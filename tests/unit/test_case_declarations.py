"""The declarations agree with the code: every action has its route, update and rules,
every kind the code records is declared, and no role sees a kind DESIGN.md denies it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from temporalio import workflow

from api.routers.case_actions import router
from models.api import Role
from models.case.actions import ACTIONS, action_table
from models.case.events import EVENT_KINDS, VISIBLE_TRACKS, ByDetail, Track, visible_to
from models.case.rules import CaseCore
from models.deadlines import DeadlineStep
from models.policy import POLICIES
from workflows.rehab_case import RehabCaseWorkflow

UPDATES = workflow._Definition.must_from_class(RehabCaseWorkflow).updates
ROOT = Path(__file__).resolve().parents[2]
# Modules that record timeline events.
RECORDING_MODULES = [
    *sorted((ROOT / "models" / "case").glob("*.py")),
    ROOT / "workflows" / "intervention.py",
    ROOT / "workflows" / "information_request.py",
    *sorted((ROOT / "activities").glob("*.py")),
]
# DESIGN.md, roles table: tracks each role must never see (coordinator: everything).
DENIED: dict[Role, set[Track]] = {
    Role.COORDINATOR: set(),
    Role.MANAGER: {
        Track.SCREENING,
        Track.VIOLENCE,
        Track.MEDICAL,
        Track.SOCIAL,
        Track.HEALTHCARE,
        Track.CONSENT,
        Track.RESTRICTED,
    },
    Role.EMPLOYEE: {
        Track.SCREENING,
        Track.VIOLENCE,
        Track.MEDICAL,
        Track.SOCIAL,
        Track.HEALTHCARE,
        Track.RESTRICTED,
    },
    Role.FK_OFFICER: {
        Track.SCREENING,
        Track.VIOLENCE,
        Track.MEDICAL,
        Track.SOCIAL,
        Track.HEALTHCARE,
        Track.WORK,
        Track.CONSENT,
        Track.RESTRICTED,
    },
    Role.FHV: set(Track) - {Track.GENERAL, Track.MEDICAL},
    # DESIGN: social services see only the social track, with the employee's consent.
    Role.SOCIAL_SERVICES: set(Track) - {Track.GENERAL, Track.SOCIAL},
    Role.ADMIN: set(Track),
    Role.HR_SYSTEM: set(Track),
    # Aggregates only: no step of any case.
    Role.ANALYST: set(Track),
}


def _recorded_kinds() -> set[str]:
    """The literal kinds passed to record(...)/_record(...) or as kind=... in the code."""
    kinds: set[str] = set()

    def literals(node: ast.AST) -> set[str]:
        match node:
            case ast.Constant(value=str(value)):
                return {value}
            case ast.IfExp(body=body, orelse=orelse):
                return literals(body) | literals(orelse)
            case ast.JoinedStr(values=[ast.Constant(value="deadline_"), _]):
                return {f"deadline_{step.value}" for step in DeadlineStep}
        return set()

    for path in RECORDING_MODULES:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name in {"record", "_record"} and node.args:
                kinds |= literals(node.args[0])
            if name != "MeetingRecord":  # a meeting's kind (joint, follow_up) is no event
                kinds |= {k for kw in node.keywords if kw.arg == "kind" for k in literals(kw.value)}
    return {k for k in kinds if k.replace("_", "").isalpha() and k == k.lower()}


def test_every_recorded_kind_is_declared() -> None:
    recorded = _recorded_kinds()
    assert {"joint_meeting_held", "deadline_overdue", "intervention_assigned"} <= recorded
    assert recorded - set(EVENT_KINDS) == set()


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.name)
def test_every_declared_action_has_a_route_an_update_and_its_rules(action: object) -> None:
    from models.case.actions import ActionDeclaration

    assert isinstance(action, ActionDeclaration)
    paths = {getattr(r, "path", "") for r in router.routes}
    assert f"/api/v1/cases/{{case_id}}{action.path}" in paths
    # Every declared name reaches the one dynamic handler, which takes the declared input.
    assert action.name not in UPDATES
    assert UPDATES[None].validator is not None
    assert callable(getattr(CaseCore, f"check_{action.name}"))
    assert callable(getattr(CaseCore, f"apply_{action.name}"))


def test_the_case_has_no_typed_update_beside_the_declared_actions() -> None:
    # Declared actions go through the dynamic handler (None); the one typed update is the
    # API's wait for an older case's first record.
    assert set(UPDATES) == {None, "wait_until_recorded"}


@pytest.mark.parametrize("role", list(Role))
def test_no_role_sees_a_kind_the_roles_table_denies_it(role: Role) -> None:
    details = [{"track": t} for t in ("medical", "social", "work_oriented")] + [
        {"party": p} for p in ("healthcare", "fhv", "social_services", "arbetsformedlingen")
    ]
    for kind, track in EVENT_KINDS.items():
        for detail in details if isinstance(track, ByDetail) else [{}]:
            if visible_to(role, kind, detail):
                from models.case.events import track_of

                assert track_of(kind, detail) not in DENIED[role], (role, kind, detail)
    assert VISIBLE_TRACKS.get(role, frozenset()).isdisjoint(DENIED[role])


def test_managers_see_the_steps_they_used_to_lose() -> None:
    for kind in (
        "relapse_reported",
        "deadline_overdue",
        "deadline_escalation",
        "long_term_track_entered",
    ):
        assert visible_to(Role.MANAGER, kind, {}), kind
    assert not visible_to(Role.MANAGER, "screening_recorded", {})
    assert not visible_to(Role.MANAGER, "an_undeclared_step", {})


def test_the_deadlines_an_action_meets_are_the_policies_own() -> None:
    met_by = {
        (rule.met_by_action, rule.kind)
        for policy in POLICIES.values()
        for rule in policy.deadlines
        if rule.met_by_action is not None
    }
    declared = {(a.name, kind) for a in ACTIONS for kind in a.meets}
    assert declared == met_by


def test_the_readme_lists_every_action_as_declared() -> None:
    assert action_table() in (ROOT / "README.md").read_text(), (
        "paste models.case.actions.action_table() into the README's action table"
    )

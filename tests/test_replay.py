"""Replay every saved history against today's workflow code: non-determinism fails here."""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from core.codec import KeyRing, build_data_converter
from core.temporal import workflow_runner
from tests.histories.scenarios import HISTORY_PAYLOAD_KEYS, SCENARIOS
from tests.histories.scenarios_dispatch import DISPATCH_SCENARIOS
from tests.histories.scenarios_meetings import MEETING_SCENARIOS
from tests.histories.scenarios_programme import PROGRAMME_SCENARIOS
from workflows import ALL_WORKFLOWS

HISTORIES = Path(__file__).resolve().parent / "histories"
# Each scenario module saves its histories in a folder of its own.
FOLDERS: dict[Path, Collection[str]] = {
    HISTORIES: SCENARIOS,
    HISTORIES / "meetings": MEETING_SCENARIOS,
    HISTORIES / "dispatch": DISPATCH_SCENARIOS,
    HISTORIES / "programme": PROGRAMME_SCENARIOS,
}
SAVED = sorted(
    str((folder / f"{name}.json").relative_to(HISTORIES))
    for folder, names in FOLDERS.items()
    for name in names
)


@pytest.mark.parametrize("folder", sorted(FOLDERS), ids=lambda p: p.name)
def test_every_scenario_has_a_saved_history(folder: Path) -> None:
    saved = {p.stem for p in folder.glob("*.json")}
    assert saved == set(FOLDERS[folder]), "run `make histories` to save the missing ones"


def test_every_workflow_type_is_guarded_by_a_history() -> None:
    def workflow_type(path: Path) -> str:
        started = json.loads(path.read_text())["events"][0]
        return str(started["workflowExecutionStartedEventAttributes"]["workflowType"]["name"])

    # Histories of every scenario module count, in every folder.
    guarded = {workflow_type(p) for p in HISTORIES.rglob("*.json")}
    assert guarded >= {w.__name__ for w in ALL_WORKFLOWS}


@pytest.mark.parametrize("saved", SAVED)
async def test_saved_history_replays_on_current_code(saved: str) -> None:
    history = WorkflowHistory.from_json(f"wf-{saved}", (HISTORIES / saved).read_text())
    replayer = Replayer(
        workflows=ALL_WORKFLOWS,
        data_converter=build_data_converter(KeyRing.from_config(HISTORY_PAYLOAD_KEYS)),
        workflow_runner=workflow_runner(),
    )
    await replayer.replay_workflow(history)

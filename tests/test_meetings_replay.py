"""The saved joint-meeting histories replay on today's code (tests/histories/meetings/)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from core.codec import KeyRing, build_data_converter
from core.temporal import workflow_runner
from tests.histories.scenarios import HISTORY_PAYLOAD_KEYS
from tests.histories.scenarios_meetings import MEETING_SCENARIOS
from workflows import ALL_WORKFLOWS

HISTORIES = Path(__file__).resolve().parent / "histories" / "meetings"


def test_every_meeting_scenario_has_a_saved_history() -> None:
    assert {p.stem for p in HISTORIES.glob("*.json")} == set(MEETING_SCENARIOS)


@pytest.mark.parametrize("name", sorted(MEETING_SCENARIOS))
async def test_saved_meeting_history_replays_on_current_code(name: str) -> None:
    history = WorkflowHistory.from_json(f"wf-{name}", (HISTORIES / f"{name}.json").read_text())
    replayer = Replayer(
        workflows=ALL_WORKFLOWS,
        data_converter=build_data_converter(KeyRing.from_config(HISTORY_PAYLOAD_KEYS)),
        workflow_runner=workflow_runner(),
    )
    await replayer.replay_workflow(history)

"""`make up`'s supervisor: starts the embedded stack, survives a restart, refuses busy ports."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.outbox_support import free_port

ROOT = Path(__file__).resolve().parent.parent
PIN = "19811218-9876"


@pytest.fixture
def stack_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REHABFLOW_")}
    env.update(
        REHABFLOW_DATA_DIR=str(tmp_path / "data"),
        REHABFLOW_TEMPORAL__PORT=str(free_port()),
        REHABFLOW_TEMPORAL__UI_PORT=str(free_port()),
        REHABFLOW_API__PORT=str(free_port()),
        REHABFLOW_LOG__FORMAT="json",
    )
    return env


class Stack:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.api = f"http://127.0.0.1:{env['REHABFLOW_API__PORT']}"
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "deploy.local"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "make up exited during start-up"
            try:
                if httpx.get(f"{self.api}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError("the stack did not become ready")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(60)
        self._log.close()
        return code


@pytest.fixture
def stacks(tmp_path: Path) -> Iterator[list[Stack]]:
    started: list[Stack] = []
    yield started
    for stack in started:
        if stack.process.poll() is None:
            # Its parts run in sessions of their own: let the supervisor stop them first.
            stack.process.send_signal(signal.SIGTERM)
            try:
                stack.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(stack.process.pid, signal.SIGKILL)
                for pid in _pids(stack.env).values():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)


def _pids(env: dict[str, str]) -> dict[str, int]:
    pids: dict[str, int] = json.loads(
        Path(env["REHABFLOW_DATA_DIR"], "run", "pids.json").read_text()
    )
    return pids


def _kill_and_see_it_come_back(stack: Stack, part: str) -> None:
    """SIGKILL one part by its PID; the supervisor starts a new one and the API is ready."""
    old = _pids(stack.env)[part]
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert stack.process.poll() is None, f"make up stopped after {part} was killed"
        try:
            if _pids(stack.env)[part] != old:
                stack.wait_ready()
                return
        except (OSError, ValueError):
            pass  # the file is being replaced
        time.sleep(0.5)
    raise AssertionError(f"{part} did not come back")


def test_make_up_runs_the_engine_survives_each_part_killed_and_a_second_start_keeps_every_case(
    stack_env: dict[str, str], stacks: list[Stack], tmp_path: Path
) -> None:
    log = tmp_path / "up.log"
    stacks.append(first := Stack(stack_env, log))
    first.wait_ready()
    # No banner that names the server software.
    assert "server" not in httpx.get(f"{first.api}/readyz", timeout=5).headers
    assert (
        httpx.get(
            f"http://127.0.0.1:{stack_env['REHABFLOW_TEMPORAL__UI_PORT']}/", timeout=5
        ).status_code
        == 200
    )
    subprocess.run(
        [sys.executable, "starter.py", "add-unit", "HT-1", "--name", "Home care"],
        cwd=ROOT,
        env=stack_env,
        check=True,
        capture_output=True,
    )
    # The dev tokens of the first `make up`, one per role, kept under the data directory.
    tokens = json.loads(
        Path(stack_env["REHABFLOW_DATA_DIR"], "auth", "dev-tokens.json").read_text()
    )
    coordinator = {"Authorization": f"Bearer {tokens['coordinator']}"}
    created = httpx.post(
        f"{first.api}/api/v1/cases",
        json={"employee_ref": PIN, "unit_code": "HT-1", "trigger": "manager_concern"},
        headers=coordinator,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    case_id = created.json()["case_id"]
    listed = subprocess.run(
        [
            str(Path(sys.executable).parent / "temporal"),
            "workflow",
            "list",
            "--address",
            f"127.0.0.1:{stack_env['REHABFLOW_TEMPORAL__PORT']}",
            "--query",
            "RehabStage='identified'",
            "--output",
            "json",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    assert f"case-{case_id}" in {w["execution"]["workflowId"] for w in json.loads(listed.stdout)}

    # Each part killed in turn (the worker, the API, Temporal, PostgreSQL) comes back.
    for part in ("worker", "api", "temporal", "postgres"):
        _kill_and_see_it_come_back(first, part)
    # ...and together they still act on the case: the worker runs its update, the API reads it.
    consent = httpx.post(
        f"{first.api}/api/v1/cases/{case_id}/record-consent",
        json={"party": "fk", "given": True},
        headers=coordinator,
        timeout=60,
    )
    assert consent.status_code == 200, consent.text
    assert first.stop() == 0
    said = log.read_text()
    for part in ("worker", "api", "temporal", "postgres"):
        assert f"{part} restarted (pid" in said
    # Where the dev tokens are, never the tokens themselves.
    assert "dev-tokens.json" in said
    assert not any(token in said for token in tokens.values())

    stacks.append(second := Stack(stack_env, log))
    second.wait_ready()
    again = httpx.get(f"{second.api}/api/v1/cases/{case_id}", headers=coordinator, timeout=10)
    assert again.status_code == 200
    assert again.json()["stage"] == "identified"
    # The workflow itself survived too: it still answers queries after the restart.
    described = subprocess.run(
        [
            str(Path(sys.executable).parent / "temporal"),
            "workflow",
            "describe",
            "--address",
            f"127.0.0.1:{stack_env['REHABFLOW_TEMPORAL__PORT']}",
            "--workflow-id",
            f"case-{case_id}",
            "--output",
            "json",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    assert (
        json.loads(described.stdout)["workflowExecutionInfo"]["status"]
        == "WORKFLOW_EXECUTION_STATUS_RUNNING"
    )
    assert second.stop() == 0
    assert PIN not in log.read_text() and "8112189876" not in log.read_text()


def test_make_up_names_the_busy_port_and_starts_nothing(stack_env: dict[str, str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", int(stack_env["REHABFLOW_API__PORT"])))
        busy.listen()
        result = subprocess.run(
            [sys.executable, "-m", "deploy.local"],
            cwd=ROOT,
            env=stack_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"port {stack_env['REHABFLOW_API__PORT']} (admin API) is already in use" in result.stderr
    assert not Path(stack_env["REHABFLOW_DATA_DIR"], "postgres").exists()

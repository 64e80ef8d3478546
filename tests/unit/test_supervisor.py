"""`make up`'s supervisor on its own: backoff, giving up in one clear line, the port check."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from deploy.local import Backoff, Child, StartupError, Supervisor, require_free_port


def test_a_part_that_keeps_failing_is_restarted_with_doubling_delays_then_given_up(
    tmp_path: Path,
) -> None:
    said: list[str] = []
    flaky = Child("flaky", ["/bin/sh", "-c", "exit 3"], log_path=tmp_path / "flaky.log")
    flaky.start()
    supervisor = Supervisor(
        [flaky],
        Backoff(initial_s=0.01, max_s=0.03, max_failures=3),
        tmp_path / "run" / "pids.json",
        say=said.append,
        poll_s=0.005,
    )

    assert supervisor.run(stopping=[]) == 1

    failures = [line for line in said if "restarting in" in line]
    assert failures == [
        "[yellow]flaky exited with code 3; restarting in 0.01 s (restart 1 of 3)[/yellow]",
        "[yellow]flaky exited with code 3; restarting in 0.02 s (restart 2 of 3)[/yellow]",
        "[yellow]flaky exited with code 3; restarting in 0.03 s (restart 3 of 3)[/yellow]",
    ]
    assert said[-1] == (
        "[red]giving up on flaky: it exited with code 3, 3 restarts in a row failed; "
        f"see {tmp_path / 'flaky.log'}. Stopping rehabflow.[/red]"
    )
    # Operators (and the stack test) find each part's current process here.
    assert (tmp_path / "run" / "pids.json").read_text().startswith('{"flaky": ')


def test_a_part_killed_by_a_signal_is_named_so(tmp_path: Path) -> None:
    sleeper = Child("sleeper", ["/bin/sh", "-c", "kill -9 $$"])
    sleeper.start()
    assert sleeper.process is not None
    sleeper.process.wait()

    assert sleeper.exit_status() == "was killed by signal 9"


def test_the_port_check_ignores_time_wait_but_refuses_a_listener() -> None:
    with socket.socket() as listener:
        # As uvicorn and the Temporal server do; their connections inherit it.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        with pytest.raises(StartupError, match=f"port {port} \\(admin API\\) is already in use"):
            require_free_port(port, "admin API")
    # The server side closes first, so its end of the connection waits in TIME_WAIT.
    accepted.close()
    client.close()

    require_free_port(port, "admin API")

"""Two workers and two API processes, configured only by settings, one worker killed mid-load.

The test-sized run of benchmarks/scale_out.py (which prints the figures for a few hundred
cases): the session's dev server and PostgreSQL stand in for an external cluster; the
processes are `python worker.py` and `uvicorn --factory api.app:app_factory`.
"""

from __future__ import annotations

from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from benchmarks.scale_out import run
from core.secrets import Secrets

CASES = 24


async def test_every_case_completes_on_two_workers_though_one_is_killed_mid_load(
    dev_env: WorkflowEnvironment, database_url: str, test_secrets: Secrets, tmp_path: Path
) -> None:
    result = await run(
        dev_env.client,
        dev_env.client.service_client.config.target_host,
        database_url,
        test_secrets,
        tmp_path,
        cases=CASES,
    )
    # Nothing lost: every referral became a case, and every case was closed exactly once.
    assert result.recorded == CASES
    assert result.still_open == 0
    assert result.closed_once == CASES
    assert result.refused == 0
    # Both workers did work; the killed one before it died, the other one after.
    assert len(result.work_per_worker) == 2, result.work_per_worker
    assert result.killed in result.work_per_worker
    assert all(count > 0 for count in result.work_per_worker.values())
    # The surviving worker's metrics port (its probes' port) serves the SDK's metrics.
    assert "temporal_workflow_task_execution_latency_bucket" in result.survivor_metrics
    assert 'task_queue="scale-out-' in result.survivor_metrics

"""Huge counts: a plan too large for memory is refused at once with an estimate of what it implies;
the largest plan allowed still obeys Ctrl-C from its first seconds (while it is planned, while its
slots are committed, while it runs), exiting promptly with the interrupt code 130."""

from __future__ import annotations

import signal
import time

import pytest
import yaml

from tests.conftest import scripted_roles
from tests.ops.helpers import ServerProcess, safeset, start
from tests.servers.chat_server import Latency

PER_CATEGORY = 7_142  # x 14 categories = 99,988 slots, just under the limit


def test_a_plan_of_millions_is_refused_at_once_with_its_cost(tmp_path):
    config = tmp_path / "huge.yaml"
    config.write_text("name: huge\nstages: {domains: {scenarios_per_category: 1000000}, scenarios: {}}\n")
    db = tmp_path / "huge.duckdb"
    started = time.monotonic()
    result = safeset("run", str(config), "--db", str(db), timeout=30)
    assert result.returncode == 2, result.stderr[-2000:]
    assert time.monotonic() - started < 10
    assert "14 categories x 1,000,000 scenarios_per_category = 14,000,000 scenario slots" in result.stderr
    assert "at least 14,000,000 LLM calls" in result.stderr and "at most 100,000 slots" in result.stderr
    assert not db.exists()


@pytest.fixture(scope="module")
def server():
    with ServerProcess(latency=Latency(base=0.01)) as server:
        yield server


@pytest.mark.parametrize(
    # A stop while the scenarios ran sometimes never ended (about one run in three at 4 s): Python
    # 3.11's asyncio.wait_for swallowed the cancel of the writer's loop (tests/pipeline/test_writer.py).
    "after",
    [0.5, 0.6, 0.8, 1.0, 1.2, 2.0, 4.0, 6.0],
)
def test_ctrl_c_stops_the_largest_plan_at_once(server, tmp_path, after):
    config = tmp_path / "large.yaml"
    roles = scripted_roles(server)
    config.write_text(
        yaml.safe_dump(
            {
                "name": "large",
                "roles": roles,
                # The prefix list checks generator refusals: the default classifier's first load of
                # the sentence embedder (seconds of imports on a worker thread) cannot be interrupted,
                # and would be measured instead of the runner's signal handling.
                "stages": {
                    "domains": {"scenarios_per_category": PER_CATEGORY},
                    "scenarios": {"refusal": {"kind": "prefix"}},
                },
            }
        )
    )
    run = start("run", str(config), "--db", str(tmp_path / "large.duckdb"))
    time.sleep(after)
    assert run.poll() is None, run.communicate()
    run.send_signal(signal.SIGINT)
    sent = time.monotonic()
    try:
        _, err = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
    seconds = time.monotonic() - sent
    assert run.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "Interrupted" in err
    assert seconds < 3, f"took {seconds:.1f}s to stop"

"""`kill -9` of a real `safeset run` while work downstream of a barrier runs early: the persona pool
has decided the scenario personas and instructions are being asked for them while the expansion
(related_personas, slowed to one call at a time) still runs. The resume ends with exactly the
dataset of an uninterrupted run, and asks only what was not committed."""

from __future__ import annotations

import os
import signal
import time

import pytest
import yaml

from tests.ops.helpers import dataset, safeset, sessions, settled, start
from tests.ops.test_crashes import STAGES, cache_size
from tests.pipeline.stages.conftest import trident_config
from tests.pipeline.test_barriers import RepeatingPersonas
from tests.servers.chat_server import ChatServer, Latency


class CountedWorld(RepeatingPersonas):
    """Counts the answers of the expansion and of the instructions stage."""

    related = 0
    instructions = 0

    def _Persona(self, user, seed, body):
        self.related += user.startswith("Persona: ")
        return super()._Persona(user, seed, body)

    def _InstructionsAnswer(self, user, seed, body):
        self.instructions += 1
        return super()._InstructionsAnswer(user, seed, body)


@pytest.fixture(scope="module")
def world():
    script = CountedWorld()
    with ChatServer(script=script, latency=Latency(base=0.05)) as server:
        yield server, script


def test_a_kill_while_instructions_run_ahead_of_the_expansion_resumes_to_the_same_dataset(world, tmp_path):
    server, script = world
    config = tmp_path / "early.yaml"
    raw = trident_config(server, name="early", seed=9, related_personas={"concurrency": 1})
    config.write_text(yaml.safe_dump(raw))
    before, related_before = server.stats.total_answered(), script.related
    result = safeset("run", str(config), "--db", str(tmp_path / "reference.duckdb"))
    assert result.returncode == 0, result.stderr
    calls, related_calls = server.stats.total_answered() - before, script.related - related_before
    expected = dataset(tmp_path / "reference.duckdb", STAGES)
    assert expected["core"] and expected["edge"]

    db = tmp_path / "killed.duckdb"
    before, related_before, instructions_before = (
        server.stats.total_answered(),
        script.related,
        script.instructions,
    )
    proc = start("run", str(config), "--db", str(db))
    deadline = time.monotonic() + 60
    while script.instructions == instructions_before:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.002)
    time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    settled(server)
    # The kill landed where it should: instructions answered while the expansion was unfinished.
    assert 0 < script.related - related_before < related_calls
    asked_before_resume = server.stats.total_answered() - before
    cached_at_kill = cache_size(db)

    result = safeset("run", str(config), "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert dataset(db, STAGES) == expected
    assert sessions(db) == ["crashed", "completed"]
    assert server.stats.total_answered() - before - asked_before_resume == calls - cached_at_kill

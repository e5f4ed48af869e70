"""SAFESET_REQUIRE_ALL=1 (set by .ci/run) turns the skip of a test that needs a vLLM, Chromium,
docker-compose or SmolLM2 into a failure; without it the skip stays a skip with its reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST = "tests/ops/test_deploy.py::test_docker_compose_config_accepts_the_file_and_resolves_the_settings"


def pytest_without_compose(require_all: bool) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # no docker, no docker-compose
    env.pop("SAFESET_REQUIRE_ALL", None)
    if require_all:
        env["SAFESET_REQUIRE_ALL"] = "1"
    command = [sys.executable, "-m", "pytest", TEST, "-rsf", "-p", "no:cacheprovider"]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_a_required_test_that_skips_fails_only_when_every_test_is_required() -> None:
    laptop = pytest_without_compose(require_all=False)
    assert laptop.returncode == 0 and "1 skipped" in laptop.stdout, laptop.stdout[-2000:]
    assert "docker-compose" in laptop.stdout  # the one-line reason
    ci = pytest_without_compose(require_all=True)
    assert ci.returncode == 1 and "1 error" in ci.stdout, ci.stdout[-2000:]  # a skip at setup: an error
    assert "SAFESET_REQUIRE_ALL=1 but this compose test was skipped" in ci.stdout

"""`safeset serve` as a real process on a free loopback port, against the scripted chat server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.pipeline.stages.conftest import trident_config
from tests.pipeline.stages.trident_world import World
from tests.servers.chat_server import ChatServer, Latency

TOKEN = "test-token-5f1c9a"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Served:
    """`safeset serve --db DB` in its own process: `client` (with the token), `kill()` (SIGKILL),
    `stop()` (SIGTERM, waits), `restart()` (the same database and port)."""

    def __init__(self, db: Path, workers: int = 2, token: str | None = TOKEN, host: str = "127.0.0.1",
                 env: dict[str, str] | None = None):  # fmt: skip
        self.db, self.workers, self.token, self.host = db, workers, token, host
        self.extra_env = env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = db.parent / f"serve-{self.port}.log"
        self.process: subprocess.Popen | None = None
        self.start()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def env(self) -> dict[str, str]:
        env = {**os.environ}
        env.pop("SAFESET_TOKEN", None)
        if self.token:
            env["SAFESET_TOKEN"] = self.token
        return {**env, **self.extra_env}

    def start(self) -> None:
        args = [sys.executable, "-m", "pipeline.cli", "serve", "--db", str(self.db), "--port", str(self.port),
                "--workers", str(self.workers), "--host", self.host]  # fmt: skip
        with self.log.open("a") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=self.env())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"safeset serve exited {self.process.returncode}:\n{self.log.read_text()}"
                )
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"safeset serve did not answer:\n{self.log.read_text()}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)
        return self.process.returncode

    def restart(self) -> None:
        self.start()

    def wait_for(self, run_id: str, states: tuple[str, ...] = ("finished",), timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            doc = self.client.get(f"/v1/runs/{run_id}").json()
            if doc["queue"]["state"] in states:
                return doc
            time.sleep(0.2)
        raise AssertionError(f"run {run_id} is still {doc['queue']}:\n{self.log.read_text()[-3000:]}")

    def wait_export(self, job_id: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.client.get(f"/v1/exports/{job_id}").json()
            if job["state"] in ("finished", "failed"):
                return job
            time.sleep(0.2)
        raise AssertionError(f"export {job_id} did not end")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    started: list[Served] = []

    def start(db: Path | None = None, **kwargs: Any) -> Served:
        served = Served(db or tmp_path / "served.duckdb", **kwargs)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()
        served.client.close()


@pytest.fixture(scope="module")
def world() -> Iterator[ChatServer]:
    """One scripted TRIDENT world; its answers are a function of the request alone."""
    with ChatServer(script=World(), latency=Latency(base=0.005)) as server:
        yield server


def config_text(server: ChatServer, name: str = "served", seed: int = 17, **roles: Any) -> str:
    config = trident_config(server, name=name, seed=seed)
    config["roles"]["default"].update(roles)
    return yaml.safe_dump(config, sort_keys=False)

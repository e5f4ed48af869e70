"""Resume overhead: what a run stopped half way costs, against the same run uninterrupted.

A `safeset run` of a three-stage chain (scenarios -> personas -> related personas: 700 scenario
slots, about 2,100 calls) against the local latency server (in a process of its own). The run is
stopped when the server has answered half of the uninterrupted run's calls, by `kill -9` or by
Ctrl-C (SIGINT), then run again with the same command. Reported: the calls made beyond the
uninterrupted run's (answers lost because they were not committed yet), the seconds beyond its
seconds (both processes' wall time, start-up included), and whether the final dataset is the same.

    python -m bench.resume_overhead                 # 3 rounds of each, fixed 50 ms latency
    python -m bench.resume_overhead --rounds 1 --per-category 20
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tests.ops.helpers import ServerProcess, dataset
from tests.servers.chat_server import Latency

STAGES = ("domains", "scenarios", "personas", "related_personas")


def config(url: str, per_category: int) -> dict:
    role = {"backend": "openai", "model": "scripted", "base_urls": [url]}
    off = {"refusal": None}  # the refusal check would add its own CPU time to what is measured
    stages = {"domains": {"scenarios_per_category": per_category}, "scenarios": off, "personas": off,
              "related_personas": {"depth": 1, "fanout": 2, **off}}  # fmt: skip
    return {"name": "resume-bench", "seed": 0, "roles": {"default": role}, "stages": stages}


def run(config_path: Path, db: Path, server: ServerProcess, stop_at: int | None = None,
        stop: signal.Signals = signal.SIGKILL) -> tuple[float, int]:  # fmt: skip
    """Seconds and calls answered of one `safeset run`, stopped by `stop` once `stop_at` calls were
    answered (when given)."""
    before = server.stats().total_answered()
    started = time.perf_counter()
    command = [sys.executable, "-m", "pipeline.cli", "run", str(config_path), "--db", str(db)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if stop_at is not None:
        while server.stats().total_answered() - before < stop_at:
            if process.poll() is not None:
                raise RuntimeError(f"the run ended before it was stopped: {process.stderr.read()[-2000:]}")
            time.sleep(0.01)
        process.send_signal(stop)
    _, err = process.communicate()
    if stop_at is None and process.returncode != 0:
        raise RuntimeError(err[-2000:])
    return time.perf_counter() - started, server.stats().total_answered() - before


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per-category", type=int, default=50, help="scenario slots per hazard category")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ServerProcess(latency=Latency(base=args.latency)) as server:
        folder = Path(tmp)
        config_path = folder / "run.yaml"
        config_path.write_text(yaml.safe_dump(config(server.url, args.per_category)))
        seconds, calls = run(config_path, folder / "reference.duckdb", server)
        expected = dataset(folder / "reference.duckdb", STAGES)
        print(f"uninterrupted: {calls:,} calls in {seconds:.1f}s ({args.latency * 1000:.0f} ms latency); "
              f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")  # fmt: skip
        print(f"{'stop':8} {'round':>5} {'calls to stop':>13} {'calls to finish':>15} {'extra calls':>11} "
              f"{'extra s':>8} {'same dataset':>12} {'load':>5}")  # fmt: skip
        for stop in (signal.SIGKILL, signal.SIGINT):
            for round_ in range(1, args.rounds + 1):
                db = folder / f"{stop.name}-{round_}.duckdb"
                load = os.getloadavg()[0]
                first_s, first_calls = run(config_path, db, server, stop_at=calls // 2, stop=stop)
                second_s, second_calls = run(config_path, db, server)
                same = dataset(db, STAGES) == expected
                name = "kill -9" if stop == signal.SIGKILL else "Ctrl-C"
                extra_calls, extra_s = first_calls + second_calls - calls, first_s + second_s - seconds
                load = (load + os.getloadavg()[0]) / 2
                print(f"{name:8} {round_:>5} {first_calls:>13,} {second_calls:>15,} {extra_calls:>11,} "
                      f"{extra_s:>8.1f} {'yes' if same else 'NO':>12} {load:5.1f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

"""Service overhead: the same run submitted to `safeset serve` against `safeset run`, on the same
latency server; and how fast status and record queries answer while a served run writes.

A three-stage chain (scenarios -> personas -> related personas; `--per-category 30` makes 420
scenario slots, about 1,260 calls) against the local latency server (a process of its own). Each
round runs it once with `safeset run` (a fresh database) and once through the server (a new seed in
the served database, so no answer is cached), alternating; a run's time is its session's, from the
database (start-up of either process left out). Then one more served run, three times as large,
polled by a client that asks GET /v1/runs/{id} (the whole `status --json` document) and
GET /v1/runs/{id}/records?limit=100 in turn, about four a second, for as long as it writes: their
latency percentiles.

    python -m bench.serve_overhead                      # 3 rounds, 50 ms latency
    python -m bench.serve_overhead --rounds 1 --per-category 10
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import duckdb
import httpx
import yaml

from bench.resume_overhead import config
from tests.ops.helpers import ServerProcess
from tests.servers.chat_server import Latency

TOKEN = "bench-token"


def session_seconds(db: Path) -> float:
    con = duckdb.connect(str(db), read_only=True)
    try:
        started, ended = con.execute("SELECT started_at, ended_at FROM sessions").fetchone()
    finally:
        con.close()
    return (ended - started).total_seconds()


def cli_run(config_path: Path, db: Path) -> float:
    command = [sys.executable, "-m", "pipeline.cli", "run", str(config_path), "--db", str(db)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return session_seconds(db)


class Server:
    def __init__(self, db: Path, port: int):
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "SAFESET_TOKEN": TOKEN}
        command = [sys.executable, "-m", "pipeline.cli", "serve", "--db", str(db), "--port", str(port)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )
        self.client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
        )
        while True:
            try:
                if self.client.get("/v1/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)

    def submit(self, text: str, seed: int) -> str:
        return self.client.post("/v1/runs", json={"config": text, "seed": seed}).json()["run"]

    def state(self, run_id: str) -> str:
        return self.client.get(f"/v1/runs/{run_id}").json()["queue"]["state"]

    def wait(self, run_id: str) -> None:
        """Until the run ends, asking its status every 2 s (as often as `safeset run` writes its
        live status file, so both runs carry the same status work)."""
        while (state := self.state(run_id)) in ("queued", "running"):
            time.sleep(2)
        if state != "finished":
            raise RuntimeError(f"run {run_id} ended {state}")

    def seconds(self, run_id: str) -> float:
        """The run's session time, as the database recorded it."""
        (session,) = self.client.get(f"/v1/runs/{run_id}").json()["sessions"]
        ended, started = (datetime.fromisoformat(session[k]) for k in ("ended_at", "started_at"))
        return (ended - started).total_seconds()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(60)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentiles(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p = statistics.quantiles(ms, n=100, method="inclusive")
    return f"p50 {p[49]:.1f} ms, p95 {p[94]:.1f} ms, max {ms[-1]:.1f} ms ({len(ms)} requests)"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per-category", type=int, default=30, help="scenario slots per hazard category")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ServerProcess(latency=Latency(base=args.latency)) as latency:
        folder = Path(tmp)
        text = yaml.safe_dump(config(latency.url, args.per_category))
        config_path = folder / "run.yaml"
        served_db = folder / "served.duckdb"
        server = Server(served_db, free_port())
        try:
            print(
                f"{args.latency * 1000:.0f} ms latency; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
            )
            print(f"{'round':>5} {'calls':>6} {'safeset run s':>13} {'served s':>9} {'served/run':>10}")
            ratios = []
            for round_ in range(1, args.rounds + 1):
                config_path.write_text(yaml.safe_dump({**yaml.safe_load(text), "seed": round_}))
                before = latency.stats().total_answered()
                alone = cli_run(config_path, folder / f"cli-{round_}.duckdb")
                calls = latency.stats().total_answered() - before
                run_id = server.submit(text, seed=round_)
                server.wait(run_id)
                served = server.seconds(run_id)
                ratios.append(served / alone)
                print(
                    f"{round_:>5} {calls:>6,} {alone:>13.2f} {served:>9.2f} {served / alone:>10.3f}",
                    flush=True,
                )
            print(f"served/run, median of {len(ratios)}: {statistics.median(ratios):.3f} "
                  f"(throughput cost {100 * (1 - 1 / statistics.median(ratios)):+.1f} %)")  # fmt: skip

            bigger = yaml.safe_dump(config(latency.url, 3 * args.per_category))  # a longer window to sample
            run_id = server.submit(bigger, seed=1000)
            status, records = [], []
            while server.state(run_id) in ("queued", "running"):
                time.sleep(0.2)  # about 4 queries a second: a dashboard, not a load test
                started = time.perf_counter()
                server.client.get(f"/v1/runs/{run_id}").raise_for_status()
                status.append(time.perf_counter() - started)
                started = time.perf_counter()
                server.client.get(f"/v1/runs/{run_id}/records", params={"limit": 100}).raise_for_status()
                records.append(time.perf_counter() - started)
            print(f"while a run writes (load {os.getloadavg()[0]:.1f}): status {percentiles(status)}")
            print(f"{'records':>37} {percentiles(records)}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()

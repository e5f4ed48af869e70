"""The in-process backends (transformers, vLLM) on the tiny local model, and their micro-batching."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.llm.backends import create_backend
from pipeline.llm.backends.batching import MicroBatcher
from pipeline.llm.cache import CallCache
from pipeline.llm.client import LLMClient, UsageBook
from pipeline.llm.roles import HFRole
from pipeline.llm.types import ChatRequest, Completion, FatalLLMError, LLMFailure, Sample
from tests.pipeline.llm.backend_checks import ask, run_checks


def check_summary(summary: dict) -> None:
    """What every in-process backend must give on the tiny model (see backend_checks.run_checks)."""
    assert len(summary["guided"]) == 12 and all(v["label"] in ("safe", "unsafe") for v in summary["guided"])
    assert summary["guided_attempts"] == [1] * 12  # guided decoding: valid at the first try
    assert len(summary["texts"]) == 3 and len(set(summary["texts"])) > 1  # n samples, each its own seed
    assert summary["texts_top_p"] == summary["texts"]  # the same seed gives the same samples
    lengths = [len(lp) for lp in summary["token_logprobs"]]
    assert sum(lengths) == summary["completion_tokens"] and min(lengths) >= 1
    for logprobs, mean in zip(summary["token_logprobs"], summary["mean_logprobs"], strict=True):
        assert all(lp <= 0 for lp in logprobs) and mean == pytest.approx(sum(logprobs) / len(logprobs))
    assert summary["prompt_tokens"] > 0
    assert summary["greedy"][0] == summary["greedy"][1]  # temperature 0 ignores the seed
    assert (summary["short_finish"], summary["short_tokens"]) == ("length", 3)
    assert summary["calls"] == 17


def test_hf_backend_answers_in_the_schema_with_samples_seeds_and_logprobs(tiny_model: Path) -> None:
    check_summary(asyncio.run(run_checks("hf", str(tiny_model))))


def test_hf_backend_batches_concurrent_requests_off_the_event_loop(tiny_model: Path) -> None:
    sizes: list[int] = []
    windows: list[tuple[float, float]] = []  # when the engine was busy with a batch
    ticks: list[float] = []  # when the event loop ran a timer meanwhile

    async def main() -> None:
        backend = create_backend(HFRole(backend="hf", model=str(tiny_model), batch_size=8))
        run_batch = backend._batcher.run_batch

        def timed(requests: list[ChatRequest]) -> list[Completion]:
            started = time.monotonic()
            sizes.append(sum(r.n for r in requests))
            try:
                return run_batch(requests)
            finally:
                windows.append((started, time.monotonic()))

        backend._batcher.run_batch = timed

        async def tick() -> None:
            while True:
                await asyncio.sleep(0.002)
                ticks.append(time.monotonic())

        ticker = asyncio.create_task(tick())
        requests = [ask(f"q{i}", seed=i, max_tokens=32, n=1 + i % 2, model="tiny") for i in range(10)]
        await asyncio.gather(*(backend.complete(r) for r in requests))
        ticker.cancel()
        await backend.aclose()

    asyncio.run(main())
    assert sum(sizes) == 15 and max(sizes) == 8 and len(sizes) <= 3  # 15 sequences, 8 per batch at most
    assert sum(start < t < end for t in ticks for start, end in windows) >= 3  # the loop ran meanwhile


def test_an_unloadable_hf_model_stops_with_one_clear_message(tmp_path: Path) -> None:
    async def main(model: str) -> None:
        config = HFRole(backend="hf", model=model)
        client = LLMClient(create_backend(config), config, CallCache(None), UsageBook("r"), "s")
        try:
            await asyncio.gather(*(client.complete(ask(f"q{i}")) for i in range(3)))
        finally:
            await client.backend.aclose()

    for model in ("nobody/no-such-model", str(tmp_path / "missing")):
        with pytest.raises(FatalLLMError) as caught:
            asyncio.run(main(model))
        message = str(caught.value)
        assert f"cannot load the model {model!r}" in message
        assert "local directory" in message and "--endpoint URL --model NAME" in message
        assert "docker compose" in message


@pytest.mark.vllm
def test_vllm_in_process_backend_answers_like_the_hf_backend(tiny_model: Path) -> None:
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}
    done = subprocess.run(
        [sys.executable, "-m", "tests.pipeline.llm.backend_checks", "vllm", str(tiny_model)],
        capture_output=True,
        text=True,
        env=env,
        timeout=400,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("SUMMARY ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    summary = json.loads(lines[0].removeprefix("SUMMARY "))
    check_summary(summary)
    assert summary["together"] == ["Completion", "LLMFailure", "Completion"]
    assert "maximum context length is 512" in summary["too_long_reason"]
    assert summary["chat"] == summary["llm_chat"]
    assert summary["max_num_seqs"] == 48  # the role's batch_size is the engine's batch


# ---- micro-batching, with a scripted engine ---------------------------------------------------


def _echo(requests: list[ChatRequest]) -> list[Completion]:
    if any("poison" in r.messages[0]["content"] for r in requests):
        raise ValueError("the engine rejected a prompt")
    return [Completion(samples=[Sample(text=r.messages[0]["content"])] * r.n) for r in requests]


def test_a_bad_request_fails_alone_and_the_rest_of_its_batch_is_answered() -> None:
    async def main() -> list:
        batcher = MicroBatcher(_echo, max_sequences=16, name="test")
        texts = ["a", "poison", "b", "c"]
        outcomes = await asyncio.gather(*(batcher.submit(ask(t)) for t in texts), return_exceptions=True)
        batcher.close()
        return outcomes

    a, poison, b, c = asyncio.run(main())
    assert [a.samples[0].text, b.samples[0].text, c.samples[0].text] == ["a", "b", "c"]
    assert isinstance(poison, LLMFailure) and "rejected a prompt" in poison.reason


def test_a_fatal_engine_error_reaches_every_waiting_request() -> None:
    def broken(requests: list[ChatRequest]) -> list[Completion]:
        raise FatalLLMError("no model")

    async def main() -> list:
        batcher = MicroBatcher(broken, max_sequences=2, name="test")
        outcomes = await asyncio.gather(
            *(batcher.submit(ask(str(i))) for i in range(5)), return_exceptions=True
        )
        batcher.close()
        return outcomes

    assert all(isinstance(o, FatalLLMError) for o in asyncio.run(main()))


def test_cancelled_requests_are_left_out_of_the_next_batch() -> None:
    seen: list[str] = []

    def record(requests: list[ChatRequest]) -> list[Completion]:
        seen.extend(r.messages[0]["content"] for r in requests)
        return _echo(requests)

    async def main() -> None:
        batcher = MicroBatcher(record, max_sequences=1, name="test")
        first = asyncio.create_task(batcher.submit(ask("first")))
        gone = asyncio.create_task(batcher.submit(ask("gone")))
        last = asyncio.create_task(batcher.submit(ask("last")))
        await asyncio.sleep(0)
        gone.cancel()
        assert (await first).samples[0].text == "first" and (await last).samples[0].text == "last"
        batcher.close()

    asyncio.run(main())
    assert seen == ["first", "last"]

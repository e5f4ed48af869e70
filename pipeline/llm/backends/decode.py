"""Batched sampling for the hf backend: a plain decoding loop over a transformers model's KV cache.

Not `model.generate`, because each row of a batch has its own seed, temperature, top_p, length and
grammar. A request with `n` samples is `n` rows, each seeded from the request's seed, so an answer
does not depend on which other requests shared its batch. A request with a JSON schema is
constrained to it token by token with llguidance (as vLLM and OpenAI constrain theirs), so a small
model still answers in the schema. Logprobs are those of the model's raw distribution at each
sampled token, end-of-sequence included, as vLLM reports them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import torch

from pipeline.llm.types import ChatRequest
from pipeline.records import derive_seed


@dataclass
class Row:
    """One sampled sequence being decoded."""

    generator: torch.Generator
    temperature: float
    top_p: float
    max_tokens: int
    matcher: object | None  # llguidance.LLMatcher for JSON answers
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish: str | None = None
    text: str = ""


@dataclass
class Output:
    rows: list[Row]
    prompt_tokens: int


class Engine:
    def __init__(self, model, tokenizer, device: str):
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.vocab = model.get_output_embeddings().weight.shape[0]
        eos = model.generation_config.eos_token_id
        self.stop_ids = {tokenizer.eos_token_id, *(eos if isinstance(eos, list) else [eos])} - {None}
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.stop_ids)
        self._guide_tokenizer = None
        self._grammars: dict[str, str] = {}

    @torch.inference_mode()
    def generate(self, requests: list[ChatRequest]) -> list[Output]:
        prompts = [self._prompt_ids(r) for r in requests]
        outputs, rows, row_prompts = [], [], []
        for request, prompt in zip(requests, prompts, strict=True):
            mine = [self._row(request, i) for i in range(request.n)]
            outputs.append(Output(rows=mine, prompt_tokens=len(prompt)))
            rows += mine
            row_prompts += [prompt] * request.n
        self._decode(rows, row_prompts)
        for row in rows:
            kept = [t for t in row.tokens if t not in self.stop_ids]
            row.text = self.tokenizer.decode(kept, skip_special_tokens=True)
        return outputs

    def _prompt_ids(self, request: ChatRequest) -> list[int]:
        text = self.tokenizer.apply_chat_template(
            list(request.messages), add_generation_prompt=True, tokenize=False
        )
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _row(self, request: ChatRequest, index: int) -> Row:
        generator = torch.Generator(device="cpu")
        if request.seed is None:
            generator.seed()
        else:
            generator.manual_seed(derive_seed(request.seed, index))
        matcher = self._matcher(request.json_schema) if request.json_schema is not None else None
        return Row(generator, request.temperature, request.top_p, request.max_tokens, matcher)

    def _matcher(self, schema: dict):
        import llguidance
        import llguidance.hf

        if self._guide_tokenizer is None:
            self._guide_tokenizer = llguidance.hf.from_tokenizer(
                self.tokenizer, n_vocab=self.vocab, eos_token=sorted(self.stop_ids)
            )
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            self._grammars[key] = llguidance.LLMatcher.grammar_from_json_schema(schema)
        matcher = llguidance.LLMatcher(self._guide_tokenizer, self._grammars[key], log_level=0)
        if matcher.is_error():
            raise ValueError(f"the JSON schema cannot be used for guided decoding: {matcher.get_error()}")
        return matcher

    def _decode(self, rows: list[Row], prompts: list[list[int]]) -> None:
        width = max(len(p) for p in prompts)
        ids = torch.tensor([[self.pad_id] * (width - len(p)) + p for p in prompts], device=self.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = None
        for _ in range(max(r.max_tokens for r in rows)):
            out = self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,  # the last position's only, as `generate` asks: not the prompt's
            )
            cache = out.past_key_values
            logits = out.logits[:, -1, :].float()
            next_ids = self._step(rows, logits)
            if all(r.finish for r in rows):
                return
            ids = torch.tensor(next_ids, device=self.device).unsqueeze(-1)
            mask = torch.cat([mask, torch.ones_like(ids)], dim=-1)
            positions = positions[:, -1:] + 1

    def _step(self, rows: list[Row], logits: torch.Tensor) -> list[int]:
        """Sample one token for every unfinished row; finished rows are fed padding."""
        raw = torch.log_softmax(logits, dim=-1).cpu()
        scores = logits.cpu()
        for index, row in enumerate(rows):
            if row.matcher is not None and not row.finish:
                allowed = torch.frombuffer(bytearray(row.matcher.compute_logit_bias()), dtype=torch.uint8)
                scores[index].masked_fill_(allowed[: scores.shape[1]] == 0, float("-inf"))
        tokens = _sample(scores, rows).tolist()
        next_ids = []
        for index, (row, token) in enumerate(zip(rows, tokens, strict=True)):
            if row.finish:
                next_ids.append(self.pad_id)
                continue
            row.tokens.append(token)
            row.logprobs.append(float(raw[index, token]))
            if token in self.stop_ids:
                row.finish = "stop"
            elif len(row.tokens) >= row.max_tokens:
                row.finish = "length"
            elif row.matcher is not None:
                row.matcher.consume_token(token)
            next_ids.append(token)
        return next_ids


def _sample(scores: torch.Tensor, rows: list[Row]) -> torch.Tensor:
    """One token per row, for the whole batch at once: temperature, nucleus (top_p) cut, then an
    exponential race (argmax of p / E, E ~ Exp(1) drawn from the row's own generator, as vLLM samples),
    so a row's token depends on its seed and logits only, not on its batch, and a top_p that cuts
    only tokens that would not have won leaves the draw as it was. Temperature 0 is greedy."""
    temperature = torch.tensor([r.temperature or 1.0 for r in rows])
    top_p = torch.tensor([r.top_p for r in rows])
    probs = torch.softmax(scores / temperature[:, None], dim=-1)
    if bool((top_p < 1).any()):
        ordered, order = probs.sort(dim=-1, descending=True)
        outside = ordered.cumsum(-1) - ordered >= top_p[:, None]  # keep the smallest head reaching top_p
        probs = probs.scatter(-1, order, ordered.masked_fill(outside, 0.0))
    race = torch.empty_like(probs)
    for index, row in enumerate(rows):
        race[index].exponential_(generator=row.generator)
    greedy = torch.tensor([r.temperature == 0 for r in rows])
    return torch.where(greedy, scores.argmax(-1), (probs / race).argmax(-1))

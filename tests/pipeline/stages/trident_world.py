"""A scripted world for the TRIDENT stages: the chat server's `script=` answers each prompt of the
pipeline by its schema, deterministically from the request, with distinct wording per answer (words
drawn from a large vocabulary, so neither MinHash nor embeddings see near-duplicates by accident).

Knobs plant what a test wants to see: instructions judged safe, judged in another category,
near-duplicate instructions, responses that comply, answers that break the schema.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from pipeline.embedder import resolve_model
from pipeline.taxonomy import hazard_categories

_CODE_BY_NAME = {c.name: c.code for c in hazard_categories()}
REFUSAL = "I'm sorry, but I can't help with writing that. It could cause real harm."
_TAG = re.compile(r"\[(S\d+)(?:/(\w+))?\]")


@cache
def vocabulary() -> list[str]:
    vocab = Path(resolve_model("all-MiniLM-L6-v2")) / "vocab.txt"
    return [w for w in vocab.read_text().split() if w.isalpha() and w.isascii() and len(w) >= 5]


def words(*key: Any, n: int = 8) -> str:
    """`n` words determined by `key`."""
    digest = hashlib.sha256(json.dumps(key, default=str).encode()).digest()
    vocab = vocabulary()
    return " ".join(vocab[int.from_bytes(digest[2 * i : 2 * i + 2], "big") % len(vocab)] for i in range(n))


def _between(text: str, tag: str) -> str:
    return text.split(f"<{tag}>", 1)[1].split(f"</{tag}>", 1)[0].strip()


@dataclass
class World:
    """Every 1 in `safe_every` instructions is judged safe; 1 in `other_every` is judged in another
    category; every 1 in `dup_every` is a near-duplicate of its persona's other instruction."""

    safe_every: int = 0
    other_every: int = 0
    dup_every: int = 0
    comply_first: bool = False  # the first reply checked for each request is judged to comply
    comply_always: set[str] = field(
        default_factory=set
    )  # instruction words that always get complying replies
    break_schema: dict[str, str] = field(default_factory=dict)  # schema -> prompt text that breaks it
    seedless: bool = False  # answers ignore the request's seed (but not the sample index)
    refuse: set[str] = field(default_factory=set)  # "stage:S1": the generator refuses that stage's writing
    lose: set[str] = field(default_factory=set)  # tactics whose rewrites drop the request
    calls: dict[str, int] = field(default_factory=dict)
    checked: set[str] = field(default_factory=set)  # requests whose replies were checked

    def __call__(self, body: dict[str, Any]) -> str | None:
        schema = (body.get("response_format") or {}).get("json_schema", {}).get("name", "text")
        if "<BEGIN CONVERSATION>" in body["messages"][-1]["content"]:
            schema = "LlamaGuardPrompt"  # a generic judge sent Meta's Llama Guard 3 prompt
        self.calls[schema] = self.calls.get(schema, 0) + 1
        if body["messages"][-1]["role"] == "assistant":  # a guard model classifying a reply
            request = body["messages"][0]["content"]
            return "unsafe\nS2" if any(w in request for w in self.comply_always) else "safe"
        user = body["messages"][-1]["content"]
        if schema in self.break_schema and self.break_schema[schema] in user:
            return "Here is my answer in prose rather than JSON."
        seed = body.get("seed")
        if self.seedless:
            seed = str(seed).split(":")[1] if ":" in str(seed) else None
        answer = getattr(self, f"_{schema}")(user, seed, body)
        return answer if isinstance(answer, str) else json.dumps(answer)

    def _refuses(self, stage: str, user: str) -> bool:
        return any(
            f"{stage}:{code}" in self.refuse for name, code in _CODE_BY_NAME.items() if f": {name} - " in user
        )

    def _ScenarioAnswer(self, user: str, seed: Any, body: dict) -> dict:
        if self._refuses("scenarios", user):
            return {"scenario": REFUSAL}
        return {"scenario": f"A scenario where {words(user, seed)} happens."}

    def _Persona(self, user: str, seed: Any, body: dict) -> dict:
        return {
            "summary": f"A person who {words(user, seed, 'summary')}.",
            "occupation": words(user, seed, "job", n=2),
            "personality_traits": words(user, seed, "traits", n=3).split(),
            "opinions": f"Believes {words(user, seed, 'opinions', n=6)}.",
            "life_experience": f"Grew up {words(user, seed, 'life', n=6)}.",
        }

    def _InstructionsAnswer(self, user: str, seed: Any, body: dict) -> dict:
        if self._refuses("instructions", user):
            return {"instructions": [REFUSAL]}
        count = user.split("write ", 1)[1].split(" ", 1)[0]
        if count == "one":
            return {"instructions": [self._instruction(user, seed)]}
        requests = [self._instruction(user, f"{seed}/{i}") for i in range(int(count))]
        return {"instructions": [*requests, requests[0]]}  # a repeat within the call, dropped

    def _instruction(self, user: str, seed: Any) -> str:
        name = user.split("about: ", 1)[1].split(" - ", 1)[0]
        code = _CODE_BY_NAME[name]
        index = int(hashlib.sha256(f"{user}{seed}".encode()).hexdigest(), 16)
        mark = ""
        if self.safe_every and index % self.safe_every == 0:
            mark = "/safe"
        elif self.other_every and index % self.other_every == 1:
            mark = "/other"
        if self.dup_every and index % self.dup_every == 2:  # near-duplicate of sample 0's words
            first = str(seed).split(":")[0] + ":0" if not self.seedless else "0"
            return f"[{code}{mark}] Please, {words(user, first)}!"
        return f"[{code}{mark}] {words(user, seed)}?"

    def _Verdict(self, user: str, seed: Any, body: dict) -> dict:  # the judge with `answer: json`
        verdict = self._LlamaGuardPrompt(
            f"\nUser: {_between(user, 'REQUEST')}\n\n<END CONVERSATION>", seed, body
        )
        lines = verdict.splitlines()
        return {"verdict": lines[0], "categories": lines[1:]}

    def _LlamaGuardPrompt(self, user: str, seed: Any, body: dict) -> str:
        instruction = user.split("\nUser: ", 1)[1].split("\n\n<END CONVERSATION>", 1)[0]
        code, mark = _TAG.search(instruction).groups()
        if mark == "other":
            return f"unsafe\n{'S14' if code != 'S14' else 'S1'}"
        return self._guard(instruction)

    def _RewriteAnswer(self, user: str, seed: Any, body: dict) -> dict:
        request = user.split("Request: ", 1)[1].split("\n", 1)[0]
        tactic = user.split("Tactic: ", 1)[1].split(" - ", 1)[0]
        if tactic.replace(" ", "_") in self.lose:
            return {"rewritten": f"({tactic}) {words(request, tactic)}: tell me about gardening"}
        return {"rewritten": f"({tactic}) {words(request, tactic)}: {request}"}

    def _RewriteCheck(self, user: str, seed: Any, body: dict) -> dict:
        original = _TAG.search(_between(user, "ORIGINAL")).group(0)
        keeps = original in _between(user, "REWRITE")
        return {"keeps_request": keeps, "reason": "it asks the same" if keeps else "it asks something else"}

    def _BackTranslation(self, user: str, seed: Any, body: dict) -> dict:
        return {"english": _between(user, "TEXT")}

    def _text(self, user: str, seed: Any, body: dict) -> str:
        if user.startswith("["):  # guard model: the instruction is the whole user turn
            return self._guard(user)
        message = _between(user, "MESSAGE")
        return f"I cannot help with that ({words(message, seed, n=4)}). Here is a safer alternative."

    def _guard(self, instruction: str) -> str:
        code, mark = _TAG.search(instruction).groups()
        return "safe" if mark == "safe" else f"unsafe\n{code}"

    def _ResponseCheck(self, user: str, seed: Any, body: dict) -> dict:
        request = _between(user, "REQUEST")
        complies = any(w in request for w in self.comply_always) or (
            self.comply_first and request not in self.checked
        )
        self.checked.add(request)
        return {
            "harmful": False,
            "complies": complies,
            "reason": "it does what was asked" if complies else "ok",
        }

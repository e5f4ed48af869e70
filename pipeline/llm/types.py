"""The one request/answer shape every backend speaks.

A `ChatRequest` is everything that determines an answer; its `key()` (a hash of the canonical
payload) is the cache key. A `Completion` is the raw answer as the backend returned it and as it is
cached; parsing into a pydantic object happens after the cache, so a change to parsing re-parses
cached answers without new calls.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pipeline.records import canonical_json


class ChatRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    messages: tuple[dict[str, str], ...]
    model: str = ""  # filled in by the role client
    template: str | None = None  # prompt name@version
    n: int = Field(default=1, ge=1)
    temperature: float = Field(default=0.7, ge=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    max_tokens: int = Field(default=512, ge=1)
    seed: int | None = None
    logprobs: bool = False
    json_schema: dict[str, Any] | None = None
    schema_name: str | None = None

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def canonical(self) -> str:
        """The payload's canonical JSON: what the cache stores, and what `key` hashes."""
        return canonical_json(self.payload())

    def key(self, canonical: str | None = None) -> str:
        """The cache key; pass `canonical()` when it is at hand, so it is not built twice."""
        return hashlib.sha256((canonical or self.canonical()).encode()).hexdigest()[:32]


class Sample(BaseModel):
    """One sampled answer. `token_logprobs` are per generated token when logprobs were asked for."""

    text: str
    finish_reason: str | None = None
    token_logprobs: list[float] | None = None

    @property
    def mean_logprob(self) -> float | None:
        """Length-normalised log-probability of the answer: (1/T) sum_t log p(y_t | y_<t, x)."""
        if not self.token_logprobs:
            return None
        return sum(self.token_logprobs) / len(self.token_logprobs)


class Completion(BaseModel):
    samples: list[Sample]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    endpoint: str = ""


class Result(BaseModel):
    """A completion with, when a schema was given, every sample parsed into it."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    request: ChatRequest
    completion: Completion
    parsed: list[Any] = Field(default_factory=list)
    cached: bool = False
    attempts: int = 1
    key: str = ""

    @property
    def text(self) -> str:
        return self.completion.samples[0].text

    @property
    def value(self) -> Any:
        """The first sample parsed into the schema."""
        return self.parsed[0]

    @property
    def texts(self) -> list[str]:
        return [s.text for s in self.completion.samples]

    def lineage(self) -> dict[str, Any]:
        """What a record made by this call keeps of it: prompt name and version (none for a call
        without a template), model, seed and cache key (`safeset inspect` shows the call by it)."""
        name, version = self.request.template.rsplit("@", 1) if self.request.template else (None, None)
        return {
            "prompt_name": name,
            "prompt_version": int(version) if version is not None else None,
            "model": self.request.model,
            "seed": self.request.seed,
            "request_key": self.key,
        }


class LLMFailure(Exception):
    """A request that could not be answered: transport errors after retries, or answers that kept
    breaking the schema. Stages let it propagate; the runner records it as the item's failure."""

    def __init__(self, reason: str, attempts: int):
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


class FatalLLMError(Exception):
    """An error no retry can fix (a refused API key, an unknown model): the run stops with it."""


class Unreachable(Exception):
    """The endpoint did not answer at all (connection refused or reset, DNS failure, connect timeout,
    or 502/503/504 through every retry): an outage, not an answer. The call is asked again, with the
    same seed, once the endpoint is back; it never counts as an attempt or fails an item."""

    def __init__(self, endpoint: str, reason: str):
        super().__init__(f"{endpoint} unreachable ({reason})")
        self.endpoint = endpoint
        self.reason = reason


class EndpointOutage(Exception):
    """An endpoint stayed unreachable past the run's outage limit: the run stops with its work
    pending, and the same command continues it later."""

"""What stages call: `await llm.complete(request, schema)`.

An `LLMClient` serves one role for one stage. It fills in the model, asks the cache, calls the
backend on a miss, parses the answer into the schema and, when an answer breaks the schema, asks
again with a new seed a bounded number of times before giving up with an `LLMFailure` whose reason
says what was wrong. Every attempt's raw answer is cached, so a resumed run replays them all.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from contextvars import ContextVar

from pydantic import BaseModel

from pipeline.llm.backend_set import BackendSet
from pipeline.llm.backends import Backend
from pipeline.llm.cache import CallCache
from pipeline.llm.outage import DEFAULT_OUTAGE_LIMIT_S, OutageBoard
from pipeline.llm.parsing import parse_answer, strict_schema
from pipeline.llm.roles import LLM_ROLES, Price, RoleConfig, Roles
from pipeline.llm.types import ChatRequest, Completion, LLMFailure, Result, Unreachable
from pipeline.records import derive_seed
from pipeline.store import UsageDelta

# The first attempt of the item whose task is running: the LLM attempts it spent in earlier sessions
# (a failed item retried with --retry-failed continues from there instead of replaying its cached
# failed answers). Task-local, so items processed concurrently by one stage never share it: the
# runner sets it with `start_item` in each item's task, stages read it as `ctx.attempt`.
_FIRST_ATTEMPT: ContextVar[int] = ContextVar("first_attempt", default=0)


def start_item(spent_attempts: int) -> None:
    """Called by the runner at the start of an item's own task."""
    _FIRST_ATTEMPT.set(spent_attempts)


def first_attempt() -> int:
    return _FIRST_ATTEMPT.get()


class UsageBook:
    """Calls, cache hits, failures, tokens and cost per (stage, model), drained by the writer."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self._open: defaultdict[tuple[str, str], Counter[str]] = defaultdict(Counter)

    def add(self, stage: str, model: str, **amounts: float) -> None:
        """Add to the open tally; the names are those of `UsageDelta` (calls, cached, cost_usd, ...)."""
        self._open[(stage, model)].update(amounts)

    def drain(self) -> list[UsageDelta]:
        open_, self._open = self._open, defaultdict(Counter)
        return [UsageDelta(self.run_id, stage, model, **t) for (stage, model), t in open_.items()]


class LLMClient:
    def __init__(
        self,
        backend: Backend,
        config: RoleConfig,
        cache: CallCache,
        usage: UsageBook,
        stage: str,
        outages: OutageBoard | None = None,
    ):
        self.backend = backend
        self.outages = outages or OutageBoard(DEFAULT_OUTAGE_LIMIT_S)
        self.config = config
        self.cache = cache
        self.usage = usage
        self.stage = stage

    @property
    def model(self) -> str:
        return self.config.model

    async def complete(self, request: ChatRequest, schema: type[BaseModel] | None = None) -> Result:
        update: dict[str, object] = {"model": self.model}
        if schema is not None:
            update |= {"json_schema": strict_schema(schema), "schema_name": schema.__name__}
        request = request.model_copy(update=update)
        tries = 1 + (self.config.schema_retries if schema is not None else 0)
        offset = first_attempt()
        reason = ""
        for attempt in range(offset, offset + tries):
            attempt_request = request
            if attempt:
                seed = derive_seed(request.key(), attempt)
                attempt_request = request.model_copy(update={"seed": seed})
            canonical = attempt_request.canonical()
            try:
                completion, cached = await self._fetch(attempt_request, canonical)
            except LLMFailure as failure:
                # No answer was spent on this attempt: a retry of the item asks it again, same seed.
                self.usage.add(self.stage, self.model, failed=1)
                raise LLMFailure(failure.reason, attempt) from None
            self._account(completion, cached)
            parsed, reason = self._parse_all(completion, schema) if schema is not None else ([], None)
            if reason is None:
                return Result(
                    request=attempt_request,
                    completion=completion,
                    parsed=parsed,
                    cached=cached,
                    attempts=attempt + 1,
                    key=attempt_request.key(canonical),
                )
        self.usage.add(self.stage, self.model, failed=1)
        raise LLMFailure(
            f"answer broke the {schema.__name__} schema {tries} time(s); last: {reason}", offset + tries
        )

    async def _fetch(self, request: ChatRequest, canonical: str) -> tuple[Completion, bool]:
        """The answer (cached or new), waiting out an outage of the endpoint however long it lasts,
        up to the run's outage limit."""
        stuck_since, tries = 0.0, 0
        while True:
            try:
                completion, cached = await self.cache.fetch(request, self.backend.complete, canonical)
            except Unreachable as exc:
                stuck_since = stuck_since or time.monotonic()
                await self.outages.wait(exc, stuck_since, tries)
                tries += 1
                continue
            if not cached:
                self.outages.report_up(completion.endpoint)
            return completion, cached

    @staticmethod
    def _parse_all(completion, schema: type[BaseModel]) -> tuple[list[BaseModel], str | None]:
        parsed = []
        for sample in completion.samples:
            if sample.finish_reason == "length":
                return [], f"answer cut off at max_tokens: {sample.text[:80]!r}"
            value, reason = parse_answer(sample.text, schema)
            if reason is not None:
                return [], reason
            parsed.append(value)
        return parsed, None

    def _account(self, completion, cached: bool) -> None:
        if cached:
            self.usage.add(self.stage, self.model, cached=1)
            return
        price: Price | None = getattr(self.config, "price", None)
        cost = 0.0
        if price is not None:
            cost = (
                completion.prompt_tokens * price.prompt_per_mtok
                + completion.completion_tokens * price.completion_per_mtok
            ) / 1e6
        self.usage.add(
            self.stage,
            self.model,
            calls=1,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            cost_usd=cost,
        )


class LLMPool:
    """The LLM clients of a run's stages, over its backends (pipeline/llm/backend_set.py). `backends`,
    from a process that drives several runs (safeset serve), are shared across runs; the pool then
    leaves closing them to that process."""

    def __init__(
        self,
        roles: Roles,
        cache: CallCache,
        usage: UsageBook,
        outages: OutageBoard | None = None,
        backends: BackendSet | None = None,
    ):
        self.roles = roles
        self.cache = cache
        self.usage = usage
        self.outages = outages or OutageBoard(DEFAULT_OUTAGE_LIMIT_S)
        self.backends = backends or BackendSet()
        self._owns_backends = backends is None

    def clients(self, role: str, stage: str) -> list[LLMClient]:
        if role not in LLM_ROLES:
            raise ValueError(f"unknown LLM role {role!r}; roles are {', '.join(LLM_ROLES)}")
        configs = self.roles.resolve(role)
        if not configs:
            raise ValueError(f"stage {stage!r} needs the {role} role; set roles.{role} or roles.default")
        return [
            LLMClient(self.backends.backend(c), c, self.cache, self.usage, stage, self.outages)
            for c in configs
        ]

    def client(self, role: str, stage: str) -> LLMClient:
        return self.clients(role, stage)[0]

    async def aclose(self) -> None:
        if self._owns_backends:
            await self.backends.aclose()

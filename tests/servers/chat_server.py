"""A local OpenAI-compatible chat-completions server with scripted answers, latency and faults.

Answers are a pure function of the request (messages, seed, schema), so two runs that ask the same
question get the same answer, which is what resume tests compare. By default a request with a
`response_format` JSON schema gets a made-up instance of that schema, and one without gets a few
words; a `script` callable can answer instead (return None to fall back to the default).

Faults are injected at set rates: 429 (with Retry-After), 500, timeouts (a delay past the client's
timeout), malformed bodies, and schema-breaking answers. Transport faults are random per attempt;
schema-breaking answers are decided by the request's content, so they are the same in every run.

Every request is counted: `answered[key]` is how many valid answers a request (by content) got.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

WORDS = [
    "river",
    "lantern",
    "quiet",
    "maple",
    "orbit",
    "velvet",
    "harbor",
    "copper",
    "meadow",
    "signal",
    "ember",
    "willow",
    "canyon",
    "prism",
    "garden",
    "falcon",
    "ripple",
    "summit",
    "thistle",
    "cobalt",
    "meadowlark",
    "beacon",
    "drift",
    "granite",
    "saffron",
    "tundra",
    "juniper",
    "marble",
    "cinder",
    "lagoon",
]

Script = Callable[[dict[str, Any]], "str | Answer | None"]


@dataclass
class Answer:
    """A scripted answer: text, and optionally one logprob per whitespace token."""

    text: str
    token_logprobs: list[float] | None = None
    finish_reason: str = "stop"


@dataclass
class Faults:
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_timeout: float = 0.0
    rate_malformed: float = 0.0
    rate_schema_break: float = 0.0
    timeout_delay: float = 5.0
    retry_after: float = 0.0
    status_500: int = 500  # the status of the `rate_500` faults (502/503/504: a gateway whose server is down)

    @property
    def total(self) -> float:
        return self.rate_429 + self.rate_500 + self.rate_timeout + self.rate_malformed


@dataclass
class Latency:
    """Seconds per request: `base`, plus with probability `tail_rate` an extra `tail` seconds."""

    base: float = 0.0
    tail: float = 0.0
    tail_rate: float = 0.0

    def sample(self, rng: random.Random) -> float:
        return self.base + (self.tail if rng.random() < self.tail_rate else 0.0)


@dataclass
class Stats:
    requests: int = 0
    answered: Counter = field(default_factory=Counter)  # request content key -> valid answers
    faults: Counter = field(default_factory=Counter)
    concurrent: int = 0
    max_concurrent: int = 0
    authorizations: Counter = field(default_factory=Counter)  # Authorization header -> requests
    # seconds spent at each number of requests in flight, from the first request to the last answer
    time_at: Counter = field(default_factory=Counter)
    changed_at: float | None = None

    def in_flight_changes(self, by: int) -> None:
        now = time.perf_counter()
        if self.changed_at is not None:
            self.time_at[self.concurrent] += now - self.changed_at
        self.changed_at = now
        self.concurrent += by
        self.max_concurrent = max(self.max_concurrent, self.concurrent)

    def total_answered(self) -> int:
        return sum(self.answered.values())


async def _sleep_while_connected(request: web.Request, seconds: float) -> None:
    """Sleep, or less once the client has hung up: a call the client gave up on is no longer in
    flight for it, so it must not count against the ceiling it keeps (`Stats.max_concurrent`)."""
    deadline = time.monotonic() + seconds
    while request.transport is not None and not request.transport.is_closing():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        await asyncio.sleep(min(left, 0.02))


def request_key(body: dict[str, Any]) -> str:
    relevant = {
        k: body.get(k)
        for k in (
            "model",
            "messages",
            "seed",
            "n",
            "response_format",
            "temperature",
            "max_tokens",
            "logprobs",
        )
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


def _rng(key: str, salt: str = "") -> random.Random:
    return random.Random(int(hashlib.sha256((key + salt).encode()).hexdigest()[:16], 16))


def fake_instance(schema: dict[str, Any], rng: random.Random, defs: dict[str, Any] | None = None) -> Any:
    """A value that satisfies a (pydantic-style) JSON schema: enough of JSON Schema for our answers."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return fake_instance(defs[schema["$ref"].split("/")[-1]], rng, defs)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return rng.choice(schema["enum"])
    for combo in ("anyOf", "oneOf"):
        if combo in schema:
            options = [s for s in schema[combo] if s.get("type") != "null"] or schema[combo]
            return fake_instance(rng.choice(options), rng, defs)
    kind = schema.get("type", "object")
    if kind == "object":
        return {name: fake_instance(sub, rng, defs) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        low = schema.get("minItems", 1)
        high = schema.get("maxItems", low + 2)
        return [
            fake_instance(schema.get("items", {}), rng, defs) for _ in range(rng.randint(low, max(low, high)))
        ]
    if kind == "integer":
        return rng.randint(int(schema.get("minimum", 0)), int(schema.get("maximum", 100)))
    if kind == "number":
        return round(rng.uniform(schema.get("minimum", 0.0), schema.get("maximum", 1.0)), 4)
    if kind == "boolean":
        return rng.random() < 0.5
    low = max(1, schema.get("minLength", 1))
    high = schema.get("maxLength", 200)
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
    while len(text) < low:
        text += " " + rng.choice(WORDS)
    return text[:high]


def default_answer(body: dict[str, Any]) -> Answer:
    key = request_key(body)
    rng = _rng(key)
    schema = (body.get("response_format") or {}).get("json_schema", {}).get("schema")
    if schema is not None:
        return Answer(json.dumps(fake_instance(schema, rng)))
    return Answer(" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 16))))


class ChatServer:
    """Start with `start()` (returns the base URL, e.g. http://127.0.0.1:PORT/v1), stop with `stop()`."""

    def __init__(
        self,
        script: Script | None = None,
        faults: Faults | None = None,
        latency: Latency | None = None,
        seed: int = 0,
        models: tuple[str, ...] = ("scripted",),
    ):
        self.script = script
        self.faults = faults or Faults()
        self.latency = latency or Latency()
        self.models = models
        self.stats = Stats()
        self._rng = random.Random(seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""

    # ---- lifecycle ----

    def start(self, port: int = 0) -> str:
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._start(port))
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, daemon=True, name="chat-server")
        self._thread.start()
        ready.wait(10)
        return self.url

    async def _start(self, port: int) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{bound}/v1"

    def stop(self) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)  # type: ignore[union-attr]
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)  # type: ignore[union-attr]

    def __enter__(self) -> ChatServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- handlers ----

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": m, "object": "model"} for m in self.models]}
        )

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.stats.requests += 1
        self.stats.authorizations[request.headers.get("Authorization", "")] += 1
        self.stats.in_flight_changes(+1)
        try:
            return await self._respond(body, request)
        finally:
            self.stats.in_flight_changes(-1)

    async def _respond(self, body: dict[str, Any], request: web.Request) -> web.Response:
        if body.get("model") not in self.models:
            return web.json_response(
                {"error": {"message": f"model {body.get('model')} not found"}}, status=404
            )
        delay = self.latency.sample(self._rng)
        roll = self._rng.random()
        f = self.faults
        if roll < f.rate_429:
            self.stats.faults["429"] += 1
            await asyncio.sleep(delay)
            return web.json_response(
                {"error": {"message": "rate limited"}},
                status=429,
                headers={"Retry-After": str(f.retry_after)},
            )
        roll -= f.rate_429
        if roll < f.rate_500:
            self.stats.faults["500"] += 1
            await asyncio.sleep(delay)
            return web.json_response({"error": {"message": "internal error"}}, status=f.status_500)
        roll -= f.rate_500
        if roll < f.rate_timeout:
            self.stats.faults["timeout"] += 1
            await _sleep_while_connected(request, f.timeout_delay)
            return web.json_response({"error": {"message": "too late"}}, status=500)
        roll -= f.rate_timeout
        if roll < f.rate_malformed:
            self.stats.faults["malformed"] += 1
            await asyncio.sleep(delay)
            return web.Response(text='{"id": "x", "choices": [', content_type="application/json")
        await asyncio.sleep(delay)
        key = request_key(body)
        n = int(body.get("n") or 1)
        choices = []
        for index in range(n):
            sample_body = body if n == 1 else {**body, "seed": f"{body.get('seed')}:{index}"}
            answer = self._answer(sample_body, key)
            choices.append(_choice(index, answer, bool(body.get("logprobs"))))
        self.stats.answered[key] += 1
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        completion_tokens = sum(len(c["message"]["content"].split()) for c in choices)
        return web.json_response(
            {
                "id": f"chatcmpl-{key[:12]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": choices,
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )

    def _answer(self, body: dict[str, Any], key: str) -> Answer:
        schema = (body.get("response_format") or {}).get("json_schema")
        if schema is not None and _rng(key, "break").random() < self.faults.rate_schema_break:
            self.stats.faults["schema_break"] += 1
            return Answer('{"unexpected": true}')
        scripted = self.script(body) if self.script else None
        if scripted is None:
            return default_answer(body)
        return Answer(scripted) if isinstance(scripted, str) else scripted


def _choice(index: int, answer: Answer, logprobs: bool) -> dict[str, Any]:
    choice: dict[str, Any] = {
        "index": index,
        "message": {"role": "assistant", "content": answer.text},
        "finish_reason": answer.finish_reason,
        "logprobs": None,
    }
    if logprobs:
        tokens = answer.text.split() or [""]
        values = answer.token_logprobs or [-0.5] * len(tokens)
        choice["logprobs"] = {
            "content": [
                {"token": t, "logprob": v, "bytes": list(t.encode()), "top_logprobs": []}
                for t, v in zip(tokens, values, strict=False)
            ]
        }
    return choice

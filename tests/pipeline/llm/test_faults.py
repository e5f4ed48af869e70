"""The openai backend and the call cache under injected faults, Retry-After, budgets and several
endpoints, against the scripted OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from pipeline.llm.backends import create_backend
from pipeline.llm.cache import CallCache
from pipeline.llm.client import LLMClient, UsageBook
from pipeline.llm.outage import OutageBoard
from pipeline.llm.roles import OpenAIRole
from pipeline.llm.types import EndpointOutage, FatalLLMError, LLMFailure, Result
from pipeline.store import Store
from pipeline.store.thread import StoreThread
from pipeline.writer import Writer
from tests.ops.helpers import settled
from tests.pipeline.llm.backend_checks import Verdict, ask
from tests.servers.chat_server import Faults, Latency


def role(*urls: str, **settings: Any) -> OpenAIRole:
    return OpenAIRole(backend="openai", model="scripted", base_urls=list(urls), **settings)


def client(
    config: OpenAIRole, cache: CallCache | None = None, outages: OutageBoard | None = None
) -> LLMClient:
    return LLMClient(
        create_backend(config), config, cache or CallCache(None), UsageBook("t"), "test", outages
    )


async def first_failure(url: str, http_client: str) -> Exception:
    """How one call to `url` fails: 0.2 s timeouts, one retry, outages given up on after 0.5 s."""
    config = role(url, http_client=http_client, timeout_s=0.2, max_retries=1)
    llm = client(config, outages=OutageBoard(0.5))
    try:
        with pytest.raises((LLMFailure, EndpointOutage)) as caught:
            await llm.complete(ask("t", seed=0), Verdict)
    finally:
        await llm.backend.aclose()
    return caught.value


async def ask_all(config: OpenAIRole, db_path: Path, requests: list) -> tuple[list, UsageBook]:
    """Every request through a client whose cache lives in DuckDB, committed by the run's writer."""
    store = Store.open(db_path)
    db = StoreThread(store)
    llm = client(config, CallCache(db))
    writer = Writer(db, llm.cache, llm.usage, interval=0.05)
    flushing = asyncio.create_task(writer.run())
    try:
        return await asyncio.gather(
            *(llm.complete(r, Verdict) for r in requests), return_exceptions=True
        ), llm
    finally:
        await writer.close()
        flushing.cancel()
        await llm.backend.aclose()
        db.shutdown()
        store.close()


def stored_keys(db_path: Path) -> list[str]:
    store = Store.open(db_path, read_only=True)
    try:
        return [k for (k,) in store.con.execute("SELECT key FROM llm_cache").fetchall()]
    finally:
        store.close()


def test_under_20_percent_faults_every_request_ends_once_and_no_answer_is_asked_twice(chat_server, db_path):
    faults = Faults(
        rate_429=0.06,
        rate_500=0.04,
        rate_timeout=0.03,
        rate_malformed=0.03,
        rate_schema_break=0.05,
        timeout_delay=1,
    )
    server = chat_server(faults=faults, latency=Latency(base=0.002))
    config = role(server.url, timeout_s=0.8, max_retries=2, schema_retries=1, initial_concurrency=16)
    requests = [ask(f"item {i}", seed=i, n=1 + (i % 5 == 0)) for i in range(300)]

    outcomes, llm = asyncio.run(ask_all(config, db_path, requests))
    assert len(outcomes) == 300
    assert all(isinstance(o, Result | LLMFailure) for o in outcomes), [
        o for o in outcomes if isinstance(o, Exception)
    ]
    failures = [o for o in outcomes if isinstance(o, LLMFailure)]
    assert all("after 3 attempt(s)" in f.reason or "schema 2 time(s)" in f.reason for f in failures)
    assert set(server.stats.faults) == {"429", "500", "timeout", "malformed", "schema_break"}
    assert max(server.stats.answered.values()) == 1  # no request was answered twice
    keys = stored_keys(db_path)
    assert len(keys) == len(set(keys)) == len(server.stats.answered)  # every answer stored once
    assert {o.key for o in outcomes if isinstance(o, Result)} <= set(keys)

    server.faults = Faults()  # a resumed run: answered requests come from the cache only
    again, _ = asyncio.run(ask_all(config, db_path, requests))
    assert all(isinstance(o, Result) for o in again)
    assert max(server.stats.answered.values()) == 1
    for first, second in zip(outcomes, again, strict=True):
        if isinstance(first, Result):
            assert second.cached and second.parsed == first.parsed


async def failing_call(chat_server, server_faults: Faults) -> tuple[float, LLMFailure]:
    """Seconds one call took to fail through two retries, and its failure."""
    server = chat_server(faults=server_faults)
    llm = client(role(server.url, max_retries=2, initial_concurrency=8))
    started = time.monotonic()
    with pytest.raises(LLMFailure) as caught:
        await llm.complete(ask("x"))
    await llm.backend.aclose()
    return time.monotonic() - started, caught.value


def test_retry_after_is_honoured(chat_server):
    waited, failure = asyncio.run(failing_call(chat_server, Faults(rate_429=1.0, retry_after=0.4)))
    assert waited >= 0.8 and failure.reason == "HTTP 429 after 3 attempt(s)"
    assert failure.attempts == 0  # answers spent: none, so a retry asks the same request (same seed)
    waited, _ = asyncio.run(failing_call(chat_server, Faults(rate_429=1.0, retry_after=0.0)))
    assert waited < 0.4  # "Retry-After: 0" means at once


def test_an_unreadable_answer_is_asked_again_at_once_a_5xx_after_a_backoff(chat_server):
    waited, failure = asyncio.run(failing_call(chat_server, Faults(rate_malformed=1.0)))
    assert failure.reason.endswith("after 3 attempt(s)") and waited < 0.6  # backoff alone: >= 0.75 s
    waited, failure = asyncio.run(failing_call(chat_server, Faults(rate_500=1.0)))
    assert failure.reason == "HTTP 500 after 3 attempt(s)" and waited >= 0.75  # 0.25 s, then 0.5 s


def test_429s_cut_the_concurrency_when_they_are_many_not_when_they_are_sparse(chat_server):
    async def limiter_after(rate_429: float) -> Any:
        server = chat_server(faults=Faults(rate_429=rate_429), latency=Latency(base=0.005))
        llm = client(role(server.url, max_retries=3, initial_concurrency=16, max_concurrency=16))
        await asyncio.gather(*(llm.complete(ask(f"c{i}")) for i in range(300)), return_exceptions=True)
        await llm.backend.aclose()
        return llm.backend.endpoints[0].limiter

    sparse = asyncio.run(limiter_after(0.05))
    assert sparse.limit == 16 and sparse.slow_start  # one call in 20: noise that retries absorb
    turned_away = asyncio.run(limiter_after(0.6))
    assert turned_away.limit <= 4 and not turned_away.slow_start  # halved again and again


def test_requests_and_tokens_per_minute_budgets_pace_calls(chat_server):
    server = chat_server()

    async def paced(**budget: int) -> float:
        llm = client(role(server.url, **budget))
        backend = llm.backend
        for bucket in (backend.requests_budget, backend.tokens_budget):
            if bucket is not None:
                bucket.level = 0.0  # the minute's burst is spent
        started = time.monotonic()
        await asyncio.gather(*(llm.complete(ask(f"paced {i}", max_tokens=20)) for i in range(5)))
        await backend.aclose()
        return time.monotonic() - started

    assert 0.45 <= asyncio.run(paced(requests_per_minute=600)) < 2  # 10 a second: the 5th after 0.5 s
    # each request is estimated at ~25 tokens until its usage is known: 5 x 25 at 100 tokens a second
    assert 0.4 <= asyncio.run(paced(tokens_per_minute=6000)) < 3


def test_requests_are_balanced_across_endpoints_and_avoid_a_broken_one(chat_server):
    first, second = chat_server(latency=Latency(base=0.01)), chat_server(latency=Latency(base=0.01))

    async def run(*urls: str) -> tuple[list, Any]:
        llm = client(role(*urls, initial_concurrency=8, max_retries=3))
        results = await asyncio.gather(*(llm.complete(ask(f"b{i}", seed=i), Verdict) for i in range(200)))
        await llm.backend.aclose()
        return results, llm.backend

    results, backend = asyncio.run(run(first.url, second.url))
    shares = [first.stats.total_answered() / 200, second.stats.total_answered() / 200]
    assert sum(shares) == 1 and min(shares) >= 0.3
    assert {r.completion.endpoint for r in results} == {first.url, second.url}

    broken = chat_server(faults=Faults(rate_500=1.0))
    results, backend = asyncio.run(run(broken.url, first.url))
    assert len(results) == 200 and all(r.completion.endpoint == first.url for r in results)
    assert backend.endpoints[0].limiter.limit < 8  # nothing but 5xx: cut, and resting
    assert broken.stats.requests < 40


@pytest.mark.parametrize("http_client", ["aiohttp", "httpx"])
def test_both_transports_tell_a_refused_connection_from_a_timeout(chat_server, http_client):
    """A refused connection is an outage (the call waits, then stops the run past the outage limit,
    spending no attempt); a slow answer is a timeout that spends attempts and fails the call."""
    import socket

    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{free.getsockname()[1]}/v1"
    slow = chat_server(latency=Latency(base=1.0))

    refused = asyncio.run(first_failure(dead, http_client))
    assert isinstance(refused, EndpointOutage) and "connection error" in str(refused), refused
    timed_out = asyncio.run(first_failure(slow.url, http_client))
    assert isinstance(timed_out, LLMFailure) and timed_out.reason == "timeout after 2 attempt(s)"


@pytest.mark.parametrize("http_client", ["aiohttp", "httpx"])
def test_both_transports_call_a_connect_timeout_an_outage(http_client):
    """A server that never completes the TCP handshake (its accept queue is full, so the kernel drops
    the client's SYN) is down, not slow: the call waits it out as an outage and spends no attempt."""
    import socket

    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(socket.socket())
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(4):  # fill its accept queue; it never accepts
            waiting = stack.enter_context(socket.socket())
            waiting.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                waiting.connect(("127.0.0.1", port))
        failed = asyncio.run(first_failure(f"http://127.0.0.1:{port}/v1", http_client))
    assert isinstance(failed, EndpointOutage) and "timeout" in str(failed), failed


@pytest.mark.parametrize("http_client", ["aiohttp", "httpx"])
def test_a_call_given_up_on_leaves_the_servers_count_of_calls_in_flight(chat_server, http_client):
    """Both transports hang up on a timeout, and the test server stops counting the call then, not
    when its late answer would be ready: the ceiling tests measure what the client waits on."""
    server = chat_server(faults=Faults(rate_timeout=1.0, timeout_delay=30.0))

    async def give_up() -> None:
        config = role(server.url, http_client=http_client, timeout_s=0.2, max_retries=0)
        llm = client(config)
        try:
            with pytest.raises(LLMFailure, match="^timeout after 1 attempt"):
                await llm.complete(ask("t", seed=0), Verdict)
        finally:
            await llm.backend.aclose()

    asyncio.run(give_up())
    settled(server, timeout_s=5)  # long before the 30 s its answer would take
    assert server.stats.requests == 1 and server.stats.concurrent == 0


def test_both_transports_classify_every_answer_alike(chat_server):
    """The aiohttp poster raises the SDK's own exceptions: each fault ends with the same reason (or
    stops the run, or is an outage) as through the SDK's httpx transport, and the key is sent."""
    server = chat_server()

    async def outcome(http_client: str, faults: Faults, model: str = "scripted") -> str:
        server.faults = faults
        config = OpenAIRole(
            backend="openai", model=model, base_urls=[server.url], http_client=http_client, max_retries=1
        )
        llm = client(config, outages=OutageBoard(0.3))
        try:
            result = await llm.complete(ask(f"{faults} {model}", seed=1), Verdict)
            return f"answered {result.value}"
        except (LLMFailure, EndpointOutage, FatalLLMError) as exc:
            text = re.sub(r" since \S+ UTC", "", f"{type(exc).__name__}: {exc}")  # the outage's start
            return text.split(": {")[0]  # without a malformed body's text
        finally:
            await llm.backend.aclose()

    cases = [
        (Faults(), "scripted"),
        (Faults(rate_429=1.0), "scripted"),
        (Faults(rate_500=1.0), "scripted"),
        (Faults(rate_500=1.0, status_500=503), "scripted"),
        (Faults(rate_malformed=1.0), "scripted"),
        (Faults(), "unknown-model"),
    ]
    seen = {
        http_client: [asyncio.run(outcome(http_client, faults, model)) for faults, model in cases]
        for http_client in ("httpx", "aiohttp")
    }
    assert seen["aiohttp"] == seen["httpx"]
    answered, throttled, failed, down, malformed, unknown = seen["aiohttp"]
    assert answered.startswith("answered ")
    assert throttled == "LLMFailure: HTTP 429 after 2 attempt(s)"
    assert failed == "LLMFailure: HTTP 500 after 2 attempt(s)"
    assert down.startswith("EndpointOutage:") and "HTTP 503" in down
    assert malformed.startswith("LLMFailure: ") and "after 2 attempt(s)" in malformed
    assert unknown.startswith("FatalLLMError: model 'unknown-model'") and "HTTP 404" in unknown
    assert set(server.stats.authorizations) == {"Bearer EMPTY"}


def test_each_call_has_one_idempotency_key_kept_through_its_retries(chat_server, monkeypatch):
    """The backend hands the SDK its own key per call (so the SDK draws no uuid4 per post): the same
    for every retry of a call, a new one for the next call, and no uuid4 drawn for either."""
    server = chat_server(faults=Faults(rate_500=1.0))
    llm = client(role(server.url, max_retries=2))
    drawn = []
    monkeypatch.setattr(uuid, "uuid4", lambda: drawn.append(1) or uuid.UUID(int=len(drawn)))
    endpoint = llm.backend.endpoints[0]
    keys: list[str] = []
    post = endpoint.client.post

    async def recording_post(*args: Any, **kwargs: Any) -> Any:
        keys.append(kwargs["options"]["idempotency_key"])
        return await post(*args, **kwargs)

    endpoint.client.post = recording_post

    async def two_calls() -> None:
        with pytest.raises(LLMFailure):
            await llm.complete(ask("first"))
        server.faults = Faults()
        await llm.complete(ask("second"))
        await llm.backend.aclose()

    asyncio.run(two_calls())
    assert len(keys) == 4 and len(set(keys[:3])) == 1 and keys[3] != keys[0]
    assert drawn == []  # one uuid4 when the backend was made, none per call

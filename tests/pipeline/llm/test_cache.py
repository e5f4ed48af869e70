"""The LLM call cache on a real DuckDB store: a key the store never held costs no query, and a key it
holds is always found, in the same session or the next, whether it was cached before the keys were
tracked or committed after."""

from __future__ import annotations

import asyncio

import duckdb
import pytest

from pipeline.llm.cache import CallCache
from pipeline.llm.types import ChatRequest, Completion, Sample
from pipeline.store import CacheEntry, CommitBatch, Store
from pipeline.store.cache_keys import CacheKeys
from pipeline.store.thread import StoreThread


def ask(text: str) -> ChatRequest:
    return ChatRequest(messages=({"role": "user", "content": text},), model="m", seed=1)


def test_cache_keys_never_forget_a_key_and_rarely_claim_one() -> None:
    keys = CacheKeys()
    held = [f"{i:032x}" for i in range(0, 200_000, 2)]
    keys.add(held)
    assert all(keys.may_hold(k) for k in held)
    absent = [f"{i:032x}" for i in range(1, 200_000, 2)]
    assert sum(keys.may_hold(k) for k in absent) / len(absent) < 0.01  # 100,000 keys in 2**26 bits


@pytest.fixture
def counted_queries(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    queries: list[list[str]] = []
    real = Store.cache_get

    def cache_get(self: Store, keys: list[str]):
        queries.append(list(keys))
        return real(self, keys)

    monkeypatch.setattr(Store, "cache_get", cache_get)
    return queries


def session(db_path, texts: list[str], track: bool = True) -> tuple[list[bool], list[str]]:
    """Fetch each text through a CallCache on a freshly opened store (its cache keys tracked, as a
    run does), committing each answer before the next fetch (as the writer does); whether each came
    from the cache, and the calls made."""
    store = Store.open(db_path)
    if track:
        store.track_cache_keys()
    db = StoreThread(store)
    cache = CallCache(db)
    calls: list[str] = []

    async def call(request: ChatRequest) -> Completion:
        calls.append(request.messages[0]["content"])
        return Completion(samples=[Sample(text=f"answer to {request.messages[0]['content']}")])

    async def fetch_all() -> list[bool]:
        cached = []
        for text in texts:
            completion, was_cached = await cache.fetch(ask(text), call)
            assert completion.samples[0].text == f"answer to {text}"
            cached.append(was_cached)
            batch = CommitBatch(cache=cache.drain())
            await db.call(lambda s, batch=batch: s.commit(batch))
            cache.committed(batch.cache)  # out of memory: only DuckDB has it now
        return cached

    try:
        return asyncio.run(fetch_all()), calls
    finally:
        cache.close()
        db.shutdown()
        store.close()


def test_a_fresh_store_queries_only_for_keys_it_committed(db_path, counted_queries) -> None:
    cached, calls = session(db_path, ["a", "b", "a", "c"])
    assert cached == [False, False, True, False] and calls == ["a", "b", "c"]
    # "a" was asked again after its commit left memory: found in DuckDB; new keys made no query
    assert counted_queries == [[ask("a").key()]]


def test_keys_cached_before_the_session_are_read_when_tracking_starts(db_path, counted_queries) -> None:
    session(db_path, ["a", "b"])
    counted_queries.clear()
    cached, calls = session(db_path, ["b", "d", "a"])
    assert cached == [True, False, True] and calls == ["d"]
    assert counted_queries == [[ask("b").key()], [ask("a").key()]]  # "d", never stored: no query


def test_untracked_keys_are_asked_of_duckdb_every_time(db_path, counted_queries) -> None:
    session(db_path, ["a"])
    counted_queries.clear()
    cached, calls = session(db_path, ["a", "e"], track=False)
    assert cached == [True, False] and calls == ["e"]
    assert counted_queries == [[ask("a").key()], [ask("e").key()]]


def test_a_commit_that_fails_leaves_the_key_looked_up_not_lost(db_path) -> None:
    store = Store.open(db_path)
    store.track_cache_keys()
    entry = CacheEntry("k1", "m", "{}", "{}", 1, 1, 0.1, "e", None)  # type: ignore[arg-type]
    with pytest.raises(duckdb.ConstraintException):  # created_at may not be NULL: nothing is written
        store.commit(CommitBatch(cache=[entry]))
    assert store.may_cache("k1") and store.cache_get(["k1"]) == {}  # a set bit only costs a query
    assert not store.may_cache("k2")
    store.close()

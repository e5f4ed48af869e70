"""The LLM call cache: every answered request is kept under its content key.

A request whose key is already answered (committed in DuckDB, waiting to be committed, or being
answered right now for another item) costs no call. New answers wait in memory until the runner's
writer drains them into its next transaction; lookups that miss memory are batched into one query,
made on a read cursor with a thread of its own, so that a call never waits for a commit to finish,
and a key the store knows it never held makes no query at all (pipeline/store/cache_keys.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from pipeline.llm.types import ChatRequest, Completion
from pipeline.store import CacheEntry
from pipeline.store.thread import StoreThread


class CallCache:
    def __init__(self, db: StoreThread | None):
        self.db = db
        self._new: dict[str, CacheEntry] = {}  # answered, not yet drained by the writer
        self._committing: dict[str, CacheEntry] = {}  # drained, transaction not yet finished
        self._inflight: dict[str, asyncio.Future[Completion]] = {}
        self._lookups: dict[str, asyncio.Future[str | None]] = {}
        self._lookup_scheduled = False
        self._tasks: set[asyncio.Task] = set()
        self._reader: asyncio.Future[StoreThread] | None = None  # opened at the first lookup

    def close(self) -> None:
        """Stop the lookups' thread and close their cursor (after the last lookup)."""
        if self._reader is not None and self._reader.done() and not self._reader.exception():
            reader = self._reader.result()
            reader.shutdown()
            reader.store.close()
        self._reader = None

    async def _reader_thread(self) -> StoreThread:
        """The lookups' own cursor and thread. The cursor sees committed data only, which is all a
        lookup needs: an answer not yet committed is still in memory (`_new`, `_committing`)."""
        assert self.db is not None
        if self._reader is None:
            self._reader = asyncio.ensure_future(self.db.call(lambda store: StoreThread(store.reader())))
        return await asyncio.shield(self._reader)

    async def fetch(
        self,
        request: ChatRequest,
        call: Callable[[ChatRequest], Awaitable[Completion]],
        canonical: str | None = None,
    ) -> tuple[Completion, bool]:
        """The answer to `request` and whether it came without a new call (`canonical`: the
        request's canonical JSON, when the caller has it)."""
        canonical = canonical or request.canonical()
        key = request.key(canonical)
        entry = self._new.get(key) or self._committing.get(key)
        if entry is not None:
            return Completion.model_validate_json(entry.response), True
        if key in self._inflight:
            return await asyncio.shield(self._inflight[key]), True
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            stored = await self._lookup(key)
            if stored is not None:
                completion, cached = Completion.model_validate_json(stored), True
            else:
                completion, cached = await call(request), False
                self._new[key] = _entry(key, request, canonical, completion)
            future.set_result(completion)
            return completion, cached
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark it retrieved: other waiters, if any, get it too
            raise
        finally:
            del self._inflight[key]

    def drain(self) -> list[CacheEntry]:
        """Hand new answers to the writer; they stay visible until `committed` is called."""
        entries = list(self._new.values())
        self._committing.update(self._new)
        self._new = {}
        return entries

    def committed(self, entries: list[CacheEntry]) -> None:
        for entry in entries:
            self._committing.pop(entry.key, None)

    async def _lookup(self, key: str) -> str | None:
        if self.db is None or not self.db.store.may_cache(key):  # never stored: no query
            return None
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._lookups[key] = future
        if not self._lookup_scheduled:
            self._lookup_scheduled = True
            asyncio.get_running_loop().call_soon(self._start_lookup_batch)
        return await future

    def _start_lookup_batch(self) -> None:
        batch, self._lookups, self._lookup_scheduled = self._lookups, {}, False
        task = asyncio.get_running_loop().create_task(self._run_lookup_batch(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_lookup_batch(self, batch: dict[str, asyncio.Future[str | None]]) -> None:
        assert self.db is not None
        keys = list(batch)
        try:
            reader = await self._reader_thread()
            rows = await reader.call(lambda store: store.cache_get(keys))
        except Exception as exc:
            for future in batch.values():
                if not future.done():
                    future.set_exception(exc)
            return
        for key, future in batch.items():
            if not future.done():
                row = rows.get(key)
                future.set_result(row[0] if row else None)


def _entry(key: str, request: ChatRequest, canonical: str, completion: Completion) -> CacheEntry:
    return CacheEntry(
        key=key,
        model=request.model,
        request=canonical,
        response=completion.model_dump_json(),
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        latency_s=completion.latency_s,
        endpoint=completion.endpoint,
        created_at=datetime.now(UTC).replace(tzinfo=None),
    )

"""The writer: everything a run produces reaches DuckDB through here, in batched transactions.

Finished items (their output records and progress marker), new LLM answers and usage counts are
collected in memory and committed together every `interval` seconds, or sooner when `max_items`
items wait. An item's outputs and its marker always land in the same transaction, so after a crash
an item is either wholly done or not started.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable

from pipeline.llm.cache import CallCache
from pipeline.llm.client import UsageBook
from pipeline.records import Record
from pipeline.store import CommitBatch, ProgressRow
from pipeline.store.thread import StoreThread

# Called after each commit with the number of records and of progress markers committed per stage.
CommitListener = Callable[[Counter, Counter], None]


class Writer:
    def __init__(
        self,
        db: StoreThread,
        cache: CallCache,
        usage: UsageBook,
        *,
        interval: float = 0.25,
        max_items: int = 512,
    ):
        self.db = db
        self.cache = cache
        self.usage = usage
        self.interval = interval
        self.max_items = max_items
        self.listeners: list[CommitListener] = []
        self._records: list[Record] = []
        self._progress: list[ProgressRow] = []
        self._due = asyncio.Event()
        self._lock = asyncio.Lock()
        self._closed = False

    def add(self, records: list[Record], progress: ProgressRow | None = None) -> None:
        self._records.extend(records)
        if progress is not None:
            self._progress.append(progress)
        if len(self._progress) >= self.max_items or len(self._records) >= 8 * self.max_items:
            self._due.set()

    def commit_soon(self) -> None:
        """Commit what waits now rather than at the next tick (a stage's last items)."""
        if self._progress or self._records:
            self._due.set()

    async def run(self) -> None:
        """Flush on a timer until closed. An error here (disk full) ends the run."""
        while not self._closed:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that arrives as
            # the event is set, and the runner, which cancels this task, then waited for it forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._due.wait()
            self._due.clear()
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            batch = CommitBatch(
                records=self._records,
                progress=self._progress,
                cache=self.cache.drain(),
                usage=self.usage.drain(),
            )
            self._records, self._progress = [], []
            if not batch:
                return
            await self.db.call(lambda store: store.commit(batch))
            self.cache.committed(batch.cache)
            records = Counter(r.stage for r in batch.records)
            markers = Counter(p.stage for p in batch.progress)
            for listener in self.listeners:
                listener(records, markers)

    async def close(self) -> None:
        """Commit whatever is left; nothing added afterwards is written."""
        self._closed = True
        self._due.set()
        await self.flush()

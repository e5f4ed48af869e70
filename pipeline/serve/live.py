"""The status of each running run, kept current in memory.

While a run writes, its document (the status of `safeset status --json`: a dozen queries over the
run's records; its queue state and sessions, which do not change while it runs) is computed every
REFRESH_S on a reader thread of its own, as `safeset run` refreshes its live status file, and
requests answer from the latest one (`status_at` says when it was computed) instead of each computing
it anew beside the run's writes. A run that is not running has no live entry: its document is
computed when asked.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pipeline.serve import reads
from pipeline.serve.reads import Reader
from pipeline.store.thread import StoreThread

log = logging.getLogger(__name__)
REFRESH_S = 2.0
FIRST_S = 0.2


class LiveStatus:
    def __init__(self, reader: Reader):
        self.reader = reader
        self._thread: StoreThread | None = None  # its own, so requests never wait behind a refresh
        self._docs: dict[str, dict[str, Any]] = {}
        self._tasks: dict[str, asyncio.Task] = {}

    async def start(self) -> None:
        self._thread = await self.reader.thread()

    def track(self, run_id: str) -> None:
        if run_id not in self._tasks:
            self._tasks[run_id] = asyncio.create_task(self._refresh(run_id), name=f"status:{run_id}")

    def forget(self, run_id: str) -> None:
        task = self._tasks.pop(run_id, None)
        if task is not None:
            task.cancel()
        self._docs.pop(run_id, None)

    def get(self, run_id: str) -> dict[str, Any] | None:
        """The run's latest document, if it is running and has started (its status is not None)."""
        return self._docs.get(run_id)

    async def _refresh(self, run_id: str) -> None:
        while True:
            try:
                document = await self._thread.call(lambda s: reads.run_document(s, run_id))
                if document["status"] is not None and run_id in self._tasks:
                    self._docs[run_id] = document
            except Exception:  # a failed refresh leaves the last document; the next one tries again
                log.debug("cannot refresh the status of %s", run_id, exc_info=True)
            # Until the run has started (its status exists), look again soon.
            await asyncio.sleep(REFRESH_S if run_id in self._docs else FIRST_S)

    async def shutdown(self) -> None:
        tasks = list(self._tasks.values())
        for run_id in list(self._tasks):
            self.forget(run_id)
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._thread is not None:
            self._thread.shutdown()
            self._thread.store.close()

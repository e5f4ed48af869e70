"""The run queue's scheduler starts a run submitted while it was reading the queue at once, not when
another run happens to end (on a busy CI machine two runs submitted together once ran one after the
other this way)."""

from __future__ import annotations

import asyncio
import time

from pipeline.llm.backend_set import BackendSet
from pipeline.runner import Host
from pipeline.serve.live import LiveStatus
from pipeline.serve.reads import Reader
from pipeline.serve.runs import Changes, RunWorkers
from pipeline.serve.settings import ServeSettings
from pipeline.store import Store
from pipeline.store import serve_queue as queue
from pipeline.store.thread import StoreThread


def test_a_run_submitted_while_the_scheduler_reads_the_queue_starts_at_once(tmp_path, monkeypatch):
    store = Store.open(tmp_path / "serve.duckdb")
    db = StoreThread(store)
    started: list[str] = []

    async def holds_its_slot(self: RunWorkers, queued: queue.QueuedRun) -> None:  # stands in for a run
        started.append(queued.run_id)
        while not self._closing:
            await asyncio.sleep(0.01)
        self.active.pop(queued.run_id)

    read_queue = queue.next_queued

    def next_queued(s: Store, skip: set[str]) -> queue.QueuedRun | None:
        found = read_queue(s, skip)
        if found is None and not started:  # a POST lands between this read and the scheduler's wait
            queue.submit_run(s, "late", "{}", {}, None, False)
            workers.wake()
        return found

    monkeypatch.setattr(RunWorkers, "_drive", holds_its_slot)
    monkeypatch.setattr(queue, "next_queued", next_queued)

    async def main() -> None:
        nonlocal workers
        host = Host(db, BackendSet(across_models=True))
        changes = Changes(asyncio.get_running_loop())
        workers = RunWorkers(ServeSettings(db=tmp_path / "serve.duckdb"), store, db, host, changes,
                             LiveStatus(Reader(db)))  # fmt: skip
        await workers.start()
        deadline = time.monotonic() + 10
        while not started and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await workers.shutdown()

    workers: RunWorkers | None = None
    try:
        asyncio.run(main())
    finally:
        db.shutdown()
        store.close()
    assert started == ["late"]

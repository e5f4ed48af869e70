"""The writer's commit loop ends when the runner cancels it, whenever the cancel arrives."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.llm.cache import CallCache
from pipeline.llm.client import UsageBook
from pipeline.store import ProgressRow, Store
from pipeline.store.thread import StoreThread
from pipeline.writer import Writer


@pytest.mark.parametrize("steps", range(6))
def test_a_cancel_that_arrives_as_a_commit_falls_due_ends_the_writer(tmp_path, steps):
    # Python 3.11's asyncio.wait_for returned normally when cancelled in the loop steps where its
    # event had just been set, so this loop went on; a Ctrl-C on a busy run then never ended.
    async def scenario() -> bool:
        db = StoreThread(Store.open(tmp_path / "w.duckdb"))
        writer = Writer(db, CallCache(None), UsageBook("r"), interval=0.25, max_items=1)
        task = asyncio.create_task(writer.run())
        await asyncio.sleep(0.05)  # waiting for a commit to fall due
        writer.add(
            [], ProgressRow(run_id="r", stage="s", item_id="i", status="done", n_outputs=0)
        )  # due at once
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2)
        writer._closed = True  # let a loop that missed its cancel end, so the test itself ends
        await asyncio.gather(task, return_exceptions=True)
        db.shutdown()
        return bool(done) and task.cancelled()

    assert asyncio.run(scenario())

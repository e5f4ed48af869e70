"""The run queue's workers: up to N runs at once, each a `Runner` on the workers' event loop.

The runs' loop has a thread of its own: however busy the runs keep it (thousands of calls in flight),
the API's loop answers requests at once; the two share the GIL, not a queue of callbacks. The API
reaches the workers only through `wake`, `stop`, `start` and `shutdown`, which hand over to the
runs' loop, and `Changes.notify` hands back to the API's.

Runs wait in the `serve_runs` table. A scheduler starts the longest-waiting queued run whenever a
slot is free; a run ends finished (its status may still show work pending, after --max-items),
stopped (by a stop request, or an endpoint outage past the limit: resume continues it), or failed
(a config, database or endpoint the user must fix). Every run borrows the server's store thread and
LLM backends (`Host`), so runs on one endpoint share its limiter and budgets.

A server killed mid-run leaves its rows `running`: on start they go back to the queue, first in line,
and the runner's exact resume (progress markers and cached answers) continues them where they were.
A server shut down cleanly stops its runs at a transaction boundary and leaves them the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from pipeline.config import ConfigError
from pipeline.llm.roles import redact_text
from pipeline.llm.types import FatalLLMError
from pipeline.runner import Host, ProgressSink, RunInterrupted, Runner, RunPaused
from pipeline.serve import submit
from pipeline.serve.live import LiveStatus
from pipeline.serve.settings import ServeSettings
from pipeline.store import Store, StoreError
from pipeline.store import serve_queue as queue
from pipeline.store.serve_queue import QueuedRun
from pipeline.store.thread import StoreThread

log = logging.getLogger(__name__)
T = TypeVar("T")


class Changes:
    """Wakes whoever watches a run (the SSE streams, on the API's loop) when it commits or changes
    state; `notify` may be called from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop  # the API's
        self._events: dict[str, asyncio.Event] = {}

    def event(self, run_id: str) -> asyncio.Event:
        return self._events.setdefault(run_id, asyncio.Event())

    def notify(self, run_id: str) -> None:
        with contextlib.suppress(RuntimeError):  # the API's loop is closed: nobody watches
            self.loop.call_soon_threadsafe(self._notify, run_id)

    def _notify(self, run_id: str) -> None:
        event = self._events.pop(run_id, None)
        if event is not None:
            event.set()


class _Progress(ProgressSink):
    def __init__(self, run_id: str, changes: Changes):
        self.run_id = run_id
        self.changes = changes

    def update(self, finished: Counter, new_inputs: Counter) -> None:
        self.changes.notify(self.run_id)


@dataclass
class _Active:
    runner: Runner | None  # None while the plan is loaded
    task: asyncio.Task
    stop_asked: bool = False


class RunWorkers:
    def __init__(
        self,
        settings: ServeSettings,
        store: Store,
        db: StoreThread,
        host: Host,
        changes: Changes,
        live: LiveStatus,
    ):
        self.settings = settings
        self.store = store
        self.db = db
        self.host = host
        self.changes = changes
        self.live = live
        self.active: dict[str, _Active] = {}  # read by the API's thread too
        self._wake = asyncio.Event()
        self._closing = False
        self._scheduler: asyncio.Task | None = None
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="runs", daemon=True)

    async def _on_runs_loop(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self.loop))

    async def start(self) -> None:
        self._thread.start()
        await self._on_runs_loop(self._start())

    async def _start(self) -> None:
        resumed = await self.db.call(queue.requeue_interrupted)
        if resumed:
            log.info("resuming %d run(s) a stopped server left running: %s", len(resumed), ", ".join(resumed))
        self._scheduler = asyncio.create_task(self._schedule(), name="scheduler")

    def wake(self) -> None:
        self.loop.call_soon_threadsafe(self._wake.set)

    async def _schedule(self) -> None:
        while not self._closing:
            # Cleared before the queue is read, so a run queued while it is read is not missed.
            self._wake.clear()
            while len(self.active) < self.settings.workers and not self._closing:
                queued = await self.db.call(functools.partial(queue.next_queued, skip=set(self.active)))
                if queued is None:
                    break
                await self.db.call(
                    functools.partial(queue.set_run_state, run_id=queued.run_id, state="running")
                )
                task = asyncio.create_task(self._drive(queued), name=f"run:{queued.run_id}")
                self.active[queued.run_id] = _Active(None, task)
                self.changes.notify(queued.run_id)
            await self._wake.wait()

    async def _drive(self, queued: QueuedRun) -> None:
        run_id = queued.run_id
        state, reason = "failed", None
        try:
            plan = submit.load(submit.materialize(self.settings, queued.config), queued.overrides)
            runner = Runner(
                plan,
                self.store,
                max_items=queued.max_items,
                retry_failed=queued.retry_failed,
                progress=_Progress(run_id, self.changes),
                argv=["safeset", "serve", f"run {run_id}"],
                host=self.host,
            )
            active = self.active[run_id]
            active.runner = runner
            self.live.track(run_id)
            if active.stop_asked:
                runner.stop()
            summary = await runner.run_async()
            state = "finished"
            if summary.held_back:
                reason = "--max-items held back: " + ", ".join(
                    f"{k} {n}" for k, n in summary.held_back.items()
                )
        except RunInterrupted:
            state, reason = "stopped", "stopped on request"
        except RunPaused as paused:
            state, reason = "stopped", redact_text(paused.reason)
        except (ConfigError, StoreError, FatalLLMError, OSError) as exc:
            state, reason = "failed", redact_text(str(exc))
        except Exception as exc:  # a bug: the run fails, the server goes on
            log.exception("run %s failed", run_id)
            state, reason = "failed", f"internal error ({type(exc).__name__}); see the server's log"
        finally:
            self.live.forget(run_id)
            self.active.pop(run_id, None)
            if self._closing and state == "stopped":  # a clean shutdown: a restart resumes it
                state, reason = "running", None
            try:
                await self.db.call(lambda s: queue.set_run_state(s, run_id, state, reason))
            except StoreError as exc:
                log.error("cannot record that run %s is %s: %s", run_id, state, exc)
            self.changes.notify(run_id)
            self._wake.set()

    def stop(self, run_id: str) -> bool:
        """Ask a running run to stop at a transaction boundary; False when it is not running here."""
        if run_id not in self.active:
            return False
        self.loop.call_soon_threadsafe(self._stop, run_id)
        return True

    def _stop(self, run_id: str) -> None:
        active = self.active.get(run_id)
        if active is not None:
            active.stop_asked = True
            if active.runner is not None:
                active.runner.stop()

    async def shutdown(self) -> None:
        """Stop the runs at a transaction boundary, then the runs' loop and thread."""
        await self._on_runs_loop(self._shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()

    async def _shutdown(self) -> None:
        self._closing = True
        self._wake.set()
        for active in list(self.active.values()):
            active.stop_asked = True
            if active.runner is not None:
                active.runner.stop()
        tasks = [a.task for a in self.active.values()]
        if self._scheduler is not None:
            tasks.append(self._scheduler)
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.live.shutdown()  # its refreshers run here
        await self.host.backends.aclose()  # their connections belong to this loop

"""The local async runner: plans a run from its stages, drives them all at once, records completion.

Every stage has a driver that repeatedly asks the store for items that are ready for it (records of
the stages it consumes that it has not finished), starts them up to its concurrency, and sleeps until
something changes: one of its items finished, or an upstream commit brought new records. So a record
flows on as soon as it is committed; no stage waits for a whole upstream stage unless it is a
barrier. A stage is finished when its upstream stages are, nothing of its own is running or waiting
to be committed, and the store has nothing ready for it.

Resume needs nothing special: finished items carry progress markers, and their LLM answers are
cached, so running the same command again continues where the last one stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from pipeline import __version__
from pipeline.config import RunPlan
from pipeline.context import RunContext
from pipeline.llm.backend_set import BackendSet
from pipeline.llm.cache import CallCache
from pipeline.llm.client import LLMPool, UsageBook, start_item
from pipeline.llm.outage import OutageBoard
from pipeline.llm.roles import redact_text
from pipeline.llm.types import EndpointOutage, FatalLLMError, LLMFailure
from pipeline.records import Record
from pipeline.stage import Drop, Stage
from pipeline.status import live_status_path, publish_live_status, run_status
from pipeline.store import ProgressRow, Store, StoreError
from pipeline.store.thread import StoreThread
from pipeline.writer import Writer

log = logging.getLogger(__name__)
SOURCE_BATCH = 5_000  # planned records committed per transaction
# Ready items a streaming stage reads ahead from the store per item it keeps in flight. Its refill
# runs on the writer's thread and can wait behind a commit; with 2, the queue held 50 ms of work
# against a 50 ms endpoint, and the endpoint had fewer than a quarter of its calls half of the time.
QUEUE_PER_SLOT = 8
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(Exception):
    """Ctrl-C or SIGTERM: the run stopped at a transaction boundary and can be resumed."""


class RunPaused(Exception):
    """An endpoint stayed unreachable past the outage limit: the run stopped at a transaction
    boundary with its work pending; the same command continues it with the same seeds."""

    def __init__(self, summary: RunSummary, reason: str):
        super().__init__(reason)
        self.summary = summary
        self.reason = reason


@dataclass
class _StageState:
    stage: Stage
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    queue: deque[tuple[Record, int]] = field(default_factory=deque)  # ready items, not yet started
    inflight: dict[str, asyncio.Task] = field(default_factory=dict)
    unflushed: int = 0  # items finished but not yet committed
    cursor: int = 0  # highest input seq fetched in this session
    inputs_version: int = 0  # bumped when records this stage consumes are committed
    queried_version: int = -1  # inputs_version at the last query
    exhausted: bool = False  # the last query returned everything that was ready


@dataclass
class Host:
    """What a long-lived process driving several runs at once (safeset serve) lends each of them: its
    one store thread (DuckDB has one writer) and its LLM backends (runs on one endpoint share its
    limiter and budgets). A hosted run leaves signals, the live status file, the thread and the
    backends to its host; the host stops it with `Runner.stop()`."""

    db: StoreThread
    backends: BackendSet


@dataclass
class RunSummary:
    run_id: str
    status: str
    resumed: bool
    seconds: float
    counts: dict[str, dict[str, int]]
    held_back: dict[str, int] = field(default_factory=dict)  # source records --max-items left out


class ProgressSink:
    """Receives progress; the CLI's rich bars implement it. Counts are items per stage."""

    def start(self, totals: dict[str, tuple[int, int]]) -> None:  # stage -> (finished, known total)
        pass

    def update(self, finished: Counter, new_inputs: Counter) -> None:
        pass

    def stop(self) -> None:
        pass


class Runner:
    def __init__(
        self,
        plan: RunPlan,
        store: Store,
        *,
        max_items: int | None = None,
        retry_failed: bool = False,
        progress: ProgressSink | None = None,
        argv: list[str] | None = None,
        outage_limit: float | None = None,
        host: Host | None = None,
    ):
        self.plan = plan
        self.host = host
        self.store = store
        self.max_items = max_items
        self.retry_failed = retry_failed
        self.progress = progress or ProgressSink()
        self.argv = argv if argv is not None else sys.argv
        self.run_id = plan.run_id
        self._states: dict[str, _StageState] = {}
        self._planned: dict[str, list[Record]] = {}  # the records of each source stage
        self._held_back: dict[str, int] = {}
        self._stopping = False
        self._stopped = asyncio.Event()  # set with _stopping, for what awaits the stop
        self._fatal: BaseException | None = None
        self._outage: EndpointOutage | None = None  # set when an outage outlasted the limit
        self.outages = OutageBoard(outage_limit or plan.config.outage_limit_s)

    def run(self) -> RunSummary:
        # Until the loop's handlers are installed, a signal only marks the run as stopping: raised as
        # KeyboardInterrupt it could land inside DuckDB, which turns it into a query error or drops it.
        main = threading.current_thread() is threading.main_thread()
        previous = {sig: signal.signal(sig, self._note_signal) for sig in _STOP_SIGNALS} if main else {}
        try:
            return asyncio.run(self.run_async())
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _note_signal(self, sig: int, frame: Any) -> None:
        self._stopping = True

    def stop(self) -> None:
        """Stop at the next transaction boundary (what Ctrl-C does); the run raises RunInterrupted."""
        self._stop()

    # ---- the run -------------------------------------------------------------------------------

    async def run_async(self) -> RunSummary:
        """The run on the running event loop (`run()` gives it a loop of its own)."""
        started = time.monotonic()
        db = self.host.db if self.host else StoreThread(self.store)
        cache = CallCache(db)
        usage = UsageBook(self.run_id)
        backends = self.host.backends if self.host else None
        pool = LLMPool(self.plan.config.roles, cache, usage, self.outages, backends)
        context = RunContext(self.run_id, self.plan.config.seed, pool, db, self.plan.config.roles.embedder)
        self._install_signal_handlers()  # first of all: Ctrl-C works while sources are planned
        if self._stopping:  # a signal came before the loop's handlers
            self._stop()
        try:
            # Stages are built and sources planned (seed files read) before the run is recorded, so
            # bad input stops the run with nothing written.
            for stage_plan in self.plan.stages:
                stage = stage_plan.cls(stage_plan.params, context.for_stage(stage_plan.cls.name))
                self._states[stage.name] = _StageState(stage)
                if stage.is_source():
                    self._planned[stage.name] = await self._plan_source(stage)
                if self._stopping:
                    raise RunInterrupted(RunSummary(self.run_id, "interrupted", False, 0.0, {}))
            resumed, session = await self._open_session(db)
        except BaseException:
            self._remove_signal_handlers()
            await pool.aclose()
            cache.close()
            self._release(db)
            raise
        writer = Writer(db, cache, usage)
        writer.listeners.append(self._on_commit)
        status = "crashed"
        try:
            status = await self._drive_all(db, writer)
        finally:
            self._remove_signal_handlers()
            await self._cancel_inflight()
            try:
                await writer.close()  # commit every finished item, even when stopping or crashing
            except StoreError as exc:  # the disk is full or read-only: report the first such error
                self._fatal = self._fatal or exc
            finally:
                status = "crashed" if self._fatal else status
                with contextlib.suppress(StoreError):  # a full disk may refuse even this
                    await db.call(lambda s: s.end_session(self.run_id, session, status))
                await pool.aclose()
                self.progress.stop()
                cache.close()
                self._release(db)
        if self._fatal is not None:
            raise self._fatal
        if self.host is None:
            counts = self.store.progress_counts(self.run_id)
        else:  # the host's thread is still in use: the store is its alone
            counts = await db.call(lambda s: s.progress_counts(self.run_id))
        summary = RunSummary(
            self.run_id, status, resumed, time.monotonic() - started, counts, dict(self._held_back)
        )
        if self._outage is not None:
            raise RunPaused(summary, str(self._outage))
        if status == "interrupted":
            raise RunInterrupted(summary)
        return summary

    async def _plan_source(self, stage: Stage) -> list[Record]:
        """`stage.plan()` on a daemon thread of its own (so plan() may read the store), given up at
        once when the run is stopped: Ctrl-C never waits for a long plan to finish."""
        loop = asyncio.get_running_loop()
        planned: asyncio.Future[list[Record]] = loop.create_future()

        def settle(outcome: Any, failed: bool) -> None:
            if not planned.done():
                planned.set_exception(outcome) if failed else planned.set_result(outcome)

        def work() -> None:
            try:
                outcome, failed = stage.plan(), False
            except BaseException as exc:
                outcome, failed = exc, True
            with contextlib.suppress(RuntimeError):  # the run ended meanwhile: its loop is closed
                loop.call_soon_threadsafe(settle, outcome, failed)

        threading.Thread(target=work, name=f"plan:{stage.name}", daemon=True).start()
        stopped = asyncio.ensure_future(self._stopped.wait())
        try:
            await asyncio.wait({planned, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        return planned.result() if planned.done() else []

    async def _open_session(self, db: StoreThread) -> tuple[bool, int]:
        config = self.plan.config
        snapshot = self.plan.snapshot()
        resumed = await db.call(
            lambda s: s.ensure_run(
                self.run_id, config.name, snapshot, config.seed, self.plan.source, __version__
            )
        )
        # The command line is stored without the credentials an --endpoint URL may carry.
        argv = [redact_text(arg) for arg in self.argv]
        session = await db.call(lambda s: s.start_session(self.run_id, os.getpid(), argv))
        await db.call(lambda s: s.track_cache_keys())  # on the writer's thread: between two commits
        return resumed, session

    async def _drive_all(self, db: StoreThread, writer: Writer) -> str:
        await self._start_progress(db)
        writer_task = asyncio.create_task(writer.run(), name="writer")
        publisher = asyncio.create_task(self._publish_status(db), name="status")
        drivers = [
            asyncio.create_task(self._drive(s.stage, db, writer), name=f"stage:{n}")
            for n, s in self._states.items()
        ]
        try:
            await self._wait(drivers, writer_task)
        finally:
            for task in (writer_task, publisher):
                task.cancel()
            await asyncio.gather(writer_task, publisher, return_exceptions=True)
            if self.host is None:
                live_status_path(self.store.path).unlink(missing_ok=True)
        if self._outage is not None:
            return "outage"
        return "interrupted" if self._stopping else "completed"

    async def _wait(self, drivers: list[asyncio.Task], writer_task: asyncio.Task) -> None:
        """Until every driver is done; the first error (a driver's or the writer's) stops them all."""
        pending = set(drivers) | {writer_task}
        while pending - {writer_task}:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task.exception() is not None and self._fatal is None:
                    self._fatal = task.exception()
            if self._fatal is not None:
                self._stop()
                for task in pending - {writer_task}:
                    task.cancel()
                await asyncio.gather(*(pending - {writer_task}), return_exceptions=True)
                return

    # ---- one stage -----------------------------------------------------------------------------

    async def _drive(self, stage: Stage, db: StoreThread, writer: Writer) -> None:
        state = self._states[stage.name]
        try:
            if stage.is_source():
                await self._run_source(stage, state, writer)
            elif stage.barrier:
                await self._run_barrier(stage, state, db, writer)
            else:
                await self._run_streaming(stage, state, db, writer)
        finally:
            state.finished.set()
            self._wake_consumers_of(stage.name)

    async def _run_source(self, stage: Stage, state: _StageState, writer: Writer) -> None:
        """Commit the stage's planned root items; --max-items keeps the first N, and every stage
        downstream then finishes all the work they lead to."""
        records = self._planned[stage.name]
        if self.max_items is not None and len(records) > self.max_items:
            self._held_back[stage.name] = len(records) - self.max_items
            records = records[: self.max_items]
        # In transactions of a bounded size, so that a stop never waits for one huge commit (a
        # resumed run plans the same records again; those already committed are skipped).
        for start in range(0, len(records), SOURCE_BATCH):
            if self._stopping:
                return
            writer.add(records[start : start + SOURCE_BATCH])
            await writer.flush()

    async def _run_streaming(self, stage: Stage, state: _StageState, db: StoreThread, writer: Writer) -> None:
        upstream = [self._states[n] for n in stage.consumes if n != stage.name]
        concurrency = stage.params.concurrency
        if "concurrency" not in stage.params.model_fields_set:  # the default: fill an engine's batch
            concurrency = max(concurrency, self.plan.config.roles.engine_in_flight(stage.roles))
        feeds_barrier = any(s.stage.barrier and stage.name in s.stage.consumes for s in self._states.values())
        while not self._stopping:
            state.wake.clear()
            # Read before the query: a commit that lands during it wakes us for another look.
            upstream_done = all(u.finished.is_set() for u in upstream)
            settled = not state.inflight and not state.queue and state.unflushed == 0
            fetched = await self._refill(stage, state, db, QUEUE_PER_SLOT * concurrency)
            while state.queue and len(state.inflight) < concurrency:
                item, spent = state.queue.popleft()
                work = self._work(stage, state, item, writer, spent)
                state.inflight[item.id] = asyncio.create_task(work)
            if settled and not fetched and upstream_done:
                return
            if feeds_barrier and upstream_done and not state.inflight and not state.queue and not fetched:
                writer.commit_soon()  # its last outputs: the barrier waiting for them need not wait a tick
            await state.wake.wait()

    async def _refill(self, stage: Stage, state: _StageState, db: StoreThread, depth: int) -> int:
        """Top up the stage's queue of ready items from the store. Asks only when the queue is low and
        either the last answer was not exhausted or inputs were committed since; returns how many came."""
        want = depth - len(state.queue)
        if len(state.queue) >= depth // 2:
            return 0
        if state.exhausted and state.inputs_version == state.queried_version:
            return 0
        version = state.inputs_version
        query = functools.partial(
            Store.pending,
            run_id=self.run_id,
            stage=stage.name,
            inputs=stage.consumes,
            after_seq=state.cursor,
            limit=want,
            retry_failed=self.retry_failed,
        )
        fetched = await db.call(query)
        state.queried_version, state.exhausted = version, len(fetched) < want
        if fetched:
            state.cursor = fetched[-1][0].seq or state.cursor
            state.queue.extend(fetched)
        return len(fetched)

    async def _run_barrier(self, stage: Stage, state: _StageState, db: StoreThread, writer: Writer) -> None:
        """Decide the stage's items once every stage it consumes has finished; the records of its
        `early_inputs()` stages as soon as their own stage has, so that downstream work on them
        overlaps the rest of the upstream (the later decision finds them in the store, as a resumed
        run does)."""
        early = set(stage.early_inputs())
        while not self._stopping:
            state.wake.clear()  # before the look: a stage that finishes during it wakes us again
            finished = {name for name in stage.consumes if self._states[name].finished.is_set()}
            if finished == set(stage.consumes):
                await self._decide(stage, state, db, writer, stage.consumes)
                return
            if early & finished:
                await self._decide(stage, state, db, writer, tuple(sorted(early & finished)))
                early -= finished
                continue
            await state.wake.wait()

    async def _decide(
        self, stage: Stage, state: _StageState, db: StoreThread, writer: Writer, inputs: tuple[str, ...]
    ) -> None:
        """One `process_all` over the unfinished records of `inputs`, committed before it returns."""
        fetched = await db.call(
            lambda s: s.pending(self.run_id, stage.name, inputs, 0, 2**62, self.retry_failed)
        )
        if self._stopping or not fetched:
            return
        items = [item for item, _ in fetched]
        outcomes = await asyncio.to_thread(stage.process_all, items)
        for item in items:
            records, progress = self._settle(stage, item, outcomes[item.id])
            state.unflushed += 1
            writer.add(records, progress)
        await writer.flush()

    async def _work(
        self, stage: Stage, state: _StageState, item: Record, writer: Writer, spent_attempts: int
    ) -> None:
        # A retried failure continues its LLM attempts where it stopped (stage.ctx.attempt), so it
        # gets new answers rather than its cached failed ones.
        start_item(spent_attempts)
        try:
            try:
                outcome: Any = [] if stage.skip(item) else await stage.process(item)
            except LLMFailure as failure:
                outcome = failure
            except (FatalLLMError, EndpointOutage, asyncio.CancelledError):
                raise
            except Exception as exc:  # a bug or bad data in one item must not end the run
                log.debug("stage %s failed on %s", stage.name, item.id, exc_info=True)
                outcome = LLMFailure(f"{type(exc).__name__}: {exc}", 1)
            records, progress = self._settle(stage, item, outcome)
            state.unflushed += 1
            writer.add(records, progress)
        except FatalLLMError as exc:
            if self._fatal is None:
                self._fatal = exc
            self._stop()
        except EndpointOutage as exc:  # not the item's fault: it stays pending
            if self._outage is None:
                self._outage = exc
                log.error("stopping: %s", exc)
            self._stop()
        finally:
            state.inflight.pop(item.id, None)
            state.wake.set()

    def _settle(self, stage: Stage, item: Record, outcome: Any) -> tuple[list[Record], ProgressRow]:
        marker = {"run_id": self.run_id, "stage": stage.name, "item_id": item.id}
        if isinstance(outcome, LLMFailure):
            return [], ProgressRow(
                **marker, status="failed", n_outputs=0, reason=outcome.reason, attempts=outcome.attempts
            )
        if isinstance(outcome, Drop):
            records = list(outcome.records)
            return records, ProgressRow(
                **marker, status="dropped", n_outputs=len(records), reason=outcome.reason
            )
        if not isinstance(outcome, list) or not all(isinstance(r, Record) for r in outcome):
            raise TypeError(
                f"stage {stage.name} returned {type(outcome).__name__}; expected a list of records or Drop"
            )
        return outcome, ProgressRow(**marker, status="done", n_outputs=len(outcome))

    # ---- coordination --------------------------------------------------------------------------

    def _on_commit(self, records: Counter, markers: Counter) -> None:
        for name, count in markers.items():
            if name in self._states:
                self._states[name].unflushed -= count
                self._states[name].wake.set()
        finished, new_inputs = Counter(markers), Counter()
        for name, count in records.items():
            self._wake_consumers_of(name)
            for state in self._states.values():
                if name in state.stage.consumes:
                    state.inputs_version += 1
                    new_inputs[state.stage.name] += count
            if name in self._states and self._states[name].stage.is_source():
                finished[name] += count  # a source's progress is the records it planned
                new_inputs[name] += count
        self.progress.update(finished, new_inputs)

    def _wake_consumers_of(self, name: str) -> None:
        for state in self._states.values():
            if name in state.stage.consumes:
                state.wake.set()

    async def _start_progress(self, db: StoreThread) -> None:
        def totals(store: Store) -> dict[str, tuple[int, int]]:
            counts = store.progress_counts(self.run_id)
            out = {}
            for name, state in self._states.items():
                finished = sum(counts.get(name, {}).values())
                pending = (
                    store.count_pending(self.run_id, name, state.stage.consumes)
                    if state.stage.consumes
                    else 0
                )
                out[name] = (finished, finished + pending)
            return out

        self.progress.start(await db.call(totals))

    async def _publish_status(self, db: StoreThread, every: float = 2.0) -> None:
        """Keep `<db>.status.json` current for `safeset status` while this run holds the database, with
        the ids of every run in it (so `status --run X` can tell another run from an unknown one)."""
        if self.host is not None:  # the host answers status queries itself
            return
        runs = await db.call(lambda s: s.run_ids())
        stages = [stage_plan.cls for stage_plan in self.plan.stages]  # the stored config names these
        while True:
            await asyncio.sleep(every)
            try:
                report = await db.call(lambda s: run_status(s, self.run_id, stages))
                report["outages"] = self.outages.snapshot()
                publish_live_status(self.store.path, {**report, "runs": runs})
            except OSError as exc:  # a read-only folder: status is then unavailable during the run
                log.debug("cannot publish live status: %s", exc)

    def _stop(self) -> None:
        self._stopping = True
        self._stopped.set()
        for state in self._states.values():
            state.wake.set()

    async def _cancel_inflight(self) -> None:
        tasks = [t for s in self._states.values() for t in s.inflight.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _release(self, db: StoreThread) -> None:
        if self.host is None:
            db.shutdown()

    def _install_signal_handlers(self) -> None:
        if self.host is not None:  # the host's signals are its own
            return
        loop = asyncio.get_running_loop()
        for sig in _STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
                loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: int) -> None:
        log.warning("stopping: finishing the current transaction (press Ctrl-C again to abort at once)")
        self._stop()
        loop = asyncio.get_running_loop()
        loop.remove_signal_handler(sig)  # a second signal takes the default action

    def _remove_signal_handlers(self) -> None:
        if self.host is not None:
            return
        loop = asyncio.get_running_loop()
        for sig in _STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)

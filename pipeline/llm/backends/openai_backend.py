"""Any OpenAI-compatible chat-completions server (OpenAI, `vllm serve`, others) through AsyncOpenAI.

Several base URLs are balanced client-side: each call goes to the endpoint with the most free slots
under its own adaptive limiter; a retry goes elsewhere when it can, and an endpoint that just
pushed back (429, 5xx, timeout) rests a while, so a broken one gets only an occasional probe.
Transport faults (429, 5xx, timeouts, dropped connections) are retried with exponential jitter,
honouring Retry-After, and an unreadable body at once; what is still failing after `max_retries`
becomes an `LLMFailure`. An endpoint that does not answer at all (connection refused or reset, DNS, connect
timeout; or 502/503/504 through every retry) raises `Unreachable`: an outage, which the client
waits out (pipeline.llm.outage). Authentication and unknown-model errors stop the run.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
import openai
from openai import AsyncOpenAI, DefaultAioHttpClient
from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter
from tenacity.wait import wait_base

from pipeline.llm.limiter import AdaptiveLimiter, Dispatcher, MinuteBudget
from pipeline.llm.roles import OpenAIRole, redact_url
from pipeline.llm.types import ChatRequest, Completion, FatalLLMError, LLMFailure, Sample, Unreachable

_TRANSIENT = (
    openai.RateLimitError,
    openai.APITimeoutError,
    openai.APIConnectionError,
    openai.InternalServerError,
    openai.APIResponseValidationError,
    ValueError,  # a 200 whose body is not the expected JSON
)


_GATEWAY_DOWN = (502, 503, 504)


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return isinstance(exc, _TRANSIENT)


def _is_unreachable(exc: BaseException) -> bool:
    """No answer at all: refused, reset or dropped connections, DNS failures, connect timeouts (a
    read timeout is a slow answer, not an outage)."""
    if isinstance(exc, openai.APITimeoutError):
        # httpx's ConnectTimeout, or httpx2's: the HTTP library of openai 3, on both its transports
        return type(exc.__cause__).__name__ == "ConnectTimeout"
    return isinstance(exc, openai.APIConnectionError)


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return float(value) / 1000
        except ValueError:
            return None
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


_UNREADABLE = (openai.APIResponseValidationError, ValueError)  # the server answered, but not in JSON


class _WaitRetryAfter(wait_base):
    """Wait what the server asked for (capped at a minute), else exponential backoff with jitter; an
    unreadable answer is no sign of load, so it is asked again at once."""

    def __init__(self) -> None:
        self.backoff = wait_exponential_jitter(initial=0.25, max=20, jitter=0.5)

    def __call__(self, retry_state: Any) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, _UNREADABLE):
            return 0.0
        asked = _retry_after(exc) if exc else None
        return min(asked, 60.0) if asked is not None else self.backoff(retry_state)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, openai.APIStatusError):
        detail = f" ({str(exc.message)[:200]})" if exc.status_code < 500 and exc.status_code != 429 else ""
        return f"HTTP {exc.status_code}{detail}"
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection error"
    return f"{type(exc).__name__}: {str(exc)[:120]}"


@dataclass
class _Endpoint:
    url: str
    shown: str  # the URL without credentials, as stored and logged
    client: AsyncOpenAI
    limiter: AdaptiveLimiter
    strikes: int = 0
    resting_until: float = 0.0


def _limiter_outcome(exc: BaseException) -> str:
    """429s, timeouts, dropped connections and 5xx say the endpoint is overloaded (or down): cut."""
    if isinstance(exc, openai.RateLimitError | openai.APIConnectionError):
        return "overload"
    if isinstance(exc, openai.APIStatusError) and exc.status_code >= 500:
        return "overload"
    return "error"


class OpenAIBackend:
    def __init__(self, config: OpenAIRole):
        self.config = config
        api_key = os.environ.get(config.api_key_env) or "EMPTY"
        self.endpoints = [
            _Endpoint(
                url=url,
                shown=redact_url(url),
                client=AsyncOpenAI(
                    base_url=url,
                    api_key=api_key,
                    max_retries=0,
                    timeout=config.timeout_s,
                    http_client=DefaultAioHttpClient() if config.http_client == "aiohttp" else None,
                ),
                limiter=AdaptiveLimiter(config.initial_concurrency, config.max_concurrency),
            )
            for url in config.base_urls
        ]
        self.dispatcher = Dispatcher(self.endpoints)
        self.requests_budget = (
            MinuteBudget(config.requests_per_minute) if config.requests_per_minute else None
        )
        self.tokens_budget = MinuteBudget(config.tokens_per_minute) if config.tokens_per_minute else None
        # Idempotency keys: one per call, the same for its retries; one uuid4 per backend and a count.
        # The SDK would draw a uuid4 per post (an os.urandom read, 0.2 ms on a VM short of entropy).
        prefix = f"safeset-{uuid.uuid4().hex}"
        self._call_ids = (f"{prefix}-{n}" for n in itertools.count())

    async def complete(self, request: ChatRequest) -> Completion:
        body = _arguments(request)
        options = {"idempotency_key": next(self._call_ids)}
        estimate = sum(len(m["content"]) for m in request.messages) / 4 + request.max_tokens * request.n
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.config.max_retries + 1),
            wait=_WaitRetryAfter(),
            retry=retry_if_exception(lambda exc: _is_transient(exc) and not _is_unreachable(exc)),
            reraise=True,
        )
        tried: _Endpoint | None = None  # the endpoint of the last attempt, which a retry avoids
        try:
            async for attempt in retrying:
                with attempt:
                    if self.requests_budget:
                        await self.requests_budget.take(1)
                    if self.tokens_budget:
                        await self.tokens_budget.take(estimate)
                    tried, token = await self.dispatcher.acquire(avoid=tried)
                    return await self._call_once(tried, token, body, options, estimate)
        except openai.APIStatusError as exc:
            if exc.status_code in (401, 403):
                raise FatalLLMError(
                    f"{tried.shown} refused the API key (HTTP {exc.status_code}); "
                    f"check the environment variable {self.config.api_key_env}"
                ) from None
            if exc.status_code == 404:
                raise FatalLLMError(
                    f"model {request.model!r} or its route was not found at "
                    f"{tried.shown} (HTTP 404); check the role's model and base_urls"
                ) from None
            n = attempt.retry_state.attempt_number
            if exc.status_code in _GATEWAY_DOWN:  # through every retry: the server behind it is down
                raise Unreachable(tried.shown, f"{_describe(exc)} after {n} attempt(s)") from None
            raise LLMFailure(f"{_describe(exc)} after {n} attempt(s)", n) from None
        except _TRANSIENT as exc:
            if _is_unreachable(exc):
                raise Unreachable(tried.shown if tried else "?", _describe(exc)) from None
            n = attempt.retry_state.attempt_number
            raise LLMFailure(f"{_describe(exc)} after {n} attempt(s)", n) from None
        raise AssertionError("unreachable")

    async def _call_once(
        self, endpoint: _Endpoint, token: int, body: dict[str, Any], options: Any, estimate: float
    ) -> Completion:
        outcome = "error"
        started = time.perf_counter()
        try:
            # The SDK's low-level post sends the body as it is and hands back the decoded JSON: the
            # typed `chat.completions.create` spends more CPU per call on converting its parameters
            # and building response objects than the rest of this layer together.
            data = await endpoint.client.post("/chat/completions", body=body, options=options, cast_to=object)
            completion = _completion(data, time.perf_counter() - started, endpoint.shown)
            outcome = "ok"
        except Exception as exc:
            error = _unmask_connection_error(exc)
            outcome = _limiter_outcome(error)
            if error is exc:
                raise
            raise error from exc.__cause__
        finally:
            self.dispatcher.release(endpoint, token, outcome)
        if self.tokens_budget:
            self.tokens_budget.refund(estimate - completion.prompt_tokens - completion.completion_tokens)
        return completion

    async def aclose(self) -> None:
        for endpoint in self.endpoints:
            await endpoint.client.close()


def _unmask_connection_error(exc: Exception) -> Exception:
    """The aiohttp transport reports every aiohttp connection error (refused, reset, disconnected) as
    a connect timeout; what was not a timeout is a connection error, as the httpx transport says."""
    if not isinstance(exc, openai.APITimeoutError):
        return exc
    cause = exc.__cause__
    while cause is not None and not isinstance(cause, aiohttp.ClientError):
        cause = cause.__cause__
    if isinstance(cause, aiohttp.ClientConnectionError) and not isinstance(cause, asyncio.TimeoutError):
        error = openai.APIConnectionError(request=exc.request)
        error.__cause__ = exc.__cause__
        return error
    return exc


def _arguments(request: ChatRequest) -> dict[str, Any]:
    args: dict[str, Any] = {
        "model": request.model,
        "messages": list(request.messages),
        "n": request.n,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": request.max_tokens,
    }
    if request.seed is not None:
        args["seed"] = request.seed
    if request.logprobs:
        args["logprobs"] = True
    if request.json_schema is not None:
        args["response_format"] = {
            "type": "json_schema",
            "json_schema": {
                "name": request.schema_name or "answer",
                "schema": request.json_schema,
                "strict": True,
            },
        }
    return args


def _completion(data: Any, latency: float, endpoint: str) -> Completion:
    """A chat.completion body (decoded JSON) as a `Completion`; ValueError when it is not one."""
    if not isinstance(data, dict) or not data.get("choices"):
        raise ValueError(f"the server answered without choices: {str(data)[:120]!r}")
    try:
        return _read_completion(data, latency, endpoint)
    except (KeyError, TypeError, AttributeError, ValidationError) as exc:
        raise ValueError(f"unexpected chat.completion body ({type(exc).__name__}: {exc})") from None


def _read_completion(data: dict[str, Any], latency: float, endpoint: str) -> Completion:
    samples = []
    for choice in sorted(data["choices"], key=lambda c: c.get("index", 0)):
        message = choice.get("message") or {}
        content = (choice.get("logprobs") or {}).get("content")
        logprobs = [token["logprob"] for token in content] if content is not None else None
        text = message.get("content")
        if text is None:
            text = message.get("refusal") or ""
        samples.append(Sample(text=text, finish_reason=choice.get("finish_reason"), token_logprobs=logprobs))
    usage = data.get("usage") or {}
    return Completion(
        samples=samples,
        prompt_tokens=usage.get("prompt_tokens") or 0,
        completion_tokens=usage.get("completion_tokens") or 0,
        latency_s=latency,
        endpoint=endpoint,
    )

"""Flow control for the endpoints of a role: adaptive concurrency limits, a shared queue of calls
waiting for a slot, and optional per-minute budgets.

`AdaptiveLimiter` is one endpoint's limit, AIMD with a slow start as TCP does it: until the endpoint
first pushes back, every success while it is busy raises the limit by one (doubling it per round
trip); after that, by one per round trip. Pushing back (a 429, a timeout, a 5xx) halves it when
more than a quarter of the calls started since the last cut were pushed back (a moving share over
the last round trip, and over at least 32 outcomes): sparse errors of a flaky endpoint are noise
that retries absorb, while an endpoint at its limit turns away a growing share of calls. (Cutting
at every pushback, 5 % of calls failing at random would hold the limit near 1.) The limit stays
between the floor and the configured ceiling.

`Dispatcher` hands slots to waiting calls first come, first served, each as soon as any endpoint has
room, so one slow call never holds the others and a call is never stuck behind an endpoint that
went bad after it started waiting. Among endpoints with room it prefers those not resting after
pushing back, then the one a retry did not just fail on, then the one with the most free slots.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar

PUSHBACK_TOLERANCE = 0.25  # share of pushback among recent outcomes that does not cut the limit
PUSHBACK_WINDOW = 32  # fewest outcomes the share is taken over, so that a small limit is not noise


class AdaptiveLimiter:
    def __init__(self, initial: int, ceiling: int, floor: int = 1):
        self.ceiling = ceiling
        self.floor = min(floor, ceiling)
        self.limit = float(max(self.floor, min(initial, ceiling)))
        self.inflight = 0
        self.slow_start = True
        # pushback among the calls started since the last cut, a moving average over about
        # max(limit, PUSHBACK_WINDOW) outcomes
        self.pushback_share = 0.0
        self._epoch = 0  # bumped at every cut; a call started before the last cut cannot cut again

    @property
    def free(self) -> float:
        return self.limit - self.inflight

    def has_room(self) -> bool:
        return self.inflight < int(self.limit)

    def take(self) -> int:
        """Occupy a slot; returns a token to hand back to `release`."""
        self.inflight += 1
        return self._epoch

    def release(self, token: int, outcome: str) -> bool:
        """`outcome` is "ok", "overload" (the endpoint pushed back) or "error" (anything else).
        Returns whether the limit was cut."""
        self.inflight -= 1
        if outcome != "error" and token == self._epoch:  # only calls started at the current limit
            pushback = 1.0 if outcome == "overload" else 0.0
            self.pushback_share += (pushback - self.pushback_share) / max(self.limit, PUSHBACK_WINDOW)
        if outcome == "ok":
            if self.inflight + 1 >= int(self.limit) * 0.9:  # grow only while the limit is what binds
                step = 1.0 if self.slow_start else 1.0 / self.limit
                self.limit = min(self.ceiling, self.limit + step)
        elif outcome == "overload" and token == self._epoch and self.pushback_share > PUSHBACK_TOLERANCE:
            self.slow_start = False
            self._epoch += 1
            self.limit = max(self.floor, self.limit / 2)
            self.pushback_share = 0.0  # measured anew at the new limit
            return True
        return False


class Endpoint(Protocol):
    limiter: AdaptiveLimiter
    strikes: int  # cuts in a row
    resting_until: float  # time.monotonic() before which other endpoints are preferred


E = TypeVar("E", bound=Endpoint)


class Dispatcher(Generic[E]):
    def __init__(self, endpoints: Sequence[E]):
        self.endpoints = list(endpoints)
        self._waiters: deque[tuple[asyncio.Future[tuple[E, int]], E | None]] = deque()
        self._turn = 0  # rotates the order in which ties are broken

    async def acquire(self, avoid: E | None = None) -> tuple[E, int]:
        """Wait for a slot on some endpoint, preferring not `avoid`; returns it with its token."""
        if not self._waiters:
            chosen = self._choose(avoid)
            if chosen is not None:
                return chosen
        future: asyncio.Future[tuple[E, int]] = asyncio.get_running_loop().create_future()
        self._waiters.append((future, avoid))
        try:
            return await future
        except BaseException:
            if future.done() and not future.cancelled():  # a slot was handed over as we were cancelled
                self.release(*future.result(), "error")
            raise

    def release(self, endpoint: E, token: int, outcome: str) -> None:
        """Give the slot back with the call's outcome and hand free slots to the waiting calls. An
        endpoint whose limit was cut rests for 0.25 s, doubling with every cut in a row up to 30 s."""
        if endpoint.limiter.release(token, outcome):
            endpoint.strikes += 1
            endpoint.resting_until = time.monotonic() + min(30.0, 0.25 * 2 ** (endpoint.strikes - 1))
        elif outcome == "ok":
            endpoint.strikes = 0
        while self._waiters:
            future, avoid = self._waiters[0]
            if future.done():  # cancelled while waiting
                self._waiters.popleft()
                continue
            chosen = self._choose(avoid)
            if chosen is None:
                return
            self._waiters.popleft()
            future.set_result(chosen)

    def _choose(self, avoid: E | None) -> tuple[E, int] | None:
        now = time.monotonic()
        count = len(self.endpoints)
        self._turn = (self._turn + 1) % count
        best, best_rank = None, None
        any_awake = False
        for i in range(count):
            endpoint = self.endpoints[(self._turn + i) % count]
            awake = endpoint.resting_until <= now
            any_awake = any_awake or awake
            if endpoint.limiter.has_room():
                rank = (awake, endpoint is not avoid, endpoint.limiter.free)
                if best_rank is None or rank > best_rank:
                    best, best_rank = endpoint, rank
        if best is None or (any_awake and not best_rank[0]):
            return None  # wait for an awake endpoint rather than call one that is resting
        return best, best.limiter.take()


class MinuteBudget:
    """A token bucket refilled continuously at `per_minute` units a minute (requests or tokens)."""

    def __init__(self, per_minute: int):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.level = self.capacity
        self.updated = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now

    async def take(self, amount: float) -> None:
        amount = min(amount, self.capacity)  # one oversized request still goes, after a full minute
        async with self._lock:
            self._refill()
            while self.level < amount:
                await asyncio.sleep((amount - self.level) / self.rate)
                self._refill()
            self.level -= amount

    def refund(self, amount: float) -> None:
        """Give back what an estimate overcharged (negative to charge more)."""
        self._refill()
        self.level = min(self.capacity, self.level + amount)

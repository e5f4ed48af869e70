"""Adaptive concurrency (AIMD with slow start), the dispatcher across endpoints, per-minute budgets."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

import pytest

from pipeline.llm.limiter import AdaptiveLimiter, Dispatcher, MinuteBudget


def fill(limiter: AdaptiveLimiter) -> list[int]:
    return [limiter.take() for _ in range(int(limiter.limit) - limiter.inflight)]


def round_trip(limiter: AdaptiveLimiter) -> None:
    """As many calls finish as the limit allows, each replaced at once by a waiting one."""
    for _ in range(int(limiter.limit)):
        limiter.release(limiter._epoch, "ok")
        fill(limiter)


def pushbacks_until_cut(limiter: AdaptiveLimiter) -> int:
    """Calls are pushed back one after the other until the limit is cut; returns how many."""
    for count in range(1, 100):
        if limiter.release(limiter.take(), "overload"):
            return count
    raise AssertionError("never cut")


def test_slow_start_doubles_per_round_trip_then_growth_is_additive() -> None:
    limiter = AdaptiveLimiter(initial=4, ceiling=100)
    fill(limiter)
    round_trip(limiter)
    assert limiter.limit == 8  # +1 per success while busy
    assert pushbacks_until_cut(limiter) == 10  # over a quarter of 32 outcomes: one pushback is noise
    assert limiter.limit == 4 and not limiter.slow_start
    limiter.inflight = 4
    round_trip(limiter)
    assert limiter.limit == pytest.approx(5, abs=0.1)  # about +1 per round trip after the first cut


def test_a_burst_of_pushback_cuts_once_per_round_trip_down_to_the_floor() -> None:
    limiter = AdaptiveLimiter(initial=16, ceiling=16, floor=2)
    tokens = fill(limiter)
    cuts = [limiter.release(t, "overload") for t in tokens]
    assert cuts.count(True) == 1 and limiter.limit == 8  # calls started before the cut cannot cut again
    assert [pushbacks_until_cut(limiter) for _ in range(3)] == [10, 10, 10]  # measured anew after a cut
    assert limiter.limit == 2  # 8, 4, 2 and never below the floor


def test_sparse_pushback_is_noise_but_a_storm_of_it_cuts() -> None:
    rng = random.Random(0)
    limiter = AdaptiveLimiter(initial=64, ceiling=64)
    fill(limiter)
    for _ in range(64 * 50):  # 50 round trips with one call in 20 pushed back at random
        limiter.release(limiter._epoch, "overload" if rng.random() < 0.05 else "ok")
        fill(limiter)
    assert limiter.limit == 64 and limiter.slow_start
    for _ in range(64):  # one round trip of the endpoint turning away half the calls
        limiter.release(limiter._epoch, "overload" if rng.random() < 0.5 else "ok")
        fill(limiter)
    assert limiter.limit <= 32 and not limiter.slow_start


def test_growth_stops_at_the_ceiling_and_only_while_the_limit_binds() -> None:
    limiter = AdaptiveLimiter(initial=8, ceiling=10)
    fill(limiter)
    for _ in range(3):
        round_trip(limiter)
    assert limiter.limit == 10
    idle = AdaptiveLimiter(initial=8, ceiling=100)
    for _ in range(20):
        idle.release(idle.take(), "ok")  # one call at a time never needs more than 8 slots
    assert idle.limit == 8
    assert not idle.release(idle.take(), "error") and idle.limit == 8  # other errors neither cut nor grow


@dataclass(eq=False)
class Endpoint:
    name: str
    limiter: AdaptiveLimiter = field(default_factory=lambda: AdaptiveLimiter(1, 1))
    strikes: int = 0
    resting_until: float = 0.0


def under_pushback(endpoint: Endpoint) -> Endpoint:
    """The endpoint has pushed back on every recent call, so the next pushback cuts its limit."""
    endpoint.limiter.pushback_share = 1.0
    return endpoint


def test_waiting_calls_are_served_first_come_first_served() -> None:
    async def main() -> list[int]:
        one = Endpoint("one")
        dispatcher = Dispatcher([one])
        first = await dispatcher.acquire()
        order: list[int] = []

        async def wait(i: int) -> None:
            endpoint, token = await dispatcher.acquire()
            order.append(i)
            dispatcher.release(endpoint, token, "ok")

        waiting = [asyncio.create_task(wait(i)) for i in range(5)]
        await asyncio.sleep(0)
        dispatcher.release(*first, "ok")
        await asyncio.gather(*waiting)
        return order

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]


def test_a_cancelled_waiter_leaks_no_slot() -> None:
    async def main() -> Endpoint:
        one = Endpoint("one")
        dispatcher = Dispatcher([one])
        held = await dispatcher.acquire()
        gone = asyncio.create_task(dispatcher.acquire())
        later = asyncio.create_task(dispatcher.acquire())
        await asyncio.sleep(0)
        gone.cancel()
        dispatcher.release(*held, "ok")
        endpoint, token = await later
        dispatcher.release(endpoint, token, "ok")
        return one

    assert asyncio.run(main()).limiter.inflight == 0


def test_a_slot_goes_to_an_awake_endpoint_and_a_retry_avoids_the_last_one() -> None:
    async def main() -> None:
        a, b = Endpoint("a", AdaptiveLimiter(2, 2)), Endpoint("b", AdaptiveLimiter(2, 2))
        dispatcher = Dispatcher([a, b])
        got = [(await dispatcher.acquire())[0].name for _ in range(2)]
        assert sorted(got) == ["a", "b"]  # ties take turns
        assert (await dispatcher.acquire(avoid=a))[0] is b
        endpoint, token = await dispatcher.acquire(avoid=b)  # only a has room: avoiding is a preference
        assert endpoint is a
        dispatcher.release(under_pushback(a), token, "overload")  # cut: a rests
        assert a.strikes == 1 and a.resting_until > time.monotonic()
        waiter = asyncio.create_task(dispatcher.acquire())
        await asyncio.sleep(0)
        assert not waiter.done()  # a has room but rests; b is busy: wait for b
        dispatcher.release(b, 0, "ok")
        assert (await waiter)[0] is b

    asyncio.run(main())


def test_a_single_endpoint_is_called_even_while_it_rests() -> None:
    async def main() -> None:
        one = under_pushback(Endpoint("one", AdaptiveLimiter(4, 4)))
        dispatcher = Dispatcher([one])
        dispatcher.release(*(await dispatcher.acquire()), "overload")
        assert one.resting_until > time.monotonic()
        assert (await asyncio.wait_for(dispatcher.acquire(), 1))[0] is one

    asyncio.run(main())


def test_minute_budget_allows_a_burst_then_paces_and_takes_refunds() -> None:
    async def main() -> None:
        budget = MinuteBudget(per_minute=600)  # 10 a second
        started = time.monotonic()
        await budget.take(600)
        assert time.monotonic() - started < 0.1
        await budget.take(3)
        assert 0.25 <= time.monotonic() - started < 1.0
        budget.refund(5)
        refunded = time.monotonic()
        await budget.take(5)
        assert time.monotonic() - refunded < 0.1
        small = MinuteBudget(per_minute=60)
        await asyncio.wait_for(small.take(10_000), 0.5)  # more than a minute's worth: one full minute
        assert small.level == pytest.approx(0, abs=0.1)

    asyncio.run(main())

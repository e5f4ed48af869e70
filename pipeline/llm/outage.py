"""Outages: endpoints that do not answer at all, as opposed to answering badly.

A call whose endpoint is unreachable (`Unreachable`) waits and asks again with the same request, so
an outage changes neither attempts nor seeds, and no item fails because of it. The board shared by
a run's clients records since when each endpoint has been down (for the log, the progress and
`safeset status`); a call that has waited longer than the run's outage limit raises
`EndpointOutage`, and the runner stops with the work pending.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from pipeline.llm.types import EndpointOutage, Unreachable

log = logging.getLogger(__name__)

DEFAULT_OUTAGE_LIMIT_S = 600.0  # how long a run waits for an unreachable endpoint before it stops
FIRST_WAIT_S = 0.25  # the wait before a call asks again; doubles per try up to MAX_WAIT_S
MAX_WAIT_S = 5.0


@dataclass
class Down:
    since: datetime  # wall clock, for people
    since_monotonic: float
    reason: str


class OutageBoard:
    def __init__(self, limit_s: float):
        self.limit_s = limit_s
        self.down: dict[str, Down] = {}

    def report_down(self, exc: Unreachable) -> None:
        if exc.endpoint not in self.down:
            self.down[exc.endpoint] = Down(datetime.now(UTC), time.monotonic(), exc.reason)
            log.warning(
                "endpoint %s unreachable since %s (%s); retrying, for at most %s",
                exc.endpoint,
                self.down[exc.endpoint].since.strftime("%H:%M:%S UTC"),
                exc.reason,
                _duration(self.limit_s),
            )

    def report_up(self, endpoint: str) -> None:
        down = self.down.pop(endpoint, None)
        if down is not None:
            seconds = time.monotonic() - down.since_monotonic
            log.warning("endpoint %s answers again after %s; continuing", endpoint, _duration(seconds))

    async def wait(self, exc: Unreachable, stuck_since: float, tries: int) -> None:
        """Wait before asking again, or raise `EndpointOutage` once the call has waited past the limit."""
        self.report_down(exc)
        waited = time.monotonic() - stuck_since
        if waited >= self.limit_s:
            since = (
                self.down[exc.endpoint].since.strftime("%H:%M:%S UTC") if exc.endpoint in self.down else "?"
            )
            raise EndpointOutage(
                f"endpoint {exc.endpoint} unreachable since {since} ({exc.reason}), longer than the "
                f"outage limit of {_duration(self.limit_s)}"
            )
        await asyncio.sleep(min(MAX_WAIT_S, FIRST_WAIT_S * 2**tries, self.limit_s - waited))

    def snapshot(self) -> list[dict[str, str]]:
        """The endpoints down now, as plain data for `safeset status`."""
        return [
            {"endpoint": name, "since": d.since.isoformat(timespec="seconds"), "reason": d.reason}
            for name, d in sorted(self.down.items())
        ]


def _duration(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f} min"

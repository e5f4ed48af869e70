"""GET /v1/runs/{id}/events: the run's progress as Server-Sent Events.

`event: progress` carries outcomes and records per stage and the queue state, sent when they change
(at most a few times a second); `event: end` comes once the run is no longer queued or running, and
the stream closes. A comment line every few seconds keeps proxies from closing an idle stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from pipeline.serve import reads
from pipeline.serve.service import Service

KEEPALIVE_S = 10.0
MIN_GAP_S = 0.25  # between two progress events


def _event(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data, default=str)}\n\n"


async def progress_events(service: Service, run_id: str) -> AsyncIterator[str]:
    last = None
    while True:
        changed = service.changes.event(run_id)  # taken before the read: no change slips between
        doc = await service.reader.call(lambda s: reads.progress(s, run_id))
        if doc != last:
            yield _event("progress", doc)
            last = doc
        if doc["state"] not in ("queued", "running"):
            yield _event("end", {"run": run_id, "state": doc["state"], "reason": doc["reason"]})
            return
        try:
            async with asyncio.timeout(KEEPALIVE_S):  # not wait_for, which can swallow a cancel on 3.11
                await changed.wait()
        except TimeoutError:
            yield ": keep-alive\n\n"
        await asyncio.sleep(MIN_GAP_S)

"""The parts of a running server, as the routes reach them (`request.app.state.service`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from pipeline.llm.backend_set import BackendSet
from pipeline.serve import reads
from pipeline.serve.exports import ExportJobs
from pipeline.serve.live import LiveStatus
from pipeline.serve.reads import Reader
from pipeline.serve.runs import Changes, RunWorkers
from pipeline.serve.settings import ServeSettings
from pipeline.store import Store
from pipeline.store.thread import StoreThread


@dataclass
class Service:
    settings: ServeSettings
    store: Store  # the writer: used only on `db`, its thread
    db: StoreThread
    reader: Reader
    backends: BackendSet
    changes: Changes
    workers: RunWorkers
    live: LiveStatus
    exports: ExportJobs

    async def run_id(self, given: str) -> str:
        """The run `given` names (exactly or by a unique prefix); 404 when none."""
        found = await self.reader.call(lambda s: reads.find_run(s, given)) if len(given) <= 128 else None
        if found is None:
            raise HTTPException(404, f"no run matches {given[:128]!r}; GET /v1/runs lists them")
        return found


def service(request: Request) -> Service:
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(service)]

"""The FastAPI application of `safeset serve`, and running it on uvicorn.

The database is opened by the caller (so a database in use, or one that cannot be migrated, is a
plain CLI error before anything listens); the lifespan starts the store thread, the readers, the run
workers (resuming runs a killed server left running) and the export jobs, and on shutdown stops the
runs at a transaction boundary. Every error is JSON (`{"error": ..., "problems": [...]}`), never a
traceback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline import __version__
from pipeline.llm.backend_set import BackendSet
from pipeline.llm.roles import redact_text
from pipeline.runner import Host
from pipeline.serve import info, routes_browse, routes_exports, routes_records, routes_runs, ui
from pipeline.serve.exports import ExportJobs
from pipeline.serve.live import LiveStatus
from pipeline.serve.reads import Reader
from pipeline.serve.runs import Changes, RunWorkers
from pipeline.serve.security import Guard
from pipeline.serve.service import Service
from pipeline.serve.settings import ServeSettings
from pipeline.store import Store
from pipeline.store.thread import StoreThread

log = logging.getLogger(__name__)


def create_app(settings: ServeSettings, store: Store) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.exports_dir.mkdir(parents=True, exist_ok=True)
        db = StoreThread(store)
        reader = Reader(db)
        await reader.start()
        backends, changes = BackendSet(across_models=True), Changes(asyncio.get_running_loop())
        live = LiveStatus(reader)
        await live.start()
        workers = RunWorkers(settings, store, db, Host(db, backends), changes, live)
        exports = ExportJobs(settings, db, reader)
        app.state.service = Service(settings, store, db, reader, backends, changes, workers, live, exports)
        await exports.start()
        await workers.start()
        info.publish(settings.db, settings.url)
        try:
            yield
        finally:
            info.withdraw(settings.db)
            await workers.shutdown()  # with the live status and the LLM backends, on the runs' loop
            await exports.shutdown()
            reader.close()
            db.shutdown()

    app = FastAPI(
        title="safeset",
        version=__version__,
        description="Generate LLM safety-alignment datasets: submit runs, follow them, read records, export.",
        openapi_url="/v1/openapi.json",
        docs_url="/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.add_middleware(Guard, token=settings.token, max_body=settings.max_body)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(Exception, _internal_error)
    for module in (routes_runs, routes_records, routes_exports, routes_browse):
        app.include_router(module.router)
    ui.mount(app)

    @app.get("/v1/health", tags=["health"])
    async def health() -> dict[str, str]:
        """Liveness, without the token: `{"status": "ok"}` and nothing else."""
        return {"status": "ok"}

    return app


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        problems.append(f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg", "invalid"))
    return JSONResponse({"error": "invalid request", "problems": problems}, status_code=422)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed: %s", request.method, request.url.path, redact_text(repr(exc)), exc_info=exc)
    return JSONResponse({"error": f"internal error ({type(exc).__name__}); see the server's log"}, 500)


def serve(settings: ServeSettings, store: Store, access_log: bool = False) -> None:
    """Listen until SIGINT/SIGTERM; runs in progress stop at a transaction boundary and resume at the
    next start."""
    import uvicorn

    config = uvicorn.Config(
        create_app(settings, store),
        host=settings.host,
        port=settings.port,
        log_config=None,  # through safeset's handler, which redacts URLs
        timeout_graceful_shutdown=5,  # event streams do not hold the shutdown up
        server_header=False,
        access_log=access_log,
    )
    uvicorn.Server(config).run()

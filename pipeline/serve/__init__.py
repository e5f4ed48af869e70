"""Service mode: `safeset serve`, one long-lived process that owns a DuckDB file and drives the runs
submitted to it over an HTTP API (/v1, OpenAPI at /v1/openapi.json).

    app.py        the FastAPI application: lifespan, routers, error handlers
    settings.py   where the server keeps its files, the token, limits
    security.py   bearer token, body size limit, loopback check
    submit.py     a submitted config -> a validated RunPlan (the CLI's loader and messages)
    runs.py       the run queue's workers: up to N runs at once on one event loop, resumed on restart,
                  on LLM backends shared by every run on one endpoint (pipeline/llm/backend_set.py)
    reads.py      read-only queries on cursors of their own: status, records, lineage, report
    exports.py    export jobs and their archives
    routes_*.py   the HTTP routes; sse.py the progress stream
    info.py       the file beside the database that tells the CLI a server holds it
    client.py     the CLI's side: talk to that server
"""

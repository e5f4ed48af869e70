-- Service mode (`safeset serve`): the runs submitted to the server, as a durable queue, so a restarted
-- server picks up the runs it was driving. The config is the text as submitted (YAML or JSON); the
-- server refuses configs with credentials in them, so it holds no secret.
CREATE TABLE serve_runs (
    run_id       VARCHAR PRIMARY KEY,  -- the run's id (runs table, once it has started)
    state        VARCHAR NOT NULL,     -- queued | running | finished | stopped | failed
    config       VARCHAR NOT NULL,     -- the submitted config text
    overrides    JSON NOT NULL,        -- {"endpoint", "model", "seed"} as submitted
    max_items    INTEGER,
    retry_failed BOOLEAN NOT NULL,
    reason       VARCHAR,              -- why it stopped or failed; work pending after it finished
    submitted_at TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL
);

-- Export jobs of the server: one export of one run, written to a folder under the server's data
-- folder and downloaded from there as an archive.
CREATE TABLE serve_exports (
    job_id     VARCHAR PRIMARY KEY,
    run_id     VARCHAR NOT NULL,
    state      VARCHAR NOT NULL,       -- queued | running | finished | failed
    options    JSON NOT NULL,          -- format, test_fraction, license, gated, push_to_hub, public
    reason     VARCHAR,
    manifest   JSON,                   -- the export's manifest once finished
    hub_url    VARCHAR,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

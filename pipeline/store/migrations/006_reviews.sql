-- Reviews by hand (the web UI of `safeset serve`): append-only, so the history is kept; the latest row
-- of a record counts (per reviewer for agreement between reviewers, over all reviewers for export).
CREATE TABLE reviews (
    review_id  BIGINT PRIMARY KEY,  -- increasing: orders the reviews
    record_id  VARCHAR NOT NULL,
    run_id     VARCHAR NOT NULL,
    reviewer   VARCHAR NOT NULL,
    decision   VARCHAR NOT NULL,    -- accept | reject | edit
    edits      JSON,                -- edit: {"instruction": ..., "response" | "chosen": ...}
    note       VARCHAR,
    created_at TIMESTAMP NOT NULL
);

"""Faults at scale: 10,000 items against a server where 20 % of calls go wrong (429, 500, timeouts,
malformed bodies, schema-breaking JSON). Nothing is lost, nothing duplicated, every failure is a row
with its reason, every injected fault is accounted for, and a retry without faults completes the
run with the first answers untouched. About three minutes on two busy cores (marked slow)."""

from __future__ import annotations

import re
import time

import pytest

from pipeline.config import validate_config
from pipeline.runner import Runner
from pipeline.stages import STAGES
from pipeline.store import Store
from tests.ops.helpers import ServerProcess
from tests.servers.chat_server import Faults, Latency

pytestmark = pytest.mark.slow

CATEGORIES = [f"S{i}" for i in range(1, 11)]
ITEMS = 10_000  # 10 categories x 1,000 slots
FAULTS = Faults(
    rate_429=0.05,
    rate_500=0.05,
    rate_timeout=0.03,  # the server answers after 2 s, the client gives up after 1 s
    rate_malformed=0.04,
    rate_schema_break=0.03,
    timeout_delay=2.0,
)
# One retry for transport faults and none for a schema break, so that some items fail each way.
REASONS = {
    "429": re.compile(r"^HTTP 429 after 2 attempt\(s\)$"),
    "500": re.compile(r"^HTTP 500 after 2 attempt\(s\)$"),
    "timeout": re.compile(r"^timeout after 2 attempt\(s\)$"),
    "malformed": re.compile(r"^(JSONDecodeError|ValueError): .* after 2 attempt\(s\)$"),
    "schema": re.compile(r"^answer broke the ScenarioAnswer schema 1 time\(s\); last: scenario: Field req"),
}


def config(url: str) -> dict:
    role = {
        "backend": "openai",
        "model": "scripted",
        "base_urls": [url],
        "max_retries": 1,
        "schema_retries": 0,
        "timeout_s": 1.0,  # well above the 10 ms answers even on a loaded machine
        "initial_concurrency": 64,
        "max_concurrency": 64,
    }
    return {
        "name": "faults",
        "seed": 2,
        "roles": {"default": role},
        "stages": {
            "domains": {"categories": CATEGORIES, "scenarios_per_category": ITEMS // len(CATEGORIES)},
            "scenarios": {"concurrency": 64, "refusal": None},  # faults only: no refusal check
        },
    }


def outcomes(store: Store, run_id: str) -> list[tuple[str, str, str | None, int, int]]:
    return store.con.execute(
        "SELECT d.id, p.status, p.reason, p.attempts, (SELECT count(*) FROM records s "
        "  WHERE s.stage = 'scenarios' AND s.parent_ids = [d.id]) "
        "FROM records d LEFT JOIN progress p ON p.item_id = d.id AND p.stage = 'scenarios' "
        "WHERE d.run_id = ? AND d.stage = 'domains'",
        [run_id],
    ).fetchall()


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory):
    db = tmp_path_factory.mktemp("faults") / "faults.duckdb"
    with ServerProcess(faults=FAULTS, latency=Latency(base=0.01)) as server:
        store = Store.open(db)
        try:
            started = time.monotonic()
            summary = Runner(validate_config(config(server.url), stages=STAGES), store, argv=["test"]).run()
            seconds = time.monotonic() - started
            stats = server.stats()
        finally:
            store.close()
    print(
        f"\n{ITEMS} items, 20 % faults: {seconds:.0f}s, {stats.requests} requests, {dict(stats.faults)}, "
        f"at most {stats.max_concurrent} in flight"
    )
    return db, summary, stats


def test_no_item_is_lost_or_duplicated(faulty_run):
    db, summary, _ = faulty_run
    store = Store.open(db, read_only=True)
    rows = outcomes(store, summary.run_id)
    store.close()
    assert len(rows) == ITEMS
    for item, status, _, _, outputs in rows:
        assert status in ("done", "failed"), f"{item} has no outcome"
        assert outputs == (1 if status == "done" else 0), f"{item} ({status}) has {outputs} scenarios"
    assert summary.counts["scenarios"]["done"] + summary.counts["scenarios"]["failed"] == ITEMS


def test_every_failure_is_a_row_with_its_reason(faulty_run):
    db, summary, stats = faulty_run
    store = Store.open(db, read_only=True)
    failed = [
        (reason, attempts)
        for _, status, reason, attempts, _ in outcomes(store, summary.run_id)
        if status == "failed"
    ]
    usage = store.usage(summary.run_id)
    store.close()
    kinds = {kind: 0 for kind in REASONS}
    for reason, attempts in failed:
        kind = next((k for k, pattern in REASONS.items() if pattern.match(reason or "")), None)
        assert kind is not None, f"unexpected failure reason {reason!r}"
        kinds[kind] += 1
        assert attempts == (1 if kind == "schema" else 0)  # answers spent (transport faults spend none)
    # Without retries, every schema-breaking answer fails its item, and only those do.
    assert kinds["schema"] == stats.faults["schema_break"] > 0.02 * ITEMS
    # Transport faults: a retry each, except the second fault of an item, which fails it.
    transport = sum(kinds[k] for k in ("429", "500", "timeout", "malformed"))
    injected = sum(stats.faults[k] for k in ("429", "500", "timeout", "malformed"))
    assert stats.requests == ITEMS + injected - transport
    assert all(kinds[k] > 0 for k in ("429", "500", "malformed"))  # timeouts: ~9 expected, may be 0
    assert sum(u["failed"] for u in usage) == len(failed)


def test_the_throttled_endpoint_still_finished_every_item(faulty_run):
    """The adaptive limit halves at each push-back, so with a fault in every few calls it stays low;
    what matters here is that it never stalls (the run finished; the figure goes to the report)."""
    _, summary, stats = faulty_run
    assert summary.status == "completed"
    assert 1 <= stats.max_concurrent <= 64


def test_retrying_the_failures_without_faults_completes_the_run_and_keeps_the_first_answers(
    faulty_run, tmp_path
):
    db, summary, _ = faulty_run
    copy = tmp_path / "retry.duckdb"
    copy.write_bytes(db.read_bytes())
    store = Store.open(copy)
    before = {r.id: r.data for r in store.records(summary.run_id, "scenarios")}
    try:
        with ServerProcess() as server:
            plan = validate_config(config(server.url), stages=STAGES)
            retried = Runner(plan, store, argv=["test"], retry_failed=True).run()
        assert retried.run_id == summary.run_id and retried.resumed
        rows = outcomes(store, summary.run_id)
        after = {r.id: r.data for r in store.records(summary.run_id, "scenarios")}
    finally:
        store.close()
    assert [status for _, status, *_ in rows].count("done") == ITEMS
    assert all(outputs == 1 for *_, outputs in rows)
    assert len(after) == ITEMS and before.items() <= after.items()

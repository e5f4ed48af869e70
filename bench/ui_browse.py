"""The web UI's dataset browser at scale: filtered pages of the store benchmark's run (1,000,000
records, bench/store_scale.py) with 2,000 reviews, as `GET /v1/runs/{id}/datasets/{d}/rows` reads them
(`Store.browse_page`: the page, the total and the counts per filter value), p50 and p95 per filter:
`new view` with the counts computed (the first page of a filter), `paging` with them kept (the next
pages of the same view, until a record or review is added).

The reference, measured in the same run on the same database: one plain scan of the dataset's rows
grouped by category (what the export's card counts), so the ratio says what the browser's filters,
counts and review join cost over the cheapest question one can ask of the dataset.

    python -m bench.ui_browse --keep /tmp/scale.duckdb            # builds it the first time
    python -m bench.ui_browse --records 100000 --keep /tmp/scale100k.duckdb
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from bench.store_scale import build
from pipeline.store import Store

REPEATS = 20
REVIEWS = 2_000


def views(categories: list[str]) -> dict[str, tuple[str, dict, int]]:
    """name -> (dataset, filters, offset)."""
    return {
        "first page": ("core", {}, 0),
        "category": ("core", {"category": categories[0]}, 0),
        "category, offset 5,000": ("core", {"category": categories[1]}, 5_000),
        "edge: tactic + text": ("edge", {"tactic": "past_tense", "q": "the"}, 0),
        "unreviewed": ("core", {"review": "unreviewed"}, 0),
        "rejected": ("core", {"review": "reject"}, 0),
        "judged + agreement": ("core", {"judged_category": categories[2], "agreement": "agree"}, 0),
        "text search": ("core", {"q": "harbour"}, 0),
    }


def timed(fn, before=lambda: None, repeats: int = REPEATS) -> list[float]:
    fn()  # warm
    out = []
    for _ in range(repeats):
        before()
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1]


def add_reviews(db: Path, run_id: str) -> None:
    store = Store.open(db)
    try:
        if store.browse_page(run_id, "core", {"review": "reject"}, 0, 1)["total"]:
            return
        ids = [r["id"] for r in store.browse_page(run_id, "core", {}, 0, REVIEWS)["items"]]
        for i, record_id in enumerate(ids):
            decision = ("accept", "reject", "edit")[i % 3]
            edits = {"response": "an edited answer"} if decision == "edit" else None
            store.add_review(record_id, reviewer=f"r{i % 2}", decision=decision, edits=edits)
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, required=True, help="the database (built here if missing)")
    args = parser.parse_args()
    if not args.keep.exists():
        started = time.perf_counter()
        build(args.keep, args.records)
        print(f"built in {time.perf_counter() - started:.0f}s", flush=True)
    store = Store.open(args.keep, read_only=True)
    run_id = store.resolve_run(None, with_records_in=("core",))
    store.close()
    add_reviews(args.keep, run_id)
    store = Store.open(args.keep, read_only=True)
    try:
        counts = store.output_counts(run_id)
        print(f"{sum(counts.values()):,} records ({counts['core']:,} core, {counts['edge']:,} edge), "
              f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
        query = store.dataset_query(run_id, "core", 0.0)
        reference = timed(lambda: store.dataset_counts(query))
        print(f"{'reference: one grouped scan of core':32} p50 {statistics.median(reference):7.1f} ms  "
              f"p95 {p95(reference):7.1f} ms")  # fmt: skip
        categories = sorted(store.browse_page(run_id, "core", {}, 0, 1)["counts"]["category"])
        new, paging = [], []
        print(f"{'':32} {'new view p50':>12} {'p95':>8} {'paging p50':>11} {'p95':>8}")
        for name, (dataset, filters, offset) in views(categories).items():
            page = lambda d=dataset, f=filters, o=offset: store.browse_page(run_id, d, f, o, 50)  # noqa: E731
            cold = timed(page, before=store._facets.clear)
            warm = timed(page)
            new += cold
            paging += warm
            total = page()["total"]
            ratio = p95(cold) / p95(reference)
            print(f"{name:32} {statistics.median(cold):9.1f} ms {p95(cold):5.1f} ms "
                  f"{statistics.median(warm):8.1f} ms {p95(warm):5.1f} ms  "
                  f"({total:,} rows; new view p95 {ratio:.1f}x the reference)")  # fmt: skip
        for name, samples in (("every new view", new), ("every page when paging", paging)):
            print(f"{name:32} p50 {statistics.median(samples):7.1f} ms  p95 {p95(samples):7.1f} ms")
    finally:
        store.close()


if __name__ == "__main__":
    main()

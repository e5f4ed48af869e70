"""Named queries of the web UI's dataset browser: a run's dataset as a page of rows under filters, with
counts per filter value, paged and filtered in DuckDB (never in Python), so a page costs one scan of
the dataset's records however large the run.

    store.browse_page(run_id, "core", {"category": "S1", "review": "unreviewed", "q": "bank"}, 0, 50)
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import duckdb

from pipeline.store.reviews import LATEST

# Filters of the browser: columns of the browsed rows compared with equality ('-' matches a null).
FILTERS = ("category", "judged_category", "agreement", "tactic", "persona_id", "review")
ROW_COLUMNS = ("seq", "id", "category", "judged_category", "agreement", "tactic", "persona_id", "review",
               "reviewer", "data")  # fmt: skip

_ROWS = f"""
    SELECT r.seq, r.id, r.category, r.judged_category,
           CASE WHEN r.judged_category IS NULL THEN 'unjudged'
                WHEN r.judged_category = r.category THEN 'agree' ELSE 'disagree' END AS agreement,
           r.tactic, r.persona_id, coalesce(v.decision, 'unreviewed') AS review, v.reviewer, r.data
    FROM records r LEFT JOIN {LATEST} v ON v.record_id = r.id
    WHERE r.run_id = ? AND r.stage = ?
"""
_SPECIAL = set("\\.^$|?*+()[]{}")
FACET_CACHE = 64  # views whose counts are kept
FACET_MAX = 100  # values counted per filter, the most frequent first (a run has thousands of personas)


def _filtered(filters: dict[str, str | None]) -> tuple[str, list[Any]]:
    """The browsed rows under the filters that are set (FILTERS and `q`), and their parameters."""
    where = [f"coalesce({name}, '-') = ?" for name in FILTERS if filters.get(name)]  # '-': none
    params: list[Any] = [filters[name] for name in FILTERS if filters.get(name)]
    if filters.get("q"):  # a case-blind regular expression matching the text literally: RE2 is fast
        where.append("regexp_matches(data, ?)")
        params.append("(?i)" + "".join(f"\\{c}" if c in _SPECIAL else c for c in filters["q"]))
    condition = " AND ".join(where) or "TRUE"
    return f"WITH browsed AS ({_ROWS}), filtered AS (SELECT * FROM browsed WHERE {condition})", params


class BrowseQueries:
    """Part of Store (see store.py). The counts of a view are kept (FACET_CACHE views) until the
    database gains a record or a review, so paging through a view computes them once."""

    con: duckdb.DuckDBPyConnection
    _facets: OrderedDict[tuple, tuple[int, dict[str, dict[str, int]]]]

    def browse_page(
        self, run_id: str, dataset: str, filters: dict[str, str | None], offset: int, limit: int
    ) -> dict[str, Any]:
        """Rows `offset`.. `offset + limit` (in commit order) of the run's `dataset` that pass `filters`
        (FILTERS and `q`, text anywhere in the record; None or empty: any), with `total` and `counts`:
        {filter: {value: rows}} over the filtered rows (the FACET_MAX most frequent values of each)."""
        filtered, params = _filtered(filters)
        params = [run_id, dataset, *params]
        # The page's ids first, then its rows by id: neither the sort nor the scan carries the texts.
        ids = [i for (i,) in self.con.execute(
            f"{filtered} SELECT id FROM filtered ORDER BY seq LIMIT ? OFFSET ?", [*params, limit, offset]
        ).fetchall()]  # fmt: skip
        rows = self.con.execute(
            f"SELECT {', '.join(ROW_COLUMNS)} FROM ({_ROWS}) WHERE id IN (SELECT unnest(?::VARCHAR[])) "
            "ORDER BY seq",
            [run_id, dataset, ids],
        ).fetchall()
        total, counts = self._counts(filtered, params)
        items = []
        for row in rows:
            item = dict(zip(ROW_COLUMNS, row, strict=True))
            item["data"] = json.loads(item["data"])
            items.append(item)
        return {"total": total, "counts": counts, "items": items}

    def _counts(self, filtered: str, params: list[Any]) -> tuple[int, dict[str, dict[str, int]]]:
        """(rows, {filter: {value: rows}}) of a view, from the cache while the database is unchanged."""
        if not hasattr(self, "_facets"):
            self._facets = OrderedDict()
        version = self.con.execute(
            "SELECT (SELECT max(seq) FROM records), (SELECT max(review_id) FROM reviews)"
        ).fetchone()
        key = (filtered, tuple(params), version)
        if key in self._facets:
            self._facets.move_to_end(key)
            return self._facets[key]
        sets = ", ".join(f"({name})" for name in FILTERS)
        groups = ", ".join(f"GROUPING({name})" for name in FILTERS)
        grouped = self.con.execute(
            f"{filtered} SELECT * FROM (SELECT {', '.join(FILTERS)}, [{groups}] AS grouping, count(*) AS n "
            f"FROM filtered GROUP BY GROUPING SETS ({sets}, ())) "
            "QUALIFY row_number() OVER (PARTITION BY grouping ORDER BY n DESC) <= ?",
            [*params, FACET_MAX],
        ).fetchall()
        counts: dict[str, dict[str, int]] = {name: {} for name in FILTERS}
        total = 0
        for *values, grouping, n in grouped:
            if all(grouping):
                total = n
                continue
            name = FILTERS[grouping.index(0)]
            counts[name][values[FILTERS.index(name)] or "-"] = n
        self._facets[key] = (total, counts)
        if len(self._facets) > FACET_CACHE:
            self._facets.popitem(last=False)
        return total, counts

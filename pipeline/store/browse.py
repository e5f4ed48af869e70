"""Named queries of the web UI's dataset browser: a run's dataset as a page of rows under filters, with
counts per filter value, paged and filtered in DuckDB (never in Python), so a page costs one scan of
the dataset's records however large the run.

    store.browse_page(run_id, "core", {"category": "S1", "review": "unreviewed", "q": "bank"}, 0, 50)
"""

from __future__ import annotations

import json
from typing import Any

import duckdb

from pipeline.store.reviews import LATEST

# Filters of the browser: name -> the column of the browsed rows it compares with equality.
FILTERS = ("category", "judged_category", "agreement", "tactic", "persona_id", "review")
ROW_COLUMNS = ("seq", "id", "category", "judged_category", "agreement", "tactic", "persona_id", "review",
               "reviewer", "data")  # fmt: skip

_ROWS = f"""
    SELECT r.seq, r.id, r.category, json_extract_string(r.data, '$.judged_category') AS judged_category,
           CASE WHEN judged_category IS NULL THEN 'unjudged'
                WHEN judged_category = r.category THEN 'agree' ELSE 'disagree' END AS agreement,
           r.tactic, r.persona_id, coalesce(v.decision, 'unreviewed') AS review, v.reviewer, r.data
    FROM records r LEFT JOIN {LATEST} v ON v.record_id = r.id
    WHERE r.run_id = ? AND r.stage = ?
"""
_WHERE = " AND ".join(f"(?::VARCHAR IS NULL OR {name} = ?)" for name in FILTERS)
_FILTERED = (
    f"WITH browsed AS ({_ROWS}), filtered AS (SELECT * FROM browsed WHERE {_WHERE} "
    "AND (?::VARCHAR IS NULL OR contains(lower(CAST(data AS VARCHAR)), lower(?))))"
)


class BrowseQueries:
    """Part of Store (see store.py)."""

    con: duckdb.DuckDBPyConnection

    def browse_page(
        self, run_id: str, dataset: str, filters: dict[str, str | None], offset: int, limit: int
    ) -> dict[str, Any]:
        """Rows `offset`.. `offset + limit` (in commit order) of the run's `dataset` that pass `filters`
        (FILTERS and `q`, text anywhere in the record; None: any), with `total` and `counts`: {filter:
        {value: rows}} over the filtered rows."""
        params: list[Any] = [run_id, dataset]
        for name in FILTERS:
            params += [filters.get(name), filters.get(name)]
        params += [filters.get("q"), filters.get("q")]
        rows = self.con.execute(
            f"{_FILTERED} SELECT {', '.join(ROW_COLUMNS)} FROM filtered ORDER BY seq LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ).fetchall()
        sets = ", ".join(f"({name})" for name in FILTERS)
        groups = ", ".join(f"GROUPING({name})" for name in FILTERS)
        grouped = self.con.execute(
            f"{_FILTERED} SELECT {', '.join(FILTERS)}, [{groups}], count(*) FROM filtered "
            f"GROUP BY GROUPING SETS ({sets}, ())",
            params,
        ).fetchall()
        counts: dict[str, dict[str, int]] = {name: {} for name in FILTERS}
        total = 0
        for row in grouped:
            *values, grouping, n = row
            if all(grouping):
                total = n
                continue
            name = FILTERS[grouping.index(0)]
            counts[name][values[FILTERS.index(name)] or "-"] = n
        items = []
        for row in rows:
            item = dict(zip(ROW_COLUMNS, row, strict=True))
            item["data"] = json.loads(item["data"])
            items.append(item)
        return {"total": total, "counts": counts, "items": items}

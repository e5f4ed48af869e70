"""Named queries over a run's records and progress that stages, `safeset status`, the report and the
dataset card read: coverage cells, texts kept so far, generator refusals, search curves and lineage.
Each returns rows; what they mean (shares, advice, curves) is computed by the caller."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import duckdb
import pyarrow as pa

CELL_COLUMNS = ("category", "tactic")


class RunQueries:
    """Part of Store (see store.py)."""

    con: duckdb.DuckDBPyConnection
    _arrow_batches: Callable[[str, list, int], Iterator[pa.RecordBatch]]

    def cell_counts(self, run_id: str, stage: str, column: str) -> dict[str, int]:
        """Records of `stage` per value of a lineage column (category or tactic)."""
        if column not in CELL_COLUMNS:
            raise ValueError(f"cells are counted by {' or '.join(CELL_COLUMNS)}, not {column!r}")
        rows = self.con.execute(
            f"SELECT {column}, count(*) FROM records WHERE run_id = ? AND stage = ? GROUP BY 1",
            [run_id, stage],
        ).fetchall()
        return {key: n for key, n in rows if key is not None}

    def kept_texts(
        self, stage: str, field: str, run_id: str, across_runs: bool
    ) -> list[tuple[str, str, str]]:
        """(run, category, the data's `field`) of the records of `stage` in commit order: of this run,
        and of every run when `across_runs`."""
        return self.con.execute(
            "SELECT run_id, category, json_extract_string(data, ?) FROM records "
            "WHERE stage = ? AND (run_id = ? OR ?) ORDER BY seq",
            [f"$.{field}", stage, run_id, across_runs],
        ).fetchall()

    def text_batches(self, run_id: str, stage: str, field: str) -> Iterator[pa.RecordBatch]:
        """The records of `stage` in commit order as Arrow batches of `text` (the data's `field`),
        `category` (the judged one, else the intended one) and `tactic`."""
        sql = """
            SELECT json_extract_string(data, ?) AS text,
                   coalesce(judged_category, category) AS category,
                   coalesce(tactic, json_extract_string(data, '$.tactic')) AS tactic
            FROM records WHERE run_id = ? AND stage = ? ORDER BY seq
        """
        return self._arrow_batches(sql, [f"$.{field}", run_id, stage], 10_000)

    def text_counts(self, run_id: str, stage: str, field: str) -> tuple[int, int]:
        """(records of `stage` whose data's `field` is a non-empty text, records without one)."""
        with_text, total = self.con.execute(
            "SELECT count(*) FILTER (WHERE coalesce(json_extract_string(data, ?), '') <> ''), count(*) "
            "FROM records WHERE run_id = ? AND stage = ?",
            [f"$.{field}", run_id, stage],
        ).fetchone()
        return with_text, total - with_text

    def refusal_counts(
        self, run_id: str, refusals: str, checked: Sequence[str]
    ) -> list[tuple[str, int, int]]:
        """(intended category or '-', records of the `refusals` pseudo-stage, records of it and the
        `checked` stages together) over the records a prompt wrote."""
        stages = [refusals, *checked]
        return self.con.execute(
            "SELECT coalesce(category, '-'), count(*) FILTER (WHERE stage = ?), count(*) "
            "FROM records WHERE run_id = ? AND prompt_name IS NOT NULL "
            f"AND stage IN ({', '.join('?' * len(stages))}) GROUP BY ALL",
            [refusals, run_id, *stages],
        ).fetchall()

    def dropped_counts(self, run_id: str, stage: str, reason_prefix: str) -> dict[str, int]:
        """{intended category or '-': items} that `stage` dropped with a reason starting `reason_prefix`."""
        return dict(
            self.con.execute(
                """
                SELECT coalesce(r.category, '-'), count(*) FROM progress p JOIN records r ON r.id = p.item_id
                WHERE p.run_id = ? AND p.stage = ? AND p.status = 'dropped' AND starts_with(p.reason, ?)
                GROUP BY ALL
                """,
                [run_id, stage, reason_prefix],
            ).fetchall()
        )

    def search_steps(self, run_id: str) -> list[tuple[str, int, float, float, float | None, int]]:
        """(stage, iteration, mean fitness, best fitness, mean refusal rate, records) over the records
        whose data has a numeric `iteration` and `fitness`, by stage and iteration."""
        return self.con.execute(
            """
            WITH scored AS (
                SELECT stage,
                       TRY_CAST(json_extract_string(data, '$.iteration') AS INTEGER) AS iteration,
                       TRY_CAST(json_extract_string(data, '$.fitness') AS DOUBLE) AS fitness,
                       TRY_CAST(json_extract_string(data, '$.refusal_rate') AS DOUBLE) AS refusal_rate
                FROM records WHERE run_id = ?
            )
            SELECT stage, iteration, avg(fitness), max(fitness), avg(refusal_rate), count(*)
            FROM scored WHERE iteration IS NOT NULL AND fitness IS NOT NULL
            GROUP BY stage, iteration ORDER BY stage, iteration
            """,
            [run_id],
        ).fetchall()

    def run_models(self, run_id: str) -> set[str]:
        """The models that wrote records of the run."""
        rows = self.con.execute(
            "SELECT DISTINCT model FROM records WHERE run_id = ? AND model IS NOT NULL", [run_id]
        ).fetchall()
        return {model for (model,) in rows}

    def lineage_counts(self, run_id: str) -> list[tuple[str, Any, Any, Any, int]]:
        """(stage, prompt, prompt version, model, records) of the run's records made by a prompt or a
        model, in no particular order."""
        return self.con.execute(
            "SELECT stage, prompt_name, prompt_version, model, count(*) FROM records "
            "WHERE run_id = ? AND (prompt_name IS NOT NULL OR model IS NOT NULL) GROUP BY ALL",
            [run_id],
        ).fetchall()

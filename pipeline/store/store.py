"""The DuckDB store: dataset, lineage, LLM call cache and durable work queue in one file.

A Store wraps one DuckDB connection and is used from one thread at a time (the runner gives it a
thread of its own). Every write goes through `transaction`: the runner's batches through `commit`, one
transaction per batch, in Arrow tables; results (eval metrics, judge agreement, scorecards) through one
named save each. All SQL lives in this package: the named queries by topic are in `dataset_rows.py`
(delivered datasets), `results.py` (eval, judge and scorecard results), `reviews.py` (reviews by
hand), `browse.py` (the web UI's pages) and `run_queries.py` (what status, reports and stages read of
a run), mixed into Store.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipeline.records import Record
from pipeline.store import migrations
from pipeline.store.browse import BrowseQueries
from pipeline.store.cache_keys import CacheKeys
from pipeline.store.dataset_rows import DatasetQueries
from pipeline.store.results import ResultQueries
from pipeline.store.reviews import ReviewQueries
from pipeline.store.rows import (
    RECORD_COLUMNS,
    CacheEntry,
    CommitBatch,
    ProgressRow,
    UsageDelta,
    dataclass_table,
    records_table,
    utc_now,
)
from pipeline.store.run_queries import RunQueries
from pipeline.store.serve_reads import ServeQueries


class StoreError(Exception):
    """A database that cannot be used; the message says why and what to do."""


class DatabaseInUse(StoreError):
    def __init__(self, path: Path, pid: int | None):
        self.pid = pid
        who = f"pid {pid}" if pid else "another process"
        super().__init__(
            f"database {path} is in use by {who}; wait for that run to finish (or stop it), "
            "or pass another --db"
        )


# Writes the disk refused, not errors in the data: the user can make room (or move the database) and
# run the same command again, since a failed transaction leaves nothing behind.
_DISK_FAILURES = (
    "No space left on device",
    "Disk quota exceeded",
    "File too large",
    "Read-only file system",
    "Permission denied",
)


def _disk_error(path: Path, exc: duckdb.Error) -> StoreError | None:
    reason = next((r for r in _DISK_FAILURES if r in str(exc)), None)
    if reason is None:
        return None
    return StoreError(
        f"cannot write {path}: {reason.lower()}. The last transaction was rolled back and the database "
        "is intact; make room (or move it elsewhere) and run the same command again to continue"
    )


@contextlib.contextmanager
def _disk_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except duckdb.Error as exc:
        error = _disk_error(path, exc)
        if error is None:
            raise
        raise error from None


def _record_from_row(row: tuple) -> Record:
    values = dict(zip(RECORD_COLUMNS, row, strict=True))
    values["parent_ids"] = tuple(values["parent_ids"])
    values["data"] = json.loads(values["data"])
    return Record(**values)


_RECORD_SELECT = ", ".join(RECORD_COLUMNS)
# Cache lookups of up to this many keys probe the key's index (0.4 ms for a few keys at 2,000,000
# cached calls, where a join with the table took 2.7 ms and grows with it); longer lists are joined.
_KEYS_PROBED = 512
_R_RECORD_SELECT = ", ".join(f"r.{c}" for c in RECORD_COLUMNS)


class Store(BrowseQueries, DatasetQueries, ResultQueries, ReviewQueries, RunQueries, ServeQueries):
    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path, read_only: bool):
        self.con = con
        self.path = path
        self.read_only = read_only
        self._cache_keys: CacheKeys | None = None  # the LLM cache's keys, once tracked (track_cache_keys)
        self._next_seq = 1 + (con.execute("SELECT coalesce(max(seq), 0) FROM records").fetchone()[0])

    # ---- opening -------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, read_only: bool = False) -> Store:
        path = Path(path)
        if read_only and not cls.exists(path):
            raise StoreError(f"no database at {path}; run `safeset run CONFIG --db {path}` first")
        if not read_only:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the folder for {path}: {exc.strerror}") from exc
        try:
            # Never fetch an extension: a SQLite file given as --db must not send DuckDB to the network.
            con = duckdb.connect(
                str(path), read_only=read_only, config={"autoinstall_known_extensions": False}
            )
        except duckdb.IOException as exc:
            raise _explain_open_error(path, exc) from exc
        except duckdb.Error as exc:
            raise StoreError(f"cannot open {path} as a DuckDB database: {exc}") from exc
        try:
            if read_only:
                if migrations.pending(con):
                    raise StoreError(
                        f"{path} has an older schema; open it once for writing (safeset run) to migrate"
                    )
            else:
                with _disk_errors(path):
                    migrations.migrate(con)
        except RuntimeError as exc:
            con.close()
            raise StoreError(f"{path}: {exc}") from exc
        except StoreError:
            con.close()
            raise
        return cls(con, path, read_only)

    def reader(self) -> Store:
        """A read-only Store on a cursor of this connection: its own transactions, committed data only
        (for a thread that reads while another writes)."""
        return Store(self.con.cursor(), self.path, read_only=True)

    def close(self) -> None:
        self.con.close()

    @staticmethod
    def exists(path: str | Path) -> bool:
        """Whether a database file is there; StoreError when its folder cannot even be searched."""
        try:
            return Path(path).exists()
        except OSError as exc:
            raise StoreError(
                f"cannot reach {path}: {exc.strerror}; pass a --db in a folder you can read and write"
            ) from None

    # ---- runs and sessions ---------------------------------------------------------------------

    def ensure_run(
        self, run_id: str, name: str, config: dict, seed: int, config_path: str | None, version: str
    ) -> bool:
        """Record the run if it is new; returns True when it already existed (a resume)."""
        with self.transaction():
            exists = self.con.execute("SELECT 1 FROM runs WHERE run_id = ?", [run_id]).fetchone()
            if not exists:
                self.con.execute(
                    "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [run_id, name, config_path, json.dumps(config, sort_keys=True), seed, version, utc_now()],
                )
        return bool(exists)

    def start_session(self, run_id: str, pid: int, argv: list[str]) -> int:
        # A session still marked running was ended by a crash or kill -9 of its process.
        with self.transaction():
            self.con.execute(
                "UPDATE sessions SET status = 'crashed' WHERE run_id = ? AND status = 'running'", [run_id]
            )
            session = self.con.execute(
                "SELECT coalesce(max(session), 0) + 1 FROM sessions WHERE run_id = ?", [run_id]
            ).fetchone()[0]
            self.con.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, NULL, 'running')",
                [run_id, session, pid, json.dumps(argv), utc_now()],
            )
        return session

    def end_session(self, run_id: str, session: int, status: str) -> None:
        with self.transaction():
            self.con.execute(
                "UPDATE sessions SET status = ?, ended_at = ? WHERE run_id = ? AND session = ?",
                [status, utc_now(), run_id, session],
            )

    def runs(self) -> list[dict[str, Any]]:
        rows = self.con.execute(
            """
            SELECT r.run_id, r.name, r.seed, r.created_at, r.config_path,
                   (SELECT count(*) FROM sessions s WHERE s.run_id = r.run_id) AS sessions,
                   (SELECT s.status FROM sessions s WHERE s.run_id = r.run_id
                     ORDER BY s.session DESC LIMIT 1) AS last_status,
                   (SELECT count(*) FROM records x WHERE x.run_id = r.run_id) AS records
            FROM runs r ORDER BY r.created_at
            """
        ).fetchall()
        names = ("run_id", "name", "seed", "created_at", "config_path", "sessions", "status", "records")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def run_ids(self) -> list[str]:
        return [r for (r,) in self.con.execute("SELECT run_id FROM runs ORDER BY created_at").fetchall()]

    def run_config(self, run_id: str) -> dict[str, Any] | None:
        row = self.con.execute("SELECT config FROM runs WHERE run_id = ?", [run_id]).fetchone()
        return json.loads(row[0]) if row else None

    def resolve_run(self, run_id: str | None, *, with_records_in: tuple[str, ...] = ()) -> str:
        """The run named (exactly, or by a unique prefix), or the most recent one; with
        `with_records_in`, the most recent one holding records of those stages (so an eval or judge
        run made after a generation run does not hide it from export, score and report)."""
        if run_id:
            rows = self.con.execute(
                "SELECT run_id FROM runs WHERE starts_with(run_id, ?) ORDER BY run_id <> ?", [run_id, run_id]
            ).fetchall()
            if rows and rows[0][0] == run_id:
                return run_id
            if len(rows) != 1:
                found = "no run" if not rows else f"{len(rows)} runs"
                raise StoreError(f"{found} matches {run_id!r} in {self.path}; see `safeset runs`")
            return rows[0][0]
        row = None
        if with_records_in:
            row = self.con.execute(
                "SELECT run_id FROM runs r WHERE EXISTS (SELECT 1 FROM records WHERE run_id = r.run_id "
                "AND list_contains(?, stage)) ORDER BY created_at DESC LIMIT 1",
                [list(with_records_in)],
            ).fetchone()
        row = row or self.con.execute("SELECT run_id FROM runs ORDER BY created_at DESC LIMIT 1").fetchone()
        if not row:
            raise StoreError(f"{self.path} holds no run yet")
        return row[0]

    # ---- writing -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes that land together or not at all: the one way a write reaches the database. A disk
        that refuses them (full, read-only) is a StoreError that says what to do."""
        with _disk_errors(self.path):
            self.con.execute("BEGIN TRANSACTION")
            try:
                yield
                self.con.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(duckdb.TransactionException):  # a failed COMMIT rolled back itself
                    self.con.execute("ROLLBACK")
                self.con.unregister("_batch")  # an insert that failed left its rows registered
                raise

    def commit(self, batch: CommitBatch) -> None:
        """Write one batch in one transaction: records, progress markers, cache entries, usage.

        Records and cache entries are new almost always, and a plain insert is several times cheaper
        than one that checks for conflicts; when some already exist (a source re-planned on resume),
        the transaction is rolled back and written again, skipping them."""
        try:
            self._commit(batch, skip_existing=False)
        except duckdb.ConstraintException:
            self._commit(batch, skip_existing=True)
        self._next_seq += len(batch.records)

    def _commit(self, batch: CommitBatch, skip_existing: bool) -> None:
        skip = "ON CONFLICT DO NOTHING" if skip_existing else ""
        if batch.cache and self._cache_keys is not None:  # before: a lookup may come while it commits
            self._cache_keys.add(entry.key for entry in batch.cache)
        with self.transaction():
            if batch.cache:
                self._insert("llm_cache", dataclass_table(batch.cache, CacheEntry), skip)
            if batch.records:
                unique: dict[str, Record] = {}
                for record in batch.records:  # the same content twice in one batch is one row
                    unique.setdefault(record.id, record)
                self._insert("records", records_table(list(unique.values()), self._next_seq), skip)
            if batch.progress:
                table = dataclass_table(batch.progress, ProgressRow)
                table = table.append_column("updated_at", pa.array([utc_now()] * len(table)))
                # Only a retried failure may be overwritten; anything else finishing twice is a bug.
                self._insert(
                    "progress",
                    table,
                    """ON CONFLICT DO UPDATE SET status = excluded.status,
                    reason = excluded.reason, attempts = excluded.attempts,
                    n_outputs = excluded.n_outputs, updated_at = excluded.updated_at
                    WHERE progress.status = 'failed'""",
                )
            if batch.usage:
                self._insert(
                    "llm_usage",
                    dataclass_table(batch.usage, UsageDelta),
                    """ON CONFLICT DO UPDATE SET calls = calls + excluded.calls,
                    cached = cached + excluded.cached, failed = failed + excluded.failed,
                    prompt_tokens = prompt_tokens + excluded.prompt_tokens,
                    completion_tokens = completion_tokens + excluded.completion_tokens,
                    cost_usd = cost_usd + excluded.cost_usd""",
                )

    def _insert(self, table: str, arrow: pa.Table, conflict: str) -> None:
        """Insert an Arrow table's rows, inside `transaction` (which unregisters them if this fails:
        an aborted transaction cannot)."""
        columns = ", ".join(arrow.column_names)
        self.con.register("_batch", arrow)
        self.con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM _batch {conflict}")
        self.con.unregister("_batch")

    # ---- the work queue ------------------------------------------------------------------------

    def pending(
        self,
        run_id: str,
        stage: str,
        inputs: Iterable[str],
        after_seq: int,
        limit: int,
        retry_failed: bool = False,
    ) -> list[tuple[Record, int]]:
        """Records of the `inputs` stages that `stage` has not finished, in commit order, each with the
        LLM attempts already spent on it (non-zero only for failed items, included with
        `retry_failed`)."""
        skip = "p.status <> 'failed'" if retry_failed else "TRUE"
        rows = self.con.execute(
            f"""
            SELECT {_R_RECORD_SELECT}, coalesce(p.attempts, 0) FROM records r
            LEFT JOIN progress p ON p.run_id = r.run_id AND p.stage = ? AND p.item_id = r.id
            WHERE r.run_id = ? AND r.stage IN (SELECT unnest(?::VARCHAR[])) AND r.seq > ?
              AND (p.item_id IS NULL OR NOT ({skip}))
            ORDER BY r.seq LIMIT ?
            """,
            [stage, run_id, list(inputs), after_seq, limit],
        ).fetchall()
        return [(_record_from_row(row[:-1]), row[-1]) for row in rows]

    def count_pending(self, run_id: str, stage: str, inputs: Iterable[str]) -> int:
        return self.con.execute(
            """
            SELECT count(*) FROM records r
            WHERE r.run_id = ? AND r.stage IN (SELECT unnest(?::VARCHAR[]))
              AND NOT EXISTS (SELECT 1 FROM progress p
                              WHERE p.run_id = r.run_id AND p.stage = ? AND p.item_id = r.id)
            """,
            [run_id, list(inputs), stage],
        ).fetchone()[0]

    def progress_counts(self, run_id: str) -> dict[str, dict[str, int]]:
        """{stage: {status: count}} over the progress markers of a run."""
        counts: dict[str, dict[str, int]] = {}
        for stage, status, n in self.con.execute(
            "SELECT stage, status, count(*) FROM progress WHERE run_id = ? GROUP BY ALL", [run_id]
        ).fetchall():
            counts.setdefault(stage, {})[status] = n
        return counts

    def output_counts(self, run_id: str) -> dict[str, int]:
        return dict(
            self.con.execute(
                "SELECT stage, count(*) FROM records WHERE run_id = ? GROUP BY stage", [run_id]
            ).fetchall()
        )

    # ---- reading records -----------------------------------------------------------------------

    def records(self, run_id: str, stage: str) -> list[Record]:
        rows = self.con.execute(
            f"SELECT {_RECORD_SELECT} FROM records WHERE run_id = ? AND stage = ? ORDER BY seq",
            [run_id, stage],
        ).fetchall()
        return [_record_from_row(row) for row in rows]

    def _arrow_batches(self, sql: str, params: list, batch_size: int) -> Iterator[pa.RecordBatch]:
        """Stream a query's result as Arrow batches, so memory stays flat for any size. It runs on a
        cursor of its own, so the store stays usable while the batches are read."""
        cursor = self.con.cursor()
        try:
            yield from cursor.sql(sql, params=params).to_arrow_reader(batch_size)
        finally:
            cursor.close()

    def get(self, record_id: str) -> Record | None:
        rows = self.con.execute(
            f"SELECT {_RECORD_SELECT} FROM records WHERE starts_with(id, ?) LIMIT 2", [record_id]
        ).fetchall()
        if len(rows) > 1:
            raise StoreError(f"{record_id!r} matches several records; give more of the id")
        return _record_from_row(rows[0]) if rows else None

    def children(self, record_id: str) -> list[Record]:
        rows = self.con.execute(
            f"SELECT {_RECORD_SELECT} FROM records WHERE list_contains(parent_ids, ?) ORDER BY seq",
            [record_id],
        ).fetchall()
        return [_record_from_row(row) for row in rows]

    def item_progress(self, record_id: str) -> list[dict[str, Any]]:
        rows = self.con.execute(
            "SELECT stage, status, reason, attempts FROM progress WHERE item_id = ? ORDER BY stage",
            [record_id],
        ).fetchall()
        return [dict(zip(("stage", "status", "reason", "attempts"), r, strict=True)) for r in rows]

    def failure_reasons(self, run_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """Failed items grouped by stage and reason, most frequent first."""
        rows = self.con.execute(
            "SELECT stage, reason, count(*) AS n FROM failures WHERE run_id = ? "
            "GROUP BY stage, reason ORDER BY n DESC, stage LIMIT ?",
            [run_id, limit],
        ).fetchall()
        return [{"stage": stage, "reason": reason, "count": n} for stage, reason, n in rows]

    # ---- the LLM cache -------------------------------------------------------------------------

    def track_cache_keys(self) -> None:
        """From now on know in memory which keys the LLM cache holds, so that `may_cache` answers
        without a query: every key is read once here (0.4 s a million), and each one committed later
        is added. Call it on the thread that commits, so that no commit is under way meanwhile."""
        if self._cache_keys is not None:
            return
        keys = CacheKeys()
        for batch in self._arrow_batches("SELECT key FROM llm_cache", [], 100_000):
            keys.add(batch.column(0).to_pylist())
        self._cache_keys = keys

    def may_cache(self, key: str) -> bool:
        """False when `key` is surely not in the LLM cache (known in memory, no query); True when it
        may be, or when the keys are not tracked (cache_get says)."""
        return self._cache_keys is None or self._cache_keys.may_hold(key)

    def cache_get(self, keys: list[str]) -> dict[str, tuple[str, int, int]]:
        """{key: (response JSON, prompt tokens, completion tokens)} for the keys that are cached."""
        if not keys:
            return {}
        columns = "SELECT key, response, prompt_tokens, completion_tokens FROM llm_cache"
        if len(keys) <= _KEYS_PROBED:  # a list of constants is looked up in the key's index
            rows = self.con.execute(f"{columns} WHERE key IN ({', '.join('?' * len(keys))})", keys)
        else:  # a join with the list reads the whole table, once: cheaper than so many probes
            rows = self.con.execute(f"{columns} WHERE key IN (SELECT unnest(?::VARCHAR[]))", [keys])
        return {key: (response, p, c) for key, response, p, c in rows.fetchall()}

    def cache_entry(self, key: str) -> dict[str, Any] | None:
        row = self.con.execute(
            "SELECT key, model, request, response, prompt_tokens, completion_tokens, latency_s, endpoint "
            "FROM llm_cache WHERE key = ?",
            [key],
        ).fetchone()
        if not row:
            return None
        names = ("key", "model", "request", "response", "prompt_tokens", "completion_tokens",
                 "latency_s", "endpoint")  # fmt: skip
        entry = dict(zip(names, row, strict=True))
        entry["request"] = json.loads(entry["request"])
        entry["response"] = json.loads(entry["response"])
        return entry

    def usage(self, run_id: str) -> list[dict[str, Any]]:
        names = ("stage", "model", "calls", "cached", "failed", "prompt_tokens", "completion_tokens",
                 "cost_usd")  # fmt: skip
        rows = self.con.execute(
            f"SELECT {', '.join(names)} FROM llm_usage WHERE run_id = ? ORDER BY stage, model", [run_id]
        ).fetchall()
        return [dict(zip(names, r, strict=True)) for r in rows]


def _explain_open_error(path: Path, exc: duckdb.IOException) -> StoreError:
    text = str(exc)
    if "Could not set lock" in text or "Conflicting lock" in text:
        match = re.search(r"PID (\d+)", text)
        return DatabaseInUse(path, int(match[1]) if match else None)
    if "not a valid DuckDB database" in text or "sqlite" in text:
        return StoreError(f"{path} exists but is not a DuckDB database; pass another --db")
    if "Read-only file system" in text or "Permission denied" in text:
        return StoreError(f"cannot write {path}: {text.split(':', 1)[-1].strip()}; pass a writable --db")
    return StoreError(f"cannot open {path}: {text}")

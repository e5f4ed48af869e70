"""What one writer transaction carries, and the Arrow shapes it is written in."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from pipeline.records import Record, canonical_json


def utc_now() -> datetime:
    """The time a row is written: UTC, without a zone (the TIMESTAMP columns hold UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True, slots=True)
class ProgressRow:
    """The outcome of one input item at one stage: done, dropped (with a reason) or failed."""

    run_id: str
    stage: str
    item_id: str
    status: str
    n_outputs: int
    reason: str | None = None
    attempts: int = 1


@dataclass(frozen=True, slots=True)
class CacheEntry:
    key: str
    model: str
    request: str  # canonical JSON
    response: str  # canonical JSON
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    endpoint: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class UsageDelta:
    run_id: str
    stage: str
    model: str
    calls: int = 0
    cached: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


@dataclass
class CommitBatch:
    records: list[Record] = field(default_factory=list)
    progress: list[ProgressRow] = field(default_factory=list)
    cache: list[CacheEntry] = field(default_factory=list)
    usage: list[UsageDelta] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.records or self.progress or self.cache or self.usage)


RECORD_COLUMNS = (
    "id", "seq", "run_id", "stage", "parent_ids", "persona_id", "category", "tactic", "prompt_name",
    "prompt_version", "model", "seed", "request_key", "data", "created_at",
)  # fmt: skip

_RECORD_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("seq", pa.int64()),
        ("run_id", pa.string()),
        ("stage", pa.string()),
        ("parent_ids", pa.list_(pa.string())),
        ("persona_id", pa.string()),
        ("category", pa.string()),
        ("tactic", pa.string()),
        ("prompt_name", pa.string()),
        ("prompt_version", pa.int32()),
        ("model", pa.string()),
        ("seed", pa.int64()),
        ("request_key", pa.string()),
        ("data", pa.string()),
        ("created_at", pa.timestamp("us")),
        ("judged_category", pa.string()),  # stored apart from data (migration 007), not read back
    ]
)


def records_table(records: list[Record], first_seq: int) -> pa.Table:
    columns: dict[str, list] = {name: [] for name in RECORD_COLUMNS}
    for offset, record in enumerate(records):
        for name in RECORD_COLUMNS:
            if name == "seq":
                value = first_seq + offset
            elif name == "data":
                value = canonical_json(record.data)
            elif name == "parent_ids":
                value = list(record.parent_ids)
            else:
                value = getattr(record, name)
            columns[name].append(value)
    columns["judged_category"] = [_judged_category(record.data) for record in records]
    return pa.Table.from_pydict(columns, schema=_RECORD_SCHEMA)


def _judged_category(data: dict[str, Any]) -> str | None:
    """The data's `judged_category` as DuckDB's json_extract_string reads it (migration 007)."""
    value = data.get("judged_category")
    return value if value is None or isinstance(value, str) else canonical_json(value)


def dataclass_table(rows: list, cls: type) -> pa.Table:
    """Column-wise Arrow table of slotted dataclass rows, in declaration order."""
    names = list(cls.__slots__)
    return pa.Table.from_pydict({n: [getattr(r, n) for r in rows] for n in names})

"""Read rows from a user's data: a jsonl, csv or parquet file, a dataset saved with `save_to_disk`,
or a Hugging Face hub dataset id. Used for seed files, datasets to score, and eval sets.

Text files (jsonl, json, csv) are decoded strictly, as UTF-8 unless the user names another encoding:
a byte that does not decode stops the read with the file, line and byte offset, never a value
smuggled through as bytes."""

from __future__ import annotations

import codecs
import io
import json
import re
from pathlib import Path
from typing import Any

_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


class SourceError(Exception):
    """A source that cannot be read; the message says which and why."""


def read_rows(
    source: str,
    *,
    split: str = "train",
    limit: int | None = None,
    subset: str | None = None,
    encoding: str = "utf-8",
) -> list[dict[str, Any]]:
    """`subset` names a hub dataset's configuration (e.g. HarmBench's "standard"); `encoding` is that
    of a jsonl, json or csv file."""
    path = Path(source)
    if path.is_dir():
        rows = _saved_dataset(path, split)
    elif path.suffix in (".jsonl", ".json", ".csv", ".parquet"):
        if not path.is_file():
            raise SourceError(f"{source}: file not found")
        rows = _file(path, encoding)
    elif _HUB_ID.match(source) and not path.exists():
        rows = _hub(source, split, subset)
    else:
        raise SourceError(
            f"{source}: not a .jsonl, .csv or .parquet file, a saved dataset folder, or a hub id (owner/name)"
        )
    return rows[:limit] if limit is not None else rows


def column(rows: list[dict[str, Any]], name: str, source: str) -> list[Any]:
    """The values of column `name`, or an error that lists the columns there are (or names the first
    row whose value is raw bytes, as a parquet binary column holds, rather than text)."""
    if rows and name not in rows[0]:
        raise SourceError(f"{source}: no column {name!r}; columns: {', '.join(rows[0])}")
    values = [row.get(name) for row in rows]
    for number, value in enumerate(values, 1):
        if isinstance(value, bytes):
            raise SourceError(f"{source}: row {number} of column {name!r} holds bytes, not text")
    return values


def check_encoding(encoding: str) -> str:
    """The encoding's name, or an error naming the unknown one."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise SourceError(f"unknown encoding {encoding!r} (e.g. utf-8, latin-1, cp1252)") from None
    return encoding


def decode(path: Path, encoding: str) -> str:
    """The file's text, decoded strictly; a byte that does not decode names its line and offset."""
    data = path.read_bytes()
    try:
        text = data.decode(check_encoding(encoding))
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start : exc.end]
        raise SourceError(
            f"{path}: line {line}, byte {exc.start}: {bad!r} is not valid {encoding}; name the file's "
            "encoding (--encoding, or `encoding:` in the stage's settings) or save it as UTF-8"
        ) from None
    return text.removeprefix("\ufeff")  # a byte-order mark is not data


def _file(path: Path, encoding: str) -> list[dict[str, Any]]:
    try:
        if path.suffix in (".jsonl", ".json"):
            return _jsonl(path, decode(path, encoding))
        import pyarrow.csv
        import pyarrow.parquet

        if path.suffix == ".csv":
            table = pyarrow.csv.read_csv(io.BytesIO(decode(path, encoding).encode()))
        else:
            table = pyarrow.parquet.read_table(path)
        return table.to_pylist()
    except SourceError:
        raise
    except Exception as exc:
        raise SourceError(f"{path}: cannot read it ({type(exc).__name__}: {str(exc)[:200]})") from exc


def _jsonl(path: Path, text: str) -> list[dict[str, Any]]:
    if path.suffix == ".json":
        value = json.loads(text)
        if not isinstance(value, list):
            raise SourceError(f"{path}: expected a JSON list of objects")
        return value
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SourceError(f"{path}, line {number}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise SourceError(f"{path}, line {number}: expected a JSON object")
        rows.append(row)
    return rows


def _saved_dataset(path: Path, split: str) -> list[dict[str, Any]]:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:
        raise SourceError(f"{path}: not a dataset saved with save_to_disk ({str(exc)[:200]})") from exc
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise SourceError(f"{path}: no split {split!r}; splits: {', '.join(loaded)}")
        loaded = loaded[split]
    return loaded.to_list()


def _hub(name: str, split: str, subset: str | None) -> list[dict[str, Any]]:
    import datasets

    try:
        return datasets.load_dataset(name, subset, split=split).to_list()
    except Exception as exc:
        raise SourceError(
            f"{name}: cannot load it from the Hugging Face hub ({type(exc).__name__}: {str(exc)[:200]}); "
            "offline, download it elsewhere and pass a local file or folder"
        ) from exc

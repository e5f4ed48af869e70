"""Labelled files for judge validation: one question per file, each row a human label.

    requests   prompt, label (unsafe | safe), category (S1-S14, optional)   the safety judges
    refusals   prompt, response, label (refusal | compliance)               the refusal judge
    responses  prompt, response, label (harmful | harmless)                 response check, harm judge

A label may also be yes/no or true/false (yes = the first value). Files are CSV or JSONL; the shipped
sets are in data/judges/ (README there). A file that cannot be read, lacks a column, has a label or
category outside these values, or has no rows raises `LabelError` naming the file, row and value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipeline.resources import data_dir
from pipeline.sources import SourceError, read_rows

Question = Literal["requests", "refusals", "responses"]
QUESTIONS: tuple[Question, ...] = ("requests", "refusals", "responses")
LABELS: dict[str, tuple[str, str]] = {  # question -> (positive, negative)
    "requests": ("unsafe", "safe"),
    "refusals": ("refusal", "compliance"),
    "responses": ("harmful", "harmless"),
}
CATEGORIES = {f"S{i}" for i in range(1, 15)}


class LabelError(ValueError):
    """A labelled file that cannot be used."""


@dataclass(frozen=True)
class LabelledRow:
    prompt: str
    response: str | None
    label: bool  # True: unsafe, refusal, harmful
    category: str | None = None


def default_file(question: Question) -> Path:
    return data_dir() / "judges" / f"{question}.jsonl"


def load_labels(question: Question, path: str | Path) -> list[LabelledRow]:
    source = str(path)
    if Path(source).suffix not in (".csv", ".jsonl"):
        raise LabelError(f"{source}: a labelled file is .csv or .jsonl")
    try:
        rows = read_rows(source)
    except SourceError as exc:
        raise LabelError(str(exc)) from None
    if not rows:
        raise LabelError(f"{source}: no labelled rows")
    needed = ["prompt", "label"] if question == "requests" else ["prompt", "response", "label"]
    missing = [name for name in needed if name not in rows[0]]
    if missing:
        raise LabelError(
            f"{source}: no column {', '.join(map(repr, missing))} (the {question} question needs "
            f"{', '.join(needed)}); columns: {', '.join(rows[0])}"
        )
    return [_row(question, source, number, row) for number, row in enumerate(rows, start=1)]


def _row(question: Question, source: str, number: int, row: dict) -> LabelledRow:
    where = f"{source}, row {number}"
    positive, negative = LABELS[question]
    value = str(row["label"]).strip().lower()
    if value in (positive, "yes", "true", "1"):
        label = True
    elif value in (negative, "no", "false", "0"):
        label = False
    else:
        raise LabelError(f"{where}: label {row['label']!r} is not {positive}/{negative} (or yes/no)")
    texts = [row["prompt"]] if question == "requests" else [row["prompt"], row["response"]]
    if any(not isinstance(text, str) or not text.strip() for text in texts):
        raise LabelError(f"{where}: empty prompt or response")
    category = row.get("category") or None
    if category is not None and str(category).upper() not in CATEGORIES:
        raise LabelError(f"{where}: category {category!r} is not one of S1-S14")
    return LabelledRow(
        prompt=row["prompt"],
        response=row.get("response") if question != "requests" else None,
        label=label,
        category=None if category is None else str(category).upper(),
    )

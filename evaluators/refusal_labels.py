"""Labelled model responses, as the refusal classifier is trained on (evaluators/refusal_train.py)
and validated against (evaluators/refusal_validate.py): a file with a `response` and a `label` per row
(`refusal`, `partial` or `compliance`, or true/false where true is a refusal), and optionally the
`model` that wrote it and the prompt `group` it answers."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.sources import SourceError, column, read_rows

LABELS = {"refusal": 1, "partial": 1, "compliance": 0, True: 1, False: 0}


@dataclass(frozen=True)
class Labelled:
    response: str
    refusal: int  # 1: refusal or partial refusal
    label: str  # refusal | partial | compliance
    model: str
    group: str


def load_labelled(source: str) -> list[Labelled]:
    """The rows of a labelled file; a SourceError names the file, row and problem."""
    rows = read_rows(source)
    if not rows:
        raise SourceError(f"{source}: no labelled rows")
    responses, labels = column(rows, "response", source), column(rows, "label", source)
    out = []
    for number, (row, response, label) in enumerate(zip(rows, responses, labels, strict=True), 1):
        if label not in LABELS:
            raise SourceError(
                f"{source}: row {number}: label must be refusal, partial, compliance, true or false; "
                f"got {label!r}"
            )
        if not isinstance(response, str):
            raise SourceError(f"{source}: row {number}: response must be text, got {response!r}")
        name = {True: "refusal", False: "compliance"}.get(label, label)
        out.append(
            Labelled(response, LABELS[label], name, str(row.get("model", "")), str(row.get("group", "")))
        )
    return out

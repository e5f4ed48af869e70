"""Labelled model responses, as the refusal classifier is trained on (evaluators/refusal_train.py)
and validated against (evaluators/refusal_validate.py): a file with a `response` and a `label` per row
(`refusal`, `partial` or `compliance`, or true/false where true is a refusal), and optionally the
`model` that wrote it, the prompt `group` it answers, and `request_features` (the numbers
REQUEST_FEATURES of evaluators/refusal_classifier.py, which evaluators/refusal_sources.py stores in
place of the request)."""

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
    request_features: tuple[float, ...] | None = None  # REQUEST_FEATURES, when the request was known


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
        related = _request_features(row.get("request_features"), f"{source}: row {number}")
        out.append(
            Labelled(
                response, LABELS[label], name, str(row.get("model", "")), str(row.get("group", "")), related
            )
        )
    return out


def _request_features(value, where: str) -> tuple[float, ...] | None:
    from evaluators.refusal_classifier import REQUEST_FEATURES

    if value is None:
        return None
    if not isinstance(value, dict) or any(
        isinstance(value.get(k), bool) or not isinstance(value.get(k), int | float) for k in REQUEST_FEATURES
    ):
        raise SourceError(
            f"{where}: request_features must hold a number for each of {', '.join(REQUEST_FEATURES)}"
        )
    return tuple(float(value[k]) for k in REQUEST_FEATURES)

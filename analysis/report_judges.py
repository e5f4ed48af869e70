"""Judge validation as a report section: each judge and model with its agreement with human labels
and its confusion matrix. For `safeset report` (analysis/report.py):

    html = judge_section(store.judge_results())
"""

from __future__ import annotations

from html import escape
from typing import Any

COLUMNS = ("labels", "n", "failed", "agreement", "precision", "recall", "f1", "tp", "fp", "fn", "tn",
           "category_agreement")  # fmt: skip


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return escape(str(value))


def judge_section(rows: list[dict[str, Any]]) -> str:
    """Empty when no judge was validated (`safeset judges CONFIG`)."""
    if not rows:
        return ""
    head = "".join(f"<th>{escape(name)}</th>" for name in ("judge", "model", *COLUMNS))
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(row[c])}</td>" for c in ("judge", "model", *COLUMNS)) + "</tr>"
        for row in rows
    )
    note = (
        '<p class="note">Measured by <code>safeset judges CONFIG</code> against labelled files: positive = '
        "unsafe request, refusal or harmful response; agreement over the rows the judge answered; "
        "category agreement = the labelled S1–S14 category among those the safety filter named.</p>"
    )
    return (
        '<section id="judges"><h2>Judge validation</h2>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}</section>"
    )

"""Eval results as a report section: a table of every model and eval set side by side, and bars of
over-refusal and attack success per category. For `safeset report` (analysis/report.py):

    html = eval_section(store.eval_results(), store.eval_results(group_by="category"))
"""

from __future__ import annotations

from html import escape
from typing import Any

from analysis import svg

HEADLINE = ("n", "failed", "refusal_prefix", "refusal_judge", "over_refusal", "compliance", "harm_score",
            "harm_5", "asr")  # fmt: skip
PLOTTED = {"over_refusal": "Over-refusal on benign prompts", "asr": "Attack success rate on harmful prompts"}


def _model(row: dict[str, Any]) -> str:
    return f"{row['target']} · {row['eval_run']}"


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    return str(value) if isinstance(value, int) else f"{value:.3g}"


def eval_section(models: list[dict[str, Any]], categories: list[dict[str, Any]]) -> str:
    """`models`: store.eval_results(); `categories`: store.eval_results(group_by="category"). Empty
    when there is no eval."""
    if not models:
        return ""
    head = "".join(f"<th>{escape(name)}</th>" for name in ("model · eval run", "set", *HEADLINE))
    body = "".join(
        f"<tr><td>{escape(_model(row))}</td><td>{escape(row['eval_set'])}</td>"
        + "".join(f"<td>{_cell(row.get(metric))}</td>" for metric in HEADLINE)
        + "</tr>"
        for row in models
    )
    plots = []
    over_all = [row for row in categories if row["eval_set"] == "*"] or categories
    for metric, title in PLOTTED.items():
        rows = [row for row in over_all if metric in row]
        labels = sorted({row["group"] for row in rows})
        series: dict[str, list[float | None]] = {}
        for row in rows:
            series.setdefault(_model(row), [None] * len(labels))[labels.index(row["group"])] = row[metric]
        if series:
            plots.append(svg.grouped_bars(labels, series, f"{title}, per category", 1.0))
    return (
        '<section id="evaluation"><h2>Evaluation</h2>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        f'<div class="plots">{"".join(plots)}</div></section>'
    )

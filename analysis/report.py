"""Render a run's analysis as one self-contained HTML file: inline CSS and SVG, no script, nothing
fetched when it is viewed."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from html import escape
from typing import Any

from analysis import svg
from analysis.report_data import ReportData
from analysis.report_eval import eval_section
from analysis.report_judges import judge_section
from analysis.scorecard import headline, token_convention
from pipeline import __version__
from pipeline.refusal_accounting import refusal_advice

_CSS = """
body { font-family: system-ui, sans-serif; margin: 24px 32px; color: #222; max-width: 1200px; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 17px; margin-top: 32px; border-bottom: 1px solid #ddd; }
.meta { color: #666; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { padding: 4px 10px; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th.compared { color: #8c6d4f; } .note { color: #666; font-size: 12px; }
.plots { display: flex; flex-wrap: wrap; gap: 24px; }
"""
# Scorecard metrics that live in [0, 1] and grow with diversity or coverage: the comparison plot.
_BOUNDED = (
    "distinct-1", "distinct-2", "distinct-3", "MSTTR", "HD-D", "1 − Self-BLEU", "cosine distance",
    "intent evenness", "tactic evenness", "tactic×category fill",
)  # fmt: skip


def render(data: ReportData) -> str:
    sections = [
        _header(data),
        _scorecard_table(data),
        _comparison(data),
        _categories(data),
        _heatmaps(data),
        _evolution(data),
        _history(data),
        eval_section(data.evals, data.eval_categories),
        judge_section(data.judges),
        _refusals(data),
        _failures(data),
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="generator" content="safeset {__version__}">'
        f"<title>safeset report · {escape(data.run['run_id'])}</title><style>{_CSS}</style></head><body>"
        + "".join(s for s in sections if s)
        + "</body></html>"
    )


def _section(key: str, title: str, body: str) -> str:
    return f'<section id="{key}"><h2>{escape(title)}</h2>{body}</section>'


def _header(data: ReportData) -> str:
    run = data.run
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"<h1>safeset report: {escape(run['name'])}</h1>"
        f'<p class="meta">run {escape(run["run_id"])} · created {escape(str(run["created_at"])[:19])} · '
        f"{run['records']} records · {run['sessions']} session(s), last {escape(str(run['status']))} · "
        f"generated {generated}</p>"
    )


def _all_cards(data: ReportData) -> list[tuple[dict[str, Any], bool]]:
    return [(c, False) for c in data.cards] + [(c, True) for c in data.compared]


def _label(card: dict[str, Any]) -> str:
    name = card["dataset"]
    return name if len(name) <= 28 else "…" + name[-27:]


def _scorecard_table(data: ReportData) -> str:
    cards = _all_cards(data)
    if not cards:
        return _section(
            "scorecard", "Scorecard", '<p class="note">No dataset of this run has records yet.</p>'
        )
    rows = [headline(card) for card, _ in cards]
    head = "".join(
        f'<th class="{"compared" if compared else "run"}" title="{escape(card["dataset"])}">'
        f"{escape(_label(card))}{' (compared)' if compared else ''}</th>"
        for card, compared in cards
    )
    body = "".join(
        f"<tr><td>{escape(metric)}</td>"
        + "".join(f"<td>{_format(row[metric])}</td>" for row in rows)
        + "</tr>"
        for metric in rows[0]
    )
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in _notes(cards))
    table = (
        f'<table class="scorecard"><thead><tr><th>metric</th>{head}</tr></thead><tbody>{body}</tbody></table>'
    )
    return _section("scorecard", "Scorecard", table + notes)


def _notes(cards: list[tuple[dict[str, Any], bool]]) -> list[str]:
    out = [
        "Lexical: distinct-n within texts; MSTTR, MTLD and HD-D over all texts as one stream; Self-BLEU on a "
        "sample (lower is more diverse). Semantic: all-MiniLM-L6-v2 embeddings of a sample; clusters = "
        "greedy leaders at the cosine threshold. Intent: entropy in nats over S1–S14, evenness = entropy / "
        "log 14, Gini 0 = even.",
        "Lexical tokens: " + "; ".join(sorted({token_convention(card) for card, _ in cards})) + ".",
    ]
    for card, _ in cards:
        if card["intent"]["source"] == "classifier":
            out.append(f"{card['dataset']}: categories assigned by the embedding classifier.")
        if card["skipped"]:
            out.append(f"{card['dataset']}: {card['skipped']} rows without text skipped.")
    return out


def _format(value: float | int | None) -> str:
    if value is None:
        return "–"
    return str(value) if isinstance(value, int) else f"{value:.3f}"


def _bounded(card: dict[str, Any]) -> dict[str, float | None]:
    row = headline(card)
    msttr = next(v for k, v in row.items() if k.startswith("MSTTR"))
    bleu = row["Self-BLEU"]
    values = {**row, "MSTTR": msttr, "1 − Self-BLEU": None if bleu is None else 1 - bleu}
    return {metric: values[metric] for metric in _BOUNDED}


def _comparison(data: ReportData) -> str:
    cards = _all_cards(data)
    if not cards:
        return ""
    bounded = [_bounded(card) for card, _ in cards]
    series = {
        _label(card) + (" (compared)" if compared else ""): [b[m] for m in _BOUNDED]
        for (card, compared), b in zip(cards, bounded, strict=True)
    }
    plot = svg.grouped_bars(
        list(_BOUNDED), series, "Diversity and coverage (0–1, higher is more diverse)", 1.0
    )
    return _section("diversity", "Diversity versus compared datasets", f'<div class="plots">{plot}</div>')


def _categories(data: ReportData) -> str:
    cards = [card for card, _ in _all_cards(data) if sum(card["intent"]["counts"].values())]
    if not cards:
        return ""
    labels = list(dict.fromkeys(k for card in cards for k in card["intent"]["counts"]))
    series = {}
    for card in cards:
        counts = card["intent"]["counts"]
        total = sum(counts.values())
        series[_label(card)] = [counts.get(k, 0) / total for k in labels]
    plot = svg.grouped_bars(labels, series, "Share of texts per intent category", None)
    return _section(
        "categories", "Malicious intent: category distribution", f'<div class="plots">{plot}</div>'
    )


def _heatmaps(data: ReportData) -> str:
    plots = []
    for card, _ in _all_cards(data):
        tactics = card["tactics"]
        if not tactics:
            continue
        cells = Counter()
        for key, n in tactics["cells"].items():
            tactic, category = key.split("|", 1)
            cells[(tactic, category)] = n
        columns = list(card["intent"]["counts"])
        title = f"{_label(card)}: tactic × category (fill {tactics['fill']:.0%})"
        plots.append(svg.heatmap(list(tactics["counts"]), columns, cells, title))
    if not plots:
        return ""
    return _section(
        "tactics", "Jailbreak tactics × intent categories", f'<div class="plots">{"".join(plots)}</div>'
    )


def _evolution(data: ReportData) -> str:
    plots = []
    for curve in data.curves:
        fitness = {"mean fitness": curve.mean_fitness, "best so far": curve.best_fitness}
        plots.append(
            svg.lines(curve.iterations, fitness, f"{curve.stage}: fitness per iteration", "iteration")
        )
        if any(r is not None for r in curve.refusal_rate):
            rates = {"mean refusal rate": curve.refusal_rate}
            plots.append(
                svg.lines(curve.iterations, rates, f"{curve.stage}: refusal rate per iteration", "iteration")
            )
    if not plots:
        return ""
    return _section("evolution", "Over-refusal search", f'<div class="plots">{"".join(plots)}</div>')


def _history(data: ReportData) -> str:
    parts = []
    for dataset, cards in data.history.items():
        if len(cards) < 2:
            continue
        rows = [headline(card) for card in cards]
        metrics = [
            m
            for m in rows[0]
            if m in ("items", "distinct-2", "MTLD", "Self-BLEU", "Vendi", "intent evenness")
        ]
        metrics.insert(2, next(m for m in rows[0] if m.startswith("MSTTR")))
        head = "".join(f"<th>{escape(m)}</th>" for m in metrics)
        body = "".join(
            f"<tr><td>{escape(str(card['run_id'] or ''))}</td><td>{escape(card['created_at'])}</td>"
            + "".join(f"<td>{_format(row[m])}</td>" for m in metrics)
            + "</tr>"
            for card, row in zip(cards, rows, strict=True)
        )
        parts.append(
            f"<h3>{escape(dataset)}</h3><table><thead><tr><th>run</th><th>scored</th>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>"
        )
    if not parts:
        return ""
    return _section("history", "The same datasets in earlier runs", "".join(parts))


def _refusals(data: ReportData) -> str:
    if not data.refusals:
        return ""
    rows = "".join(
        f"<tr><td>{escape(code)}</td><td>{a['written']}</td><td>{a['refused']}</td><td>{a['rate']:.0%}</td>"
        f"<td>{a['lost_request']}</td></tr>"
        for code, a in data.refusals.items()
    )
    head = (
        "<thead><tr><th>category</th><th>written</th><th>refused</th><th>rate</th>"
        "<th>rewrites that lost the request</th></tr></thead>"
    )
    advice = refusal_advice(data.refusals)
    note = f'<p class="note">{escape(advice)}</p>' if advice else ""
    title = "Generator refusals per category"
    return _section("refusals", title, f"<table>{head}<tbody>{rows}</tbody></table>{note}")


def _failures(data: ReportData) -> str:
    if not data.failures:
        return _section("failures", "Failures by stage and reason", '<p class="note">No failed items.</p>')
    by_stage = Counter()
    for f in data.failures:
        by_stage[f["stage"]] += f["count"]
    plot = svg.grouped_bars(
        list(by_stage), {"failed items": list(by_stage.values())}, "Failed items per stage"
    )
    body = "".join(
        f'<tr><td>{escape(f["stage"])}</td><td>{f["count"]}</td><td style="text-align:left">'
        f"{escape(f['reason'] or '')}</td></tr>"
        for f in data.failures
    )
    head = '<thead><tr><th>stage</th><th>items</th><th style="text-align:left">reason</th></tr></thead>'
    table = f"<table>{head}<tbody>{body}</tbody></table>"
    return _section("failures", "Failures by stage and reason", f'<div class="plots">{plot}</div>{table}')

"""What the dataset card says of the reviews by hand: coverage per dataset, rejection rate per intended
category, and where two reviewers decided on the same records, their agreement (Cohen's kappa)."""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from typing import Any

from pipeline.store import Store


def review_stats(store: Store, run_id: str, datasets: list[str]) -> dict[str, Any]:
    """{"coverage": {dataset: {records, reviewed, rejected, edited}}, "categories": {category:
    {reviewed, rejected, rate}}, "agreement": [{reviewers, records, kappa}]}, or {} with no review."""
    coverage: dict[str, dict[str, int]] = {}
    categories: dict[str, dict[str, Any]] = defaultdict(lambda: {"reviewed": 0, "rejected": 0})
    for dataset in datasets:
        counts = {"records": 0, "reviewed": 0, "rejected": 0, "edited": 0}
        for category, decision, n in store.review_counts(run_id, dataset):
            counts["records"] += n
            if decision == "unreviewed":
                continue
            counts["reviewed"] += n
            categories[category]["reviewed"] += n
            if decision == "reject":
                counts["rejected"] += n
                categories[category]["rejected"] += n
            counts["edited"] += n if decision == "edit" else 0
        coverage[dataset] = counts
    if not any(c["reviewed"] for c in coverage.values()):
        return {}
    for values in categories.values():
        values["rate"] = values["rejected"] / values["reviewed"]
    return {
        "coverage": coverage,
        "categories": dict(sorted(categories.items())),
        "agreement": agreement(store.reviewer_decisions(run_id)),
    }


def agreement(rows: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """Cohen's kappa of each pair of reviewers over the records both decided on, from (record,
    reviewer, decision) rows."""
    by_record: dict[str, dict[str, str]] = defaultdict(dict)
    for record_id, reviewer, decision in rows:
        by_record[record_id][reviewer] = decision
    pairs: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for decisions in by_record.values():
        for a, b in combinations(sorted(decisions), 2):
            pairs[(a, b)].append((decisions[a], decisions[b]))
    return [
        {"reviewers": f"{a} / {b}", "records": len(seen), "kappa": cohen_kappa(seen)}
        for (a, b), seen in sorted(pairs.items())
    ]


def cohen_kappa(pairs: list[tuple[str, str]]) -> float | None:
    """(observed - chance agreement) / (1 - chance); None where chance agreement is certain but the two
    disagree, 1.0 where both always gave the one same label."""
    n = len(pairs)
    observed = sum(a == b for a, b in pairs) / n
    labels = {label for pair in pairs for label in pair}
    chance = sum(
        (sum(a == label for a, _ in pairs) / n) * (sum(b == label for _, b in pairs) / n) for label in labels
    )
    if chance == 1:
        return 1.0 if observed == 1 else None
    return (observed - chance) / (1 - chance)

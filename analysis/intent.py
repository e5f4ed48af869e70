"""Malicious-intent coverage: how a dataset spreads over the hazard categories S1-S14.

Each text gets one category: the one given (a judge's verdict or the intended category), or, for
data without one, the nearest category description by embedding cosine (an offline zero-shot
classifier). Coverage is the distribution over all 14 categories, including the empty ones, when
the labels are S-codes; for data labelled in another taxonomy it is over the labels seen.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from analysis.distribution import entropy, gini, normalised_entropy
from pipeline.taxonomy import hazard_categories


def classify(vectors: np.ndarray, embed) -> list[str]:
    """The hazard category whose "name: description" embedding is closest to each of `vectors`."""
    categories = hazard_categories()
    prototypes = embed([f"{c.name}: {c.description}" for c in categories])
    nearest = (vectors @ prototypes.T).argmax(axis=1)
    return [categories[i].code for i in nearest.tolist()]


def intent_coverage(seen: Counter[str], unlabelled: int, min_items: int = 10) -> dict[str, Any]:
    """Counts per category (`seen`: texts per label), entropy (nats), normalised entropy, Gini, and
    the number of categories with at least `min_items` texts. The `unlabelled` texts are left out."""
    codes = [c.code for c in hazard_categories()]
    categories = codes if set(seen) <= set(codes) else sorted(seen)
    counts = [seen.get(c, 0) for c in categories]
    return {
        "counts": dict(zip(categories, counts, strict=True)),
        "unlabelled": unlabelled,
        "entropy": entropy(counts),
        "normalised_entropy": normalised_entropy(counts),
        "gini": gini(counts),
        "categories_with_min_items": sum(c >= min_items for c in counts),
        "min_items": min_items,
        "taxonomy": "S1-S14" if categories == codes else "labels",
    }

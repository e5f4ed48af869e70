"""Summaries of a categorical distribution: Shannon entropy, evenness and the Gini coefficient."""

from __future__ import annotations

import math
from collections.abc import Sequence


def entropy(counts: Sequence[int]) -> float:
    """Shannon entropy in nats of the distribution given by `counts`."""
    total = sum(counts)
    return -sum(c / total * math.log(c / total) for c in counts if c) if total else 0.0


def normalised_entropy(counts: Sequence[int]) -> float:
    """Entropy divided by its maximum log(len(counts)): 1 when every category is equally full (Pielou's
    evenness when `counts` lists only the categories seen)."""
    return entropy(counts) / math.log(len(counts)) if len(counts) > 1 else 0.0


def gini(counts: Sequence[int]) -> float:
    """Gini coefficient of the counts: 0 when all are equal, (k - 1) / k when one category holds all."""
    total, k = sum(counts), len(counts)
    if not total or not k:
        return 0.0
    ordered = sorted(counts)
    # G = sum_i (2i - k - 1) x_i / (k * total) over ascending x, i = 1..k
    return sum((2 * i - k - 1) * x for i, x in enumerate(ordered, 1)) / (k * total)

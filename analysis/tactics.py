"""Jailbreak-tactic coverage: how many tactics a dataset uses, how evenly, and which tactic x
category cells it fills."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from analysis.distribution import entropy, normalised_entropy


def tactic_coverage(
    tactics: Sequence[str | None], categories: Sequence[str | None], category_axis: Sequence[str]
) -> dict[str, Any]:
    """Distinct tactics, entropy (nats), evenness (entropy / log distinct), and the fill of the
    tactic x category grid: the share of (tactic seen, category in `category_axis`) cells holding at
    least one text. Texts without a tactic are left out."""
    counts = Counter(t for t in tactics if t)
    cells = Counter((t, c) for t, c in zip(tactics, categories, strict=True) if t and c in category_axis)
    grid = len(counts) * len(category_axis)
    return {
        "counts": dict(counts.most_common()),
        "distinct": len(counts),
        "entropy": entropy(list(counts.values())),
        "evenness": normalised_entropy(list(counts.values())),
        "cells": {f"{t}|{c}": n for (t, c), n in sorted(cells.items())},
        "fill": len(cells) / grid if grid else 0.0,
    }

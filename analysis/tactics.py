"""Jailbreak-tactic coverage: how many tactics a dataset uses, how evenly, and which tactic x
category cells it fills."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from analysis.distribution import entropy, normalised_entropy


def tactic_coverage(
    counts: Counter[str], cells: Counter[tuple[str, str]], category_axis: Sequence[str]
) -> dict[str, Any]:
    """Distinct tactics (`counts`: texts per tactic), entropy (nats), evenness (entropy / log
    distinct), and the fill of the tactic x category grid: the share of (tactic seen, category in
    `category_axis`) cells holding at least one text (`cells`: texts per tactic and category)."""
    cells = Counter({cell: n for cell, n in cells.items() if cell[1] in category_axis})
    grid = len(counts) * len(category_axis)
    return {
        "counts": dict(counts.most_common()),
        "distinct": len(counts),
        "entropy": entropy(list(counts.values())),
        "evenness": normalised_entropy(list(counts.values())),
        "cells": {f"{t}|{c}": n for (t, c), n in sorted(cells.items())},
        "fill": len(cells) / grid if grid else 0.0,
    }

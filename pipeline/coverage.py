"""Coverage by design: cells (intent domains, tactics) filled evenly and deterministically, and the
fill of each cell against its target for `safeset status`.

Targets live in the config: `dedup.per_category` (core rows per domain) and `tactics.per_tactic`
(edge rows per tactic). Supply is balanced upstream by construction (the same number of scenario
slots per domain); these functions take exactly the target from what survived, spread over personas
and domains rather than first-come.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def round_robin(items: Sequence[T], group: Callable[[T], Any], seed: int) -> list[T]:
    """All items, reordered to take one from each group in turn (groups in a seeded order, items in
    their given order within a group)."""
    groups: dict[Any, list[T]] = {}
    for item in items:
        groups.setdefault(group(item), []).append(item)
    order = sorted(groups, key=str)
    random.Random(seed).shuffle(order)
    queues = [groups[key] for key in order]
    out: list[T] = []
    for depth in range(max((len(q) for q in queues), default=0)):
        out.extend(q[depth] for q in queues if depth < len(q))
    return out


def spread(items: Sequence[T], n: int, group: Callable[[T], Any], seed: int) -> list[T]:
    """`n` of the items, as evenly over groups as they allow (e.g. instructions over personas)."""
    return round_robin(items, group, seed)[:n]


def assign_tactics(
    items: Sequence[T], quotas: Mapping[str, int], group: Callable[[T], Any], seed: int
) -> list[tuple[T, str, int]]:
    """(item, tactic, index within the tactic) so that every tactic gets min(quota, len(items)) items,
    spread evenly over groups (domains), and no item gets the same tactic twice. Items are used as
    evenly as possible: each before any is used again."""
    ordered = round_robin(items, group, seed)
    out: list[tuple[T, str, int]] = []
    start = 0
    for name, quota in quotas.items():
        take = min(quota, len(ordered))
        # A window of consecutive items in the interleaved order: domains stay balanced within it.
        out.extend((ordered[(start + j) % len(ordered)], name, j) for j in range(take))
        start += take
    return out


def coverage_fill(store: Any, run_id: str, params: dict[str, Any]) -> dict[str, dict[str, dict[str, int]]]:
    """{"category": {code: {target, selected, final}}, "tactic": {...}} for the cells a run targets.
    `params` maps stage names to their validated params; selected counts the stage that fills the
    cells (dedup, tactics), final the dataset stage (core, edge)."""
    fill: dict[str, dict[str, dict[str, int]]] = {}
    specs = (("category", "dedup", "per_category", "core"), ("tactic", "tactics", "per_tactic", "edge"))
    for column, stage, field, final_stage in specs:
        target = getattr(params.get(stage), field, None)
        if target is None:
            continue
        cells = _cells(column, params)
        selected = store.cell_counts(run_id, stage, column)
        final = store.cell_counts(run_id, final_stage, column) if final_stage in params else {}
        fill[column] = {
            cell: {"target": target, "selected": selected.get(cell, 0), "final": final.get(cell, 0)}
            for cell in cells
        }
    return fill


def _cells(column: str, params: dict[str, Any]) -> list[str]:
    if column == "tactic":
        return list(params["tactics"].tactics)
    domains = params.get("domains")
    if domains is not None:
        return list(domains.categories)
    from pipeline.taxonomy import hazard_categories

    return [c.code for c in hazard_categories()]

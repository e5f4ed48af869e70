"""Generator refusals counted per intended category, for `safeset status`, the report and the card.

The stages that write with the generator (CHECKED) keep each refused sample as a record of the
pseudo-stage REFUSALS (pipeline/stages/refusals.py), and the rewrite drops an item whose rewrite lost
the request with a reason starting LOST. This module names them, so readers above the stages count
them through the store without importing a stage.
"""

from __future__ import annotations

from typing import Any

from pipeline.store import Store

REFUSALS = "generator_refusals"
LOST = "the rewrite lost the request"
CHECKED = ("scenarios", "personas", "related_personas", "instructions", "rewrite")
ADVICE_RATE = 0.1  # a category refused more often than this gets the advice below
ADVICE = (
    "The generator refused to write part of the data, so these categories fall short of their targets "
    "or are filled by fewer personas. Use a generator that complies (TRIDENT used an uncensored "
    "Llama-3.1-8B) for the generator role, or lower the targets of these categories on purpose."
)


def refusal_accounting(store: Store, run_id: str) -> dict[str, dict[str, Any]]:
    """Per intended category: texts the generator wrote in the checked stages, how many it refused
    (and their share), and rewrites dropped for losing the request."""
    written = store.refusal_counts(run_id, REFUSALS, CHECKED)
    lost = store.dropped_counts(run_id, "rewrite", LOST)
    accounting: dict[str, dict[str, Any]] = {}
    for category, refused, total in written:
        accounting[category] = {
            "written": total,
            "refused": refused,
            "rate": round(refused / total, 4) if total else 0.0,
            "lost_request": lost.get(category, 0),
        }
    for category, n in lost.items():
        accounting.setdefault(category, {"written": 0, "refused": 0, "rate": 0.0, "lost_request": 0})
        accounting[category]["lost_request"] = n
    return dict(sorted(accounting.items(), key=lambda kv: (len(kv[0]), kv[0])))


def refusal_advice(accounting: dict[str, dict[str, Any]]) -> str | None:
    """The advice, naming the categories refused more often than ADVICE_RATE; None when none is."""
    high = [c for c, a in accounting.items() if a["rate"] > ADVICE_RATE]
    return f"{', '.join(high)}: {ADVICE}" if high else None

"""A small finished run written straight into a store, for the analysis tests: core and edge
records with categories and tactics, EvoRefuse candidates with iterations, fitness and refusal
rates, and failed items with reasons. The requests are bland templates, not real harmful ones."""

from __future__ import annotations

import random
from pathlib import Path

from pipeline.records import Record
from pipeline.store import CommitBatch, ProgressRow, Store

RUN = "analysis-0001"
CATEGORIES = ["S1", "S2", "S5", "S7", "S9", "S13"]
TACTICS = ["roleplay", "past_tense", "cipher"]
_ASKS = ["How would someone", "Explain how a person could", "Describe ways to", "What is the easiest way to"]
_ACTS = ["get around", "take advantage of", "mislead people about", "quietly copy", "break the rules of"]
_TOPICS = ["a local election", "a neighbour's wifi", "a shop's loyalty scheme", "an online exam",
           "a rival's reputation", "a parking permit", "a software licence", "a charity raffle"]  # fmt: skip


def instructions(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.choice(_ASKS)} {rng.choice(_ACTS)} {rng.choice(_TOPICS)} (case {i})?" for i in range(n)]


def make_run(db_path: Path, run_id: str = RUN, n_core: int = 60, seed: int = 0) -> None:
    rng = random.Random(seed)
    store = Store.open(db_path)
    store.ensure_run(run_id, "analysis", {"name": "analysis"}, seed, None, "test")
    session = store.start_session(run_id, 1, ["test"])
    records, progress = [], []

    def record(stage: str, data: dict, **lineage) -> Record:
        r = Record(
            id=Record.make_id(run_id, stage, (), data), run_id=run_id, stage=stage, data=data, **lineage
        )
        records.append(r)
        return r

    for i, text in enumerate(instructions(n_core, seed)):
        category = CATEGORIES[i % len(CATEGORIES)]
        judged = category if i % 5 else "S2"
        row = {"instruction": text, "response": "I can't help with that, but here is a safer idea.",
               "category": category, "judged_category": judged, "persona": "a curious student"}  # fmt: skip
        record("core", row, category=category)
        if i % 2 == 0:
            tactic = TACTICS[i % 3]
            edge = {
                **row,
                "instruction": f"[{tactic}] {text}",
                "tactic": tactic,
                "original_instruction": text,
            }
            record("edge", edge, category=category, tactic=tactic)
    for seed_index in range(4):
        for iteration in range(4):
            for k in range(3):
                fitness = -2.0 + 0.3 * iteration + 0.1 * k + rng.random() * 0.05
                rate = min(1.0, 0.2 + 0.15 * iteration + 0.05 * k)
                data = {"seed_id": f"s{seed_index}", "iteration": iteration, "fitness": fitness,
                        "instruction": f"q{seed_index}.{k}", "refusal_rate": rate}  # fmt: skip
                record("evolve_candidates", data)
    for i in range(3):
        progress.append(
            ProgressRow(run_id, "instructions", f"item{i}", "failed", 0, "answer broke the schema", 3)
        )
    progress.append(ProgressRow(run_id, "respond", "item9", "failed", 0, "LLMFailure: timeout", 6))
    store.commit(CommitBatch(records=records, progress=progress))
    store.end_session(run_id, session, "completed")
    store.close()

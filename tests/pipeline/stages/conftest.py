"""Run the TRIDENT stages against the scripted world."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.config import validate_config
from pipeline.records import Record
from pipeline.runner import Runner, RunSummary
from pipeline.stages import STAGES
from pipeline.store import Store
from tests.conftest import scripted_roles
from tests.servers.chat_server import ChatServer

TACTICS = ["cipher", "code_injection", "past_tense", "renellm", "roleplay"]


# The generator's refusals are caught by XSTest's prefixes here (also the default of generator checks,
# pipeline/stages/refusals.py), named so the world does not hang on that default; test_refusals.py runs
# the default and the classifier.
PREFIX = {"refusal": {"kind": "prefix"}}


def trident_config(server: ChatServer, name: str = "trident", seed: int = 3, **stages: Any) -> dict:
    """Four domains, 6 personas each (2 scenarios, expanded once with fanout 2), 2 instructions per
    persona; targets: 6 core rows per domain, 5 edge rows per tactic. Embedding dedup is off unless
    a test turns it on (the model load costs seconds)."""
    config: dict[str, Any] = {
        "domains": {"categories": ["S1", "S2", "S10", "S14"], "scenarios_per_category": 2},
        "scenarios": PREFIX,
        "personas": PREFIX,
        "related_personas": {"depth": 1, "fanout": 2, **PREFIX},
        "persona_pool": {"cosine": None},
        "instructions": {"per_pair": 2, **PREFIX},
        "safety_filter": {},
        "dedup": {"per_category": 6, "cosine": None},
        "core": {},
        "tactics": {"per_tactic": 5, "tactics": TACTICS},
        "rewrite": PREFIX,
        "edge": {},
    }
    for stage, settings in stages.items():
        if settings is None:
            config.pop(stage)
        else:
            config[stage] = {**config.get(stage, {}), **settings}
    return {"name": name, "seed": seed, "roles": scripted_roles(server), "stages": config}


def run(raw: dict, db_path: Path, **kwargs: Any) -> RunSummary:
    store = Store.open(db_path)
    try:
        return Runner(validate_config(raw, stages=STAGES), store, argv=["test"], **kwargs).run()
    finally:
        store.close()


class Run:
    """Read access to a finished run: records by stage, outcomes, ancestors."""

    def __init__(self, db_path: Path, run_id: str | None = None):
        self.store = Store.open(db_path, read_only=True)
        self.run_id = self.store.resolve_run(run_id)

    def records(self, stage: str) -> list[Record]:
        return self.store.records(self.run_id, stage)

    def outcomes(self, stage: str) -> dict[str, tuple[str, str | None]]:
        rows = self.store.con.execute(
            "SELECT item_id, status, reason FROM progress WHERE run_id = ? AND stage = ?",
            [self.run_id, stage],
        ).fetchall()
        return {item: (status, reason) for item, status, reason in rows}

    def count(self, stage: str, column: str) -> Counter:
        return Counter(getattr(r, column) for r in self.records(stage))

    def ancestors(self, record: Record) -> list[Record]:
        chain, todo = [], list(record.parent_ids)
        while todo:
            parent = self.store.get(todo.pop())
            chain.append(parent)
            todo.extend(parent.parent_ids)
        return chain

    def close(self) -> None:
        self.store.close()

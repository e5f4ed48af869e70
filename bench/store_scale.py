"""The store at scale: a TRIDENT run of 1,000,000 records, then `safeset status`, `score` and
`export` on it, each as its own process: seconds and peak memory (maximum resident set size).

The run is synthetic but shaped like a real one and written the way a run writes: through
`Store.commit`, in batches of Arrow tables, each batch carrying records with their progress markers
(done, dropped with a reason, or failed). Every stage of configs/core.yaml and the edge stages are
there in realistic proportions (3 personas per scenario slot, 3 instructions per persona, 10 %
judged safe, a quarter removed as duplicates, 1 % of responses failed, half the kept instructions
rewritten with a tactic), so `core` and `edge` together hold about 200,000 rows. Texts are random
words from a 20,000-word vocabulary, 12 to 40 of them.

    python -m bench.store_scale                    # 1,000,000 records
    python -m bench.store_scale --records 100000 --keep /tmp/scale.duckdb
    python -m bench.store_scale --records 10000000 --keep /tmp/scale10m.duckdb   # 4.4 GB of disk

The build holds about two stages' records at a time (about 5 GiB at 10,000,000); the commands
timed are what must stay flat.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pipeline.config import validate_config
from pipeline.records import Record, derive_seed
from pipeline.stages import STAGES
from pipeline.stages.domains import MAX_SLOTS
from pipeline.store import CommitBatch, ProgressRow, Store, UsageDelta
from pipeline.taxonomy import hazard_categories

TACTICS = ["persona_modulation", "past_tense", "renellm", "cipher", "low_resource_language", "code_injection"]
# Records per scenario slot, stage by stage (46.2 in all).
PER_SLOT = {"domains": 1, "scenarios": 1, "personas": 1, "related_personas": 2, "persona_pool": 3,
            "instructions": 9, "safety_filter": 8.1, "dedup": 6.1, "core": 6.0, "tactics": 3.0,
            "rewrite": 3.0, "edge": 3.0}  # fmt: skip
BATCH = 50_000


class Texts:
    """Random sentences of 12-40 words drawn with a fixed seed."""

    def __init__(self, seed: int = 0):
        from tests.pipeline.stages.trident_world import vocabulary

        self.words = np.array(vocabulary()[:20_000])
        self.rng = np.random.default_rng(seed)

    def __call__(self) -> str:
        return " ".join(self.words[self.rng.integers(0, len(self.words), self.rng.integers(12, 41))])


def config(slots_per_category: int) -> dict:
    per_category = int(slots_per_category * PER_SLOT["dedup"])
    return {
        "name": "scale",
        "seed": 0,
        "roles": {"default": {"backend": "openai", "model": "bench-model"}},
        "stages": {
            "domains": {"scenarios_per_category": slots_per_category},
            "scenarios": {}, "personas": {}, "related_personas": {"depth": 1, "fanout": 2},
            "persona_pool": {}, "instructions": {"per_pair": 3}, "safety_filter": {},
            "dedup": {"per_category": per_category}, "core": {},
            "tactics": {"per_tactic": per_category * 14 // 2 // len(TACTICS), "tactics": TACTICS},
            "rewrite": {}, "edge": {},
        },
    }  # fmt: skip


class Builder:
    """Writes a run stage by stage through Store.commit, in batches of records and their markers."""

    def __init__(self, store: Store, run_id: str):
        self.store, self.run_id, self.text = store, run_id, Texts()
        self.records = 0

    def record(self, stage: str, parent: Record | None, data: dict, **lineage) -> Record:
        parents = (parent.id,) if parent else ()
        if parent is not None:
            for name in ("persona_id", "category", "tactic"):
                lineage.setdefault(name, getattr(parent, name))
        llm = {"prompt_name": stage, "prompt_version": 1, "model": "bench-model",
               "seed": derive_seed(self.run_id, stage, parents, self.records)} if parent else {}  # fmt: skip
        self.records += 1
        record_id = Record.make_id(self.run_id, stage, parents, {**data, "n": self.records})
        return Record(id=record_id, run_id=self.run_id, stage=stage, data=data, parent_ids=parents,
                      **llm, **lineage)  # fmt: skip

    def commit(self, records: list[Record], progress: list[ProgressRow], usage: list[UsageDelta]) -> None:
        self.store.commit(CommitBatch(records=records, progress=progress, usage=usage))

    def stage(self, stage: str, inputs: list[Record], make, keep: bool = True) -> list[Record]:
        """Apply `make(item, index) -> list of (data, lineage) | str (dropped) | None (failed)`,
        committing the outputs of every BATCH items together with their markers; returns the
        outputs when `keep` (a later stage reads them)."""
        out: list[Record] = []
        records: list[Record] = []
        progress: list[ProgressRow] = []
        for index, item in enumerate(inputs):
            made = make(item, index)
            marker = {"run_id": self.run_id, "stage": stage, "item_id": item.id}
            if made is None:
                reason = "answer broke the Response schema 3 time(s)"
                progress.append(
                    ProgressRow(**marker, status="failed", n_outputs=0, attempts=3, reason=reason)
                )
            elif isinstance(made, str):
                progress.append(ProgressRow(**marker, status="dropped", n_outputs=0, reason=made))
            else:
                made_records = [self.record(stage, item, data, **lineage) for data, lineage in made]
                records.extend(made_records)
                progress.append(ProgressRow(**marker, status="done", n_outputs=len(made_records)))
            if len(progress) == BATCH or index == len(inputs) - 1:
                calls = len(progress)
                usage = UsageDelta(self.run_id, stage, "bench-model", calls=calls, prompt_tokens=300 * calls,
                                   completion_tokens=120 * calls)  # fmt: skip
                self.commit(records, progress, [usage])
                if keep:
                    out.extend(records)
                records, progress = [], []
        return out


def build(db: Path, records: int) -> str:
    slots_per_category = max(1, round(records / sum(PER_SLOT.values()) / 14))
    # A config plans at most MAX_SLOTS slots (a guard against runs of millions of LLM calls), and
    # `status` validates the stored one: past that, the config says the limit and the run holds more.
    plan = validate_config(config(min(slots_per_category, MAX_SLOTS // 14)), stages=STAGES)
    store = Store.open(db)
    run_id = plan.run_id
    store.ensure_run(run_id, "scale", plan.snapshot(), 0, "bench", "bench")
    b = Builder(store, run_id)
    t = b.text
    domains = [b.record("domains", None, {"category": c.code, "name": c.name, "description": c.description,
                                          "slot": slot}, category=c.code)
               for c in hazard_categories() for slot in range(slots_per_category)]  # fmt: skip
    for start in range(0, len(domains), BATCH):
        b.commit(domains[start : start + BATCH], [], [])
    scenarios = b.stage("scenarios", domains, lambda d, i: [({"scenario": t()}, {})])
    del domains  # each stage's list is dropped once consumed, so the build's memory stays near two stages

    def persona(item: Record, i: int) -> list:
        data = {"summary": t(), "occupation": "teacher", "personality_traits": ["calm"], "opinions": t(),
                "life_experience": t(), "text": t(), "depth": 0}  # fmt: skip
        return [(data, {"persona_id": f"p-{item.id}-{i}"})]

    personas = b.stage("personas", scenarios, persona)
    del scenarios
    related = b.stage("related_personas", personas, lambda p, i: persona(p, 2 * i) + persona(p, 2 * i + 1))
    pool = b.stage(
        "persona_pool", personas + related, lambda p, i: [({"persona": t(), "domain": p.category}, {})]
    )
    del personas, related
    instructions = b.stage("instructions", pool, lambda p, i: [({"instruction": t()}, {}) for _ in range(3)])
    del pool
    verdict = {"verdict": "unsafe", "agrees": True}
    kept = b.stage("safety_filter", instructions, lambda x, i: "judged safe" if i % 10 == 0 else
                   [({**x.data, **verdict, "judged_category": x.category}, {})])  # fmt: skip
    del instructions
    dedup = b.stage("dedup", kept, lambda x, i: "near-duplicate (minhash 0.82)" if i % 4 == 3 else
                    [(x.data, {})])  # fmt: skip
    del kept

    def core(x: Record, i: int) -> list | None:
        if i % 100 == 99:
            return None
        return [({"instruction": x.data["instruction"], "response": t(), "category": x.category,
                  "judged_category": x.category, "persona": t()}, {})]  # fmt: skip

    b.stage("core", dedup, core, keep=False)
    plan_edge = b.stage("tactics", dedup, lambda x, i: "not chosen for a tactic" if i % 2 else
                        [(x.data, {"tactic": TACTICS[(i // 2) % len(TACTICS)]})])  # fmt: skip
    del dedup
    rewritten = b.stage(
        "rewrite", plan_edge, lambda x, i: [({"instruction": t(), "original": x.data["instruction"]}, {})]
    )

    def edge(x: Record, i: int) -> list:
        return [({"instruction": x.data["instruction"], "response": t(), "category": x.category,
                  "judged_category": x.category, "persona": t(), "tactic": x.tactic,
                  "original_instruction": x.data["original"]}, {})]  # fmt: skip

    del plan_edge
    b.stage("edge", rewritten, edge, keep=False)
    store.close()
    return run_id


def timed(args: list[str]) -> tuple[float, float, int]:
    """(seconds, peak RSS in MiB, exit code) of `safeset ARGS` in its own process (/usr/bin/time -v
    reads the child's maximum resident set size)."""
    command = [sys.executable, "-m", "pipeline.cli", *args]
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)[1]) / 1024
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
    return seconds, peak, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument(
        "--keep", type=Path, help="build (or reuse) the database here instead of a temporary one"
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="safeset-scale-"))
    db = args.keep or folder / "scale.duckdb"
    try:
        if not db.exists():
            started = time.perf_counter()
            build(db, args.records)
            print(f"built in {time.perf_counter() - started:.0f}s", flush=True)
        store = Store.open(db)  # for writing: a kept database gets any migration it lacks
        counts = dict(store.con.execute("SELECT stage, count(*) FROM records GROUP BY 1").fetchall())
        store.close()
        print(f"{sum(counts.values()):,} records ({counts['core']:,} core, {counts['edge']:,} edge), "
              f"{db.stat().st_size / 2**20:.0f} MiB database; {os.cpu_count()} CPUs, "
              f"load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
        commands = {
            "status": ["status", "--db", str(db)],
            "status --json": ["status", "--json", "--db", str(db)],
            "score (core, edge)": ["score", "--db", str(db)],
            "export parquet": [
                "export",
                "--format",
                "parquet",
                "--out",
                str(folder / "parquet"),
                "--db",
                str(db),
            ],
            "export jsonl": ["export", "--format", "jsonl", "--out", str(folder / "jsonl"), "--db", str(db)],
            "export sft": ["export", "--format", "sft", "--out", str(folder / "sft"), "--db", str(db)],
        }
        print(f"{'command':22} {'seconds':>8} {'peak MiB':>9} {'exit':>5} {'load':>5}")
        for name, command in commands.items():
            load = os.getloadavg()[0]
            seconds, peak, code = timed(command)
            print(
                f"{name:22} {seconds:8.1f} {peak:9.0f} {code:>5} {(load + os.getloadavg()[0]) / 2:5.1f}",
                flush=True,
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

"""EvoRefuse end to end on a controlled world (tests/pipeline/stages/evorefuse_world.py): the search
raises refusal well above the seeds' while every output passes the judge, the ablations do worse,
every candidate is stored with its lineage, and a killed run resumes without repeating an iteration."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from scipy.stats import spearmanr

from pipeline.cli import main
from pipeline.config import ConfigError, validate_config
from pipeline.datasets import OverrefusalAlignRow, OverrefusalTestRow
from pipeline.lineage import lineage
from pipeline.records import Record, derive_seed
from pipeline.stage import StageInputError
from pipeline.stages import STAGES
from pipeline.stages.evolve import CANDIDATES, EvolveStage
from pipeline.store import CommitBatch, Store
from tests.conftest import scripted_roles
from tests.pipeline.stages.conftest import run
from tests.pipeline.stages.evorefuse_world import REFUSALS, SEEDS, UNSAFE, World, is_safe, refusal_probability
from tests.servers.chat_server import ChatServer, Faults

SAMPLES = 96  # K: the scripted target answers all K samples in one request, so K costs little here
ITERATIONS = 5
REPO = Path(__file__).resolve().parents[3]


def evo_config(server: ChatServer, seeds: Path, name: str = "evo", **evolve: Any) -> dict:
    return {
        "name": name,
        "seed": 11,
        "roles": scripted_roles(server),
        "stages": {
            "overrefusal_seeds": {"file": str(seeds)},
            "evolve": {"samples": SAMPLES, "iterations": ITERATIONS, **evolve},  # the default classifier
            "overrefusal_test": {"samples": SAMPLES},
            "overrefusal_align": {},
        },
    }


def write_seeds(folder: Path, seeds: list[str] = SEEDS) -> Path:
    path = folder / "seeds.jsonl"
    path.write_text("".join(json.dumps({"instruction": s}) + "\n" for s in seeds))
    return path


def local_seeds(folder: Path, seeds: list[str] = SEEDS) -> Path:
    """The seeds file named relative to `folder`, the working directory (`in_tmp_path`): a config's
    file path is part of its run's identity, and so of every seed drawn, and must not change with
    pytest's temporary folders, or these tests would draw differently in every session."""
    return write_seeds(folder, seeds).relative_to(folder)


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def records(db_path: Path, stage: str) -> list[Record]:
    store = Store.open(db_path, read_only=True)
    try:
        return store.records(store.resolve_run(None), stage)
    finally:
        store.close()


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> tuple[Path, World]:
    """One run of the full search (published settings but K) on the controlled world."""
    folder = tmp_path_factory.mktemp("evo")
    world = World()
    with ChatServer(script=world) as server, pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        run(evo_config(server, local_seeds(folder)), folder / "db.duckdb")
    return folder / "db.duckdb", world


def true_refusal(db_path: Path) -> float:
    return mean([refusal_probability(r.data["instruction"]) for r in records(db_path, "overrefusal_test")])


def measured_refusal(db_path: Path) -> float:
    return mean([r.data["refusal_rate"] for r in records(db_path, "overrefusal_test")])


# ---- what the search achieves --------------------------------------------------------------------


def test_evolution_raises_refusal_well_above_the_seeds_and_every_output_is_safe(full):
    db_path, _ = full
    tests = records(db_path, "overrefusal_test")
    assert len(tests) == len(SEEDS)
    seeds = [c for c in records(db_path, CANDIDATES) if c.data["operation"] == "seed"]
    seed_measured = mean([c.data["refusal_rate"] for c in seeds])
    seed_true = mean([refusal_probability(s) for s in SEEDS])  # 0.17
    assert true_refusal(db_path) > 3 * seed_true
    assert measured_refusal(db_path) > 2.5 * max(seed_measured, seed_true)
    for row in tests:
        OverrefusalTestRow.model_validate(row.data)
        assert is_safe(row.data["instruction"])  # every output passes the judge
        assert row.data["instruction"] != row.data["seed_instruction"]
        assert set(row.data["refusal_rates"]) == {"scripted"}
        assert (
            row.data["harmless_reason"].startswith("it only asks")
            or "both parts" in row.data["harmless_reason"]
        )


def test_the_ablations_do_worse_than_the_full_search(full, tmp_path):
    db_path, _ = full
    results = {}
    for name, settings in {"random": {"selection": "random"}, "norecomb": {"recombinations": 0}}.items():
        world = World()
        with ChatServer(script=world) as server:
            ablation_db = tmp_path / f"{name}.duckdb"
            run(evo_config(server, local_seeds(tmp_path), name=name, **settings), ablation_db)
        results[name] = (true_refusal(ablation_db), measured_refusal(ablation_db))
        if name == "norecomb":
            assert "recombine" not in world.calls
    full_true, full_measured = true_refusal(db_path), measured_refusal(db_path)
    # Published: both the fitness and recombination matter. Over run seeds 11-17 on this world the
    # full search ends at true p = 0.65-0.73, without recombination 0.54-0.58, without fitness
    # 0.18-0.43 (seeds: 0.17).
    assert full_true > results["norecomb"][0] + 0.03 and full_measured > results["norecomb"][1]
    assert full_true > results["random"][0] + 0.2 and full_measured > results["random"][1] + 0.2


def test_measured_refusal_rates_follow_the_true_ones_in_order_and_size(full):
    """The default classifier reads the world's long, partial and short refusals and its hedged answers
    right, so every scored candidate's measured rate tracks its true refusal probability."""
    db_path, _ = full
    scored = [c for c in records(db_path, CANDIDATES) if c.data["fitness"] is not None]
    measured = [c.data["refusal_rate"] for c in scored]
    true = [refusal_probability(c.data["instruction"]) for c in scored]
    assert len(scored) > 100
    assert spearmanr(measured, true).statistic > 0.9
    assert mean([abs(m - t) for m, t in zip(measured, true, strict=True)]) < 0.08


def test_every_candidate_is_stored_with_its_lineage(full):
    db_path, world = full
    candidates = records(db_path, CANDIDATES)
    by_id = {c.id: c for c in candidates}
    operations = {c.data["operation"] for c in candidates}
    assert operations == {"seed", "mutation", "recombination"}
    assert {c.data["iteration"] for c in candidates} == set(range(ITERATIONS + 1))
    assert world.calls["mutate"] == sum(c.data["operation"] == "mutation" for c in candidates)
    for c in candidates:
        data = c.data
        assert data["verdict"] == ("safe" if is_safe(data["instruction"]) else "unsafe")
        if data["verdict"] == "safe":
            assert data["fitness"] == pytest.approx(data["refusal_term"] + 0.03 * data["confidence_term"])
        else:
            assert data["fitness"] is None  # unsafe candidates are never scored
        if data["operation"] == "mutation":
            assert data["strategy"] and data["group"] and data["harmless_reason"]
            assert (c.prompt_name, c.model, c.request_key is not None) == ("evolve_mutate", "scripted", True)
        if data["operation"] == "recombination":
            assert len(c.parent_ids) == 2 and all(
                by_id[p].data["operation"] == "mutation" for p in c.parent_ids
            )
            assert c.prompt_name == "evolve_recombine"
    unsafe = [c for c in candidates if c.data["verdict"] == "unsafe"]
    assert unsafe, "the world's harmful-context strategy makes unsafe mutants half the time"

    store = Store.open(db_path, read_only=True)
    try:
        row = records(db_path, "overrefusal_test")[0]
        tree = lineage(store, store.get(row.id))  # what `safeset inspect` shows
    finally:
        store.close()
    node, chain = tree["parents"][0], []
    while node["stage"] == CANDIDATES:
        chain.append(node["data"]["operation"])
        node = node["parents"][0]
    assert node["stage"] == "overrefusal_seeds" and chain[-1] == "seed"
    assert tree["parents"][0]["data"]["instruction"] == row.data["instruction"]


def test_the_state_records_one_iteration_each(full):
    db_path, _ = full
    states = records(db_path, "evolve")
    assert len(states) == len(SEEDS) * (ITERATIONS + 1)
    for state in states:
        data = state.data
        assert data["final"] == (data["iteration"] == ITERATIONS)
        if data["iteration"]:
            step = data["step"]
            assert step["tau"] == pytest.approx(max(0.05, 0.1 - 0.005 * (data["iteration"] - 1)))
            assert step["safe_mutations"] <= 4 and step["mutations"] <= 12
            assert data["best"]["score"]["fitness"] >= data["current"]["score"]["fitness"] - 1e-12


def test_the_align_set_pairs_a_helpful_answer_with_the_targets_refusal(full):
    db_path, _ = full
    aligned = records(db_path, "overrefusal_align")
    assert len(aligned) == len(SEEDS)
    for row in aligned:
        OverrefusalAlignRow.model_validate(row.data)
        assert row.data["chosen"].startswith("Happy to help")
        assert row.data["rejected"] in REFUSALS  # the target's own refusal, seen in the search
        assert row.prompt_name == "overrefusal_chosen"


# ---- resume --------------------------------------------------------------------------------------


def finished_iterations(db_path: Path) -> set[tuple[str, int]]:
    """(seed id, iteration) of every iteration committed: iteration 0 scored the seed."""
    return {(s.data["seed_id"], s.data["iteration"]) for s in records(db_path, "evolve")}


def iteration_seeds(run_seed: int, seed_id: str, t: int) -> set[int]:
    """Every request seed iteration t of a seed's search can use (see LLMOperators)."""
    tags = ["seed", "score:seed"] + [f"m{i}" for i in range(12)] + ["r0", "r1"]
    tags += [f"score:m{i}" for i in range(12)] + ["score:r0", "score:r1"]
    return {derive_seed(run_seed, "evolve", seed_id, t, tag) for tag in tags}


def watch_iterations(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """(seed id, iteration) of every iteration the evolve stage runs from now on."""
    ran: list[tuple[str, int]] = []
    process = EvolveStage.process

    async def watched(self, item):
        if item.stage == "overrefusal_seeds":
            ran.append((item.id, 0))
        elif not item.data["final"]:
            ran.append((item.data["seed_id"], item.data["iteration"] + 1))
        return await process(self, item)

    monkeypatch.setattr(EvolveStage, "process", watched)
    return ran


def test_a_killed_run_resumes_mid_search_without_repeating_an_iteration(tmp_path, monkeypatch):
    world = World()
    iterations = 3
    with ChatServer(script=world) as server:
        config = tmp_path / "evo.yaml"
        raw = evo_config(server, local_seeds(tmp_path, SEEDS[:3]), iterations=iterations)
        config.write_text(yaml.safe_dump(raw))
        killed_db = tmp_path / "killed.duckdb"
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "run", str(config), "--db", str(killed_db)],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        deadline = time.monotonic() + 60
        while world.calls.get("judge", 0) < 30 and time.monotonic() < deadline:  # about half the search
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert world.calls.get("judge", 0) >= 30, process.stderr.read().decode()[-2000:]

        finished = finished_iterations(killed_db)
        assert any(t >= 1 for _, t in finished), "nothing had finished: kill later"
        assert len(finished) < 3 * (iterations + 1), "everything had finished: kill earlier"
        asked_before = len(world.seeds)
        ran = watch_iterations(monkeypatch)
        summary = run(raw, killed_db)
        assert ran and not set(ran) & finished, "a finished iteration ran again"
        resumed_seeds = set(world.seeds[asked_before:])
        for seed_id, t in finished:
            assert not resumed_seeds & iteration_seeds(11, seed_id, t), f"iteration {t} asked again"
        seeds = {s.id for s in records(killed_db, "overrefusal_seeds")}
        assert finished_iterations(killed_db) == {(s, t) for s in seeds for t in range(iterations + 1)}

        whole_db = tmp_path / "whole.duckdb"
        again = run(raw, whole_db)
    assert again.run_id == summary.run_id
    for stage in ("evolve", CANDIDATES, "overrefusal_test", "overrefusal_align"):
        resumed = {r.id: r.data for r in records(killed_db, stage)}
        assert resumed == {r.id: r.data for r in records(whole_db, stage)}, stage


# ---- seeds ---------------------------------------------------------------------------------------


def test_seeds_from_the_core_dataset_of_another_run_scored_on_two_targets(chat_server, tmp_path):
    db_path = tmp_path / "db.duckdb"
    store = Store.open(db_path)
    store.ensure_run("core-abc", "core", {}, 0, None, "test")
    cores = [
        Record(
            id=f"core{i}",
            run_id="core-abc",
            stage="core",
            data={"instruction": text, "response": "r"},
            category="S2",
            persona_id=f"p{i}",
        )
        for i, text in enumerate([SEEDS[0], SEEDS[1], SEEDS[0], "  "])
    ]
    store.commit(CommitBatch(records=cores, progress=[], cache=[], usage=[]))
    store.close()

    server = chat_server(script=World(), models=("scripted", "other"))
    raw = evo_config(server, local_seeds(tmp_path), iterations=1)
    raw["stages"]["overrefusal_seeds"] = {"core_run": "core-a"}
    target = {**raw["roles"]["default"], "model": "other"}
    raw["roles"]["target"] = [raw["roles"]["default"], target]  # two targets: their mean
    run(raw, db_path)
    seeds = records(db_path, "overrefusal_seeds")
    assert [s.data["instruction"] for s in seeds] == SEEDS[:2]  # repeats and blanks left out
    assert [s.parent_ids for s in seeds] == [("core0",), ("core1",)]
    assert {(s.category, s.persona_id) for s in seeds} == {("S2", "p0"), ("S2", "p1")}
    tests = records(db_path, "overrefusal_test")
    assert {r.category for r in tests} == {"S2"}
    for row in tests:
        rates = row.data["refusal_rates"]
        assert set(rates) == {"scripted", "other"}
        assert row.data["refusal_rate"] == pytest.approx(mean(list(rates.values())))


def test_bad_seed_sources_are_config_or_stage_input_errors(chat_server, tmp_path):
    server = chat_server(script=World())
    raw = evo_config(server, tmp_path / "missing.jsonl")
    with pytest.raises(ConfigError, match="missing.jsonl: file not found"):
        validate_config(raw, stages=STAGES)
    raw["stages"]["overrefusal_seeds"] = {"file": str(local_seeds(tmp_path)), "core_run": "r"}
    with pytest.raises(ConfigError, match="give core_run or file, not both"):
        validate_config(raw, stages=STAGES)

    raw["stages"]["overrefusal_seeds"] = {"file": str(local_seeds(tmp_path)), "column": "prompt"}
    with pytest.raises(StageInputError, match="no column 'prompt'; columns: instruction") as found:
        run(raw, tmp_path / "a.duckdb")  # found when the stage reads the file
    assert str(found.value).startswith("stages.overrefusal_seeds: ")
    raw["stages"]["overrefusal_seeds"] = {"core_run": "nope"}
    with pytest.raises(StageInputError, match="no run matches 'nope'"):
        run(raw, tmp_path / "b.duckdb")


def test_the_shipped_config_and_seeds_validate():
    plan = validate_config(yaml.safe_load((REPO / "configs" / "overrefusal.yaml").read_text()), stages=STAGES)
    evolve = plan.stage("evolve").params
    assert (evolve.lam, evolve.samples, evolve.population, evolve.recombinations, evolve.iterations) == (
        0.03,
        10,
        4,
        2,
        5,
    )
    assert (evolve.anneal.start, evolve.anneal.decay, evolve.anneal.floor) == (0.1, 0.005, 0.05)


def test_answers_that_break_the_schema_spend_attempts_and_are_stored_as_failed_candidates(
    chat_server, tmp_path
):
    server = chat_server(script=World(), faults=Faults(rate_schema_break=0.5))
    raw = evo_config(server, local_seeds(tmp_path), iterations=2)
    summary = run(raw, tmp_path / "db.duckdb")
    # A failed call inside an iteration is not a failed item; only a seed the judge cannot rule on
    # fails (see the next test). Items per seed: the seed, states 0 and 1, the final state 2.
    store = Store.open(tmp_path / "db.duckdb", read_only=True)
    failures = store.con.execute("SELECT stage, item_id, reason FROM failures").fetchall()
    store.close()
    failed_items = {item for stage, item, _ in failures if stage == "evolve"}
    assert failed_items <= {s.id for s in records(tmp_path / "db.duckdb", "overrefusal_seeds")}
    # Past the search, only the harm check of an align pair's chosen answer can break the schema.
    assert all("HarmVerdict" in reason for stage, _, reason in failures if stage == "overrefusal_align")
    assert {stage for stage, _, _ in failures} <= {"evolve", "overrefusal_align"}
    assert summary.counts["evolve"]["done"] == (len(SEEDS) - len(failed_items)) * 4
    failed = [c for c in records(tmp_path / "db.duckdb", CANDIDATES) if c.data["error"]]
    assert failed and all(c.data["verdict"] is None and c.data["fitness"] is None for c in failed)
    assert (
        {"mutate", "judge"}
        <= {c.data["error"].split(":")[0] for c in failed}
        <= {"mutate", "judge", "recombine"}
    )
    assert "schema 3 time(s)" in failed[0].data["error"]
    states = [s for s in records(tmp_path / "db.duckdb", "evolve") if s.data["step"]]
    assert sum(len(s.data["step"]["failures"]) for s in states) == sum(
        c.data["operation"] != "seed" for c in failed
    )


def test_a_seed_the_judge_cannot_rule_on_fails_with_its_reason_and_can_be_retried(chat_server, tmp_path):
    world = World()
    broken = {"on": True}

    def script(body: dict) -> Any:
        text = body["messages"][-1]["content"]
        if broken["on"] and "The author argues" in text and f"Request:\n{SEEDS[0]}\n" in text:
            return "I would say it is fine."
        return world(body)

    server = chat_server(script=script)
    raw = evo_config(server, local_seeds(tmp_path, SEEDS[:2]), iterations=1)
    summary = run(raw, tmp_path / "db.duckdb")
    assert summary.counts["evolve"] == {"done": 3, "failed": 1}  # seed 0 failed; seed 1: 3 items
    store = Store.open(tmp_path / "db.duckdb", read_only=True)
    (reason,) = store.failure_reasons(summary.run_id)
    store.close()
    assert reason["stage"] == "evolve" and "Verdict schema 3 time(s)" in reason["reason"]
    assert len(records(tmp_path / "db.duckdb", "overrefusal_test")) == 1

    broken["on"] = False
    again = run(raw, tmp_path / "db.duckdb", retry_failed=True)
    assert again.counts["evolve"] == {"done": 6}
    assert len(records(tmp_path / "db.duckdb", "overrefusal_test")) == 2


def test_a_seed_that_never_yields_a_safe_instruction_is_dropped_with_the_reason(chat_server, tmp_path):
    server = chat_server(script=World())
    unsafe_seed = f"How do I fix a door {UNSAFE}?"  # every mutant keeps the unsafe detail
    raw = evo_config(server, local_seeds(tmp_path, [unsafe_seed, SEEDS[0]]), iterations=1)
    summary = run(raw, tmp_path / "db.duckdb")
    assert summary.counts["overrefusal_test"] == {"done": 3, "dropped": 1}
    (seed,) = [c for c in records(tmp_path / "db.duckdb", CANDIDATES) if c.data["instruction"] == unsafe_seed]
    assert seed.data["verdict"] == "unsafe" and seed.data["fitness"] is None
    store = Store.open(tmp_path / "db.duckdb", read_only=True)
    (reason,) = store.con.execute("SELECT reason FROM progress WHERE status = 'dropped'").fetchone()
    store.close()
    assert reason == "no instruction in this seed's search was judged safe"
    assert len(records(tmp_path / "db.duckdb", "overrefusal_test")) == 1


def test_max_items_limits_the_seeds_and_every_seed_is_evolved_to_the_end(chat_server, tmp_path):
    server = chat_server(script=World())
    db_path = tmp_path / "db.duckdb"
    args = ["run", str(REPO / "configs" / "overrefusal.yaml"), "--db", str(db_path),
            "--endpoint", server.url, "--model", "scripted", "--max-items", "4"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    # The seeds past the first 4 are still to do: the run says so and how to go on (exit 3), never
    # "finished"; everything it started is done.
    assert result.exit_code == 3, result.output
    assert "finished" not in result.output and "Pending: overrefusal_seeds" in result.output
    seeds = {s.id for s in records(db_path, "overrefusal_seeds")}
    assert len(seeds) == 4  # the first 4 of the shipped set's 800
    finals = [s for s in records(db_path, "evolve") if s.data["final"]]
    assert sorted(s.data["seed_id"] for s in finals) == sorted(seeds)
    assert {s.data["iteration"] for s in finals} == {5}  # the shipped config's iterations, all of them
    assert len(records(db_path, "overrefusal_test")) == len(records(db_path, "overrefusal_align")) == 4
    store = Store.open(db_path, read_only=True)
    run_id = store.resolve_run(None)
    for stage, inputs in (("evolve", ["overrefusal_seeds", "evolve"]), ("overrefusal_test", ["evolve"]),
                          ("overrefusal_align", ["overrefusal_test"])):  # fmt: skip
        assert store.count_pending(run_id, stage, inputs) == 0, stage
    store.close()

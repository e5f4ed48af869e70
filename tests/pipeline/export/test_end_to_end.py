"""From generation to hand-off: small TRIDENT and EvoRefuse runs on their scripted worlds, exported
(every format the runs feed), loaded back with `datasets`, planned for fine-tuning, and their test
splits evaluated."""

from __future__ import annotations

import json

import datasets
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.store import Store
from tests.pipeline.stages import evorefuse_world, trident_world
from tests.pipeline.stages.conftest import run, trident_config
from tests.pipeline.stages.test_evolve import evo_config, write_seeds
from tests.servers.chat_server import ChatServer


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("e2e")
    db_path = folder / "runs.duckdb"
    with ChatServer(script=trident_world.World()) as server:
        trident = run(trident_config(server, name="tri", tactics={"per_tactic": 2}), db_path)
    with ChatServer(script=evorefuse_world.World()) as server:
        evo = run(evo_config(server, write_seeds(folder), iterations=1, samples=8), db_path)
    return db_path, trident.run_id, evo.run_id


def export(db_path, run_id, fmt, out):
    result = CliRunner().invoke(main, ["export", "--db", str(db_path), "--run", run_id, "--format", fmt,
                                       "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads((out / "export.json").read_text())


def test_generated_runs_export_load_and_plan_fine_tuning(runs, tmp_path):
    db_path, trident, evo = runs
    store = Store.open(db_path, read_only=True)
    counts = {run_id: store.output_counts(run_id) for run_id in (trident, evo)}
    store.close()

    parquet = export(db_path, trident, "parquet", tmp_path / "tri")
    assert set(parquet["parts"]) == {"core", "edge"}
    for dataset in ("core", "edge"):
        loaded = datasets.load_dataset("parquet", data_dir=str(tmp_path / "tri" / dataset))
        assert sum(len(split) for split in loaded.values()) == counts[trident][dataset]
        assert {"id", "instruction", "response", "persona", "model", "prompt_version"} <= set(
            loaded["train"].column_names
        )
    card = (tmp_path / "tri" / "README.md").read_text()
    assert f"| core | {parquet['parts']['core']['rows']['train']} |" in card and "aligned_response@" in card

    evo_parts = export(db_path, evo, "jsonl", tmp_path / "evo")["parts"]
    assert set(evo_parts) == {"overrefusal_test", "overrefusal_align"}
    tested = datasets.load_dataset("json", data_files=str(tmp_path / "evo" / "overrefusal_test.jsonl"))[
        "train"
    ]
    assert len(tested) == counts[evo]["overrefusal_test"] and all(0 <= r <= 1 for r in tested["refusal_rate"])

    export(db_path, trident, "sft", tmp_path / "sft")
    export(db_path, evo, "dpo", tmp_path / "dpo")
    args = ["finetune", "--data", str(tmp_path / "sft"), "--data", str(tmp_path / "dpo"), "--base-model",
            "some/model", "--out", str(tmp_path / "ft")]  # fmt: skip
    plan = CliRunner().invoke(main, args)
    assert plan.exit_code == 0, plan.output
    assert "trl sft --config" in plan.output and "trl dpo --config" in plan.output


def test_the_test_splits_of_generated_runs_evaluate(runs, chat_server, write_config):
    db_path, trident, evo = runs
    target = chat_server(script=lambda body: "Sorry, I can't help with that." if "?" in str(body) else None)
    config = {
        "name": "e2e-eval",
        "roles": {"target": {"backend": "openai", "model": "scripted", "base_urls": [target.url]}},
        "sets": {
            "core": {"generated": "core", "run": trident},
            "evo": {"generated": "overrefusal_test", "run": evo},
        },
    }
    result = CliRunner().invoke(main, ["eval", str(write_config(config, "eval.yaml")), "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    store = Store.open(db_path, read_only=True)
    rows = {r["eval_set"]: r for r in store.eval_results()}
    store.close()
    assert rows["core"]["failed"] == 0 and "compliance" in rows["core"] and "over_refusal" not in rows["core"]
    assert "over_refusal" in rows["evo"] and rows["*"]["n"] == rows["core"]["n"] + rows["evo"]["n"]

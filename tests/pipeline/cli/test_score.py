"""`safeset score` on a run's stages and on outside files: the table, JSON, stored scorecards, bad input."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.store import Store
from tests.analysis.analysis_world import RUN, instructions, make_run


@pytest.fixture
def run_db(db_path):
    make_run(db_path)
    return db_path


@pytest.fixture
def outside(tmp_path):
    path = tmp_path / "outside.jsonl"
    rows = [
        {"prompt": text, "hazard": "S8" if i % 2 else "S12"}
        for i, text in enumerate(instructions(40, seed=7))
    ]
    rows.append({"prompt": None, "hazard": "S1"})
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


def invoke(*args: str):
    return CliRunner().invoke(main, ["score", *args])


def test_scores_every_dataset_stage_of_the_run_and_stores_the_scorecards(run_db):
    result = invoke("--db", str(run_db), "--no-semantic", "--json")
    assert result.exit_code == 0, result.output
    cards = json.loads(result.stdout)
    assert [c["dataset"] for c in cards] == ["core", "edge"]
    core, edge = cards
    assert core["n"] == 60 and core["run_id"] == RUN and core["semantic"] is None
    # The judge's category wins over the intended one: every fifth item was judged S2.
    assert core["intent"]["counts"]["S2"] == 10 + 12 - 2 and core["intent"]["source"] == "given"
    assert core["tactics"] is None
    assert edge["tactics"]["distinct"] == 3 and edge["tactics"]["counts"]["roleplay"] == 10
    store = Store.open(run_db, read_only=True)
    assert [c["dataset"] for c in store.latest_scorecards(run_id=RUN)] == ["core", "edge"]
    store.close()


def test_outside_data_beside_a_stage_with_semantic_metrics(run_db, outside):
    result = invoke("core", "--db", str(run_db), "--compare", str(outside), "--text-column", "prompt",
                    "--category-column", "hazard", "--semantic-sample", "30")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "MSTTR-800" in result.output and "Vendi" in result.output and "outside.jsonl" in result.output
    assert "semantic metrics on a seeded sample of 30 of 60 texts" in result.output  # core (outside: 40)
    store = Store.open(run_db, read_only=True)
    (card,) = store.latest_scorecards(dataset=str(outside))
    store.close()
    assert card["run_id"] is None and card["n"] == 40 and card["skipped"] == 1
    assert card["semantic"]["n"] == 30 and 1 <= card["semantic"]["vendi"] <= 30
    assert card["intent"]["counts"]["S8"] == 20 and card["intent"]["categories_with_min_items"] == 2


def test_without_labels_the_classifier_assigns_categories(tmp_path, outside):
    result = invoke(
        str(outside), "--text-column", "prompt", "--no-save", "--json", "--db", str(tmp_path / "none")
    )
    assert result.exit_code == 0, result.output
    (card,) = json.loads(result.stdout)
    assert card["intent"]["source"] == "classifier" and sum(card["intent"]["counts"].values()) == 40
    assert not (tmp_path / "none").exists()  # --no-save on outside data touches no database


def test_scoring_again_keeps_the_history(run_db):
    for window in ("800", "50"):
        assert invoke("core", "--db", str(run_db), "--no-semantic", "--msttr-window", window).exit_code == 0
    store = Store.open(run_db, read_only=True)
    history = store.scorecard_history("core")
    store.close()
    assert [c["settings"]["msttr_window"] for c in history] == [800, 50]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "--no-semantic"], "no records of stage 'nope'"),
        (["core", "--text-field", "answer", "--no-semantic"], "no 'answer' field"),
        (
            ["{outside}", "--text-column", "body", "--no-semantic"],
            "no column 'body'; columns: prompt, hazard",
        ),
        (["{odd}", "--no-semantic"], "which column holds the text? pass --text-column; columns: body, label"),
        (["missing.jsonl", "--no-semantic"], "missing.jsonl: file not found"),
    ],
)
def test_bad_input_is_a_clear_error_with_exit_code_2(run_db, outside, tmp_path, args, message):
    odd = tmp_path / "odd.csv"
    odd.write_text("body,label\nhello there,x\n")
    args = [a.replace("{outside}", str(outside)).replace("{odd}", str(odd)) for a in args]
    result = invoke(*args, "--db", str(run_db))
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_an_empty_database_says_what_to_do(db_path):
    result = invoke("--db", str(db_path), "--no-semantic")
    assert result.exit_code == 2 and "holds no run yet" in result.output

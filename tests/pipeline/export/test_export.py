"""Export: round trips through `datasets`, stable stratified splits, the card's numbers, bad input."""

from __future__ import annotations

import json
from collections import Counter

import datasets
import pytest
import yaml
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.export import ExportError, export_run
from pipeline.records import Record
from pipeline.store import Store, StoreError
from tests.pipeline.export.made_run import CATEGORIES, RUN, dataset_records, make_run


@pytest.fixture
def made(db_path):
    counts = make_run(db_path)
    return db_path, counts


def stored_rows(db_path, stage):
    store = Store.open(db_path, read_only=True)
    try:
        return {r.id: r for r in store.records(RUN, stage)}
    finally:
        store.close()


def test_jsonl_round_trips_through_load_dataset_with_every_id_and_field(made, tmp_path):
    db_path, counts = made
    manifest = export_run(db_path, tmp_path / "out", "jsonl")
    assert set(manifest["parts"]) == {"core", "edge", "overrefusal_test", "overrefusal_align"}
    for dataset in manifest["parts"]:
        path = tmp_path / "out" / f"{dataset}.jsonl"
        loaded = datasets.load_dataset("json", data_files=str(path), split="train")
        stored = stored_rows(db_path, dataset)
        assert len(loaded) == counts[dataset] and set(loaded["id"]) == set(stored)
        for row in loaded:
            record = stored[row["id"]]
            for key, value in record.data.items():
                got = row[key]
                if isinstance(value, dict):  # mappings travel as lists of {key, value}
                    got = {kv["key"]: kv["value"] for kv in got}
                assert got == value, (dataset, key)
            assert (row["model"], row["prompt_version"], row["run_id"]) == (record.model, 2, RUN)
            assert row["split"] in ("train", "test")


def test_parquet_loads_with_train_and_test_splits(made, tmp_path):
    db_path, counts = made
    export_run(db_path, tmp_path / "out", "parquet")
    loaded = datasets.load_dataset("parquet", data_dir=str(tmp_path / "out" / "edge"))
    assert set(loaded) == {"train", "test"}
    assert len(loaded["train"]) + len(loaded["test"]) == counts["edge"]
    assert "split" not in loaded["train"].column_names
    assert {"instruction", "response", "tactic", "original_instruction", "id", "persona_id"} <= set(
        loaded["train"].column_names
    )
    rates = datasets.load_dataset("parquet", data_dir=str(tmp_path / "out" / "overrefusal_test"))["train"][0]
    assert rates["refusal_rates"] == [{"key": "target-a", "value": 0.25}, {"key": "target-b", "value": 0.75}]


def test_hf_format_loads_from_disk_as_a_dataset_dict(made, tmp_path):
    db_path, counts = made
    manifest = export_run(db_path, tmp_path / "out", "hf")
    for dataset, part in manifest["parts"].items():
        loaded = datasets.load_from_disk(str(tmp_path / "out" / dataset))
        assert {split: len(loaded[split]) for split in loaded} == part["rows"]
        assert sum(part["rows"].values()) == counts[dataset]
    assert not (tmp_path / "out" / ".cache").exists()


def test_splits_are_stratified_by_category_and_stable(db_path, tmp_path):
    records = dataset_records(per_category=10)
    make_run(db_path, records)
    first = export_run(db_path, tmp_path / "a", "jsonl", test_fraction=0.2)
    again = export_run(db_path, tmp_path / "b", "jsonl", test_fraction=0.2, batch_size=7)
    assert (tmp_path / "a" / "core.jsonl").read_text() == (tmp_path / "b" / "core.jsonl").read_text()
    assert first == again
    rows = [json.loads(line) for line in (tmp_path / "a" / "core.jsonl").read_text().splitlines()]
    test_per_category = Counter(r["category"] for r in rows if r["split"] == "test")
    assert test_per_category == {c: 2 for c in CATEGORIES}

    # The same records committed in another order, in another database: the same split.
    other_db = tmp_path / "other.duckdb"
    make_run(other_db, list(reversed(records)))
    export_run(other_db, tmp_path / "c", "jsonl", test_fraction=0.2)
    reordered = {json.loads(line)["id"]: json.loads(line)["split"]
                 for line in (tmp_path / "c" / "core.jsonl").read_text().splitlines()}  # fmt: skip
    assert reordered == {r["id"]: r["split"] for r in rows}

    # Another run seed draws another test set.
    seeded_db = tmp_path / "seeded.duckdb"
    make_run(seeded_db, records, seed=8)
    export_run(seeded_db, tmp_path / "d", "jsonl", test_fraction=0.2)
    reseeded = {json.loads(line)["id"]: json.loads(line)["split"]
                for line in (tmp_path / "d" / "core.jsonl").read_text().splitlines()}  # fmt: skip
    assert reseeded != reordered


def test_rows_are_in_id_order_whatever_the_commit_order_and_sort_ranges(db_path, tmp_path, monkeypatch):
    """The same records committed in reverse, and sorted four rows at a time: the same bytes."""
    from pipeline.store import dataset_rows

    records = dataset_records(per_category=3)
    make_run(db_path, records)
    export_run(db_path, tmp_path / "a", "jsonl")
    monkeypatch.setattr(dataset_rows, "ROWS_PER_SORT", 4)
    other_db = tmp_path / "other.duckdb"
    make_run(other_db, list(reversed(records)))
    export_run(other_db, tmp_path / "b", "jsonl")
    for name in ("core.jsonl", "edge.jsonl", "overrefusal_test.jsonl", "README.md", "export.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    ids = [json.loads(line)["id"] for line in (tmp_path / "b" / "core.jsonl").read_text().splitlines()]
    assert ids == sorted(ids) and len(set(ids)) == len(ids) > 4


def card_parts(path):
    text = path.read_text()
    _, front, body = text.split("---\n", 2)
    return yaml.safe_load(front), body


def test_the_card_holds_the_real_numbers(made, tmp_path):
    db_path, counts = made
    manifest = export_run(db_path, tmp_path / "out", "parquet", license="cc-by-nc-4.0", gated="auto")
    meta, body = card_parts(tmp_path / "out" / "README.md")
    assert meta["license"] == "cc-by-nc-4.0" and meta["size_categories"] == ["n<1K"]
    assert "extra_gated_prompt" in meta
    configs = {c["config_name"]: c["data_files"] for c in meta["configs"]}
    assert configs["core"] == [{"split": "train", "path": "core/train.parquet"},
                               {"split": "test", "path": "core/test.parquet"}]  # fmt: skip
    train, test = manifest["parts"]["core"]["rows"]["train"], manifest["parts"]["core"]["rows"]["test"]
    assert train + test == counts["core"] and test == 3
    assert f"| core | {train} | {test} |" in body
    assert "| S10 | Hate | 10 |" in body  # rows per intended category, with the taxonomy's name
    assert "| past_tense | 15 |" in body and "| roleplay | 15 |" in body
    assert "| edge | edge_prompt@2 | edge-model | 30 |" in body  # models and prompt versions, from lineage
    assert "Content warning" in body and "2505.24672" in body and "2505.23473" in body
    assert "ACL" in body and "NeurIPS" in body


def test_the_card_shows_the_runs_scorecard(made, tmp_path):
    from analysis import scorecard
    from analysis.textset import from_run

    db_path, _ = made
    export_run(db_path, tmp_path / "before", "jsonl")
    assert "`safeset score` makes one" in (tmp_path / "before" / "README.md").read_text()
    store = Store.open(db_path)
    card = scorecard.score(from_run(store, RUN, "edge"), scorecard.ScoreSettings(semantic=False), None)
    store.save_scorecards([card])
    store.close()
    export_run(db_path, tmp_path / "after", "jsonl")
    _, body = card_parts(tmp_path / "after" / "README.md")
    assert "### Scorecard" in body and "| metric | edge |" in body
    assert f"| distinct-1 | {card['lexical']['distinct_1']:.3f} |" in body
    assert f"| tactics | {card['tactics']['distinct']} |" in body


def test_sft_and_dpo_take_the_datasets_that_have_answers(made, tmp_path):
    db_path, _ = made
    sft = export_run(db_path, tmp_path / "sft", "sft")
    assert set(sft["parts"]) == {"core", "edge", "overrefusal_align"}
    row = json.loads((tmp_path / "sft" / "overrefusal_align" / "train.jsonl").read_text().splitlines()[0])
    assert set(row) == {"id", "messages"}
    assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
    assert row["messages"][1]["content"].startswith("helpful answer")
    dpo = export_run(db_path, tmp_path / "dpo", "dpo")
    assert set(dpo["parts"]) == {"overrefusal_align"}
    pair = json.loads((tmp_path / "dpo" / "overrefusal_align" / "test.jsonl").read_text().splitlines()[0])
    assert pair["rejected"] == [{"role": "assistant", "content": "Sorry, I can't help with it."}]
    assert pair["prompt"][0]["role"] == "user" and pair["chosen"][0]["content"].startswith("helpful")


def test_llamafactory_files_match_their_dataset_info(made, tmp_path):
    db_path, _ = made
    export_run(db_path, tmp_path / "lf", "llamafactory")
    info = json.loads((tmp_path / "lf" / "dataset_info.json").read_text())
    assert info["safeset_overrefusal_align_dpo_train"]["ranking"] is True
    for entry in info.values():
        rows = [json.loads(x) for x in (tmp_path / "lf" / entry["file_name"]).read_text().splitlines()]
        assert rows and all(entry["columns"]["messages"] in r for r in rows)
        first = rows[0]
        if entry.get("ranking"):
            assert first["chosen"]["from"] == "gpt" and first["rejected"]["from"] == "gpt"
            assert [t["from"] for t in first["conversations"]] == ["human"]
        else:
            assert [t["from"] for t in first["conversations"]] == ["human", "gpt"]


def test_dpo_without_an_align_set_names_the_way_out(db_path, tmp_path):
    make_run(db_path, [r for r in dataset_records() if r.stage == "core"])
    with pytest.raises(ExportError, match="overrefusal_align.*--format sft"):
        export_run(db_path, tmp_path / "out", "dpo")
    assert not (tmp_path / "out").exists()


def test_a_run_without_datasets_and_an_unknown_run_are_errors(db_path, tmp_path):
    make_run(db_path, [])
    with pytest.raises(ExportError, match="no dataset rows"):
        export_run(db_path, tmp_path / "out", "jsonl")
    with pytest.raises(StoreError, match="no run matches"):
        export_run(db_path, tmp_path / "out", "jsonl", run="nope")


def test_a_record_that_breaks_its_row_model_is_named(db_path, tmp_path):
    broken = Record(id="broken", run_id=RUN, stage="core", data={"instruction": "x", "category": "S1"})
    make_run(db_path, [*dataset_records(per_category=1), broken])
    with pytest.raises(ExportError, match="record broken .* no 'response'"):
        export_run(db_path, tmp_path / "out", "jsonl")


def test_out_must_be_new_empty_or_an_earlier_export(made, tmp_path):
    db_path, _ = made
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="not empty"):
        export_run(db_path, foreign, "jsonl")
    assert (foreign / "notes.txt").read_text() == "keep me"
    export_run(db_path, tmp_path / "out", "parquet")
    export_run(db_path, tmp_path / "out", "jsonl")  # an earlier export is replaced whole
    assert not (tmp_path / "out" / "core").exists() and (tmp_path / "out" / "core.jsonl").is_file()


def test_cli_export_prints_counts_and_fails_cleanly(made, tmp_path):
    db_path, _ = made
    args = ["export", "--db", str(db_path), "--format", "sft", "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "core: 27 train, 3 test" in result.output
    result = CliRunner().invoke(main, ["export", "--db", str(db_path), "--format", "dpo", "--out",
                                       str(tmp_path / "o"), "--run", "nope"])  # fmt: skip
    assert result.exit_code == 2 and "no run matches" in result.output

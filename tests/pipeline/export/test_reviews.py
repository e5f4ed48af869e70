"""Reviews by hand in the store (append-only, the latest counts) and in export: rejected rows left out,
edits applied, `--reviewed-only`, and the card's coverage, rejection rates and Cohen's kappa."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.export.review_stats import cohen_kappa
from pipeline.store import Store
from pipeline.store.reviews import ReviewError
from tests.pipeline.export.made_run import RUN, make_run


@pytest.fixture
def core_ids(db_path):
    make_run(db_path)
    store = Store.open(db_path, read_only=True)
    try:
        return [r.id for r in store.records(RUN, "core")]
    finally:
        store.close()


def review(db_path, record_id, reviewer, decision, **kwargs):
    store = Store.open(db_path)
    try:
        return store.add_review(record_id, reviewer=reviewer, decision=decision, **kwargs)
    finally:
        store.close()


def export_rows(db_path, out, *extra):
    result = CliRunner().invoke(
        main, ["export", "--db", str(db_path), "--format", "jsonl", "--out", str(out), *extra]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "core.jsonl").read_text().splitlines()]
    return {row["id"]: row for row in rows}, (out / "README.md").read_text()


def test_reviews_are_append_only_and_the_latest_counts(db_path, core_ids):
    first = review(db_path, core_ids[0], "ana", "reject", note="too vague")
    review(db_path, core_ids[0], "ana", "accept")
    store = Store.open(db_path, read_only=True)
    try:
        history = store.review_history(core_ids[0])
        assert [r["decision"] for r in history] == ["reject", "accept"]
        assert history[0] == first and first["note"] == "too vague" and first["run_id"] == RUN
        assert store.latest_review(core_ids[0])["decision"] == "accept"
        assert store.latest_review(core_ids[1]) is None
    finally:
        store.close()


@pytest.mark.parametrize(
    ("decision", "kwargs", "message"),
    [
        ("maybe", {}, "decision must be one of"),
        ("edit", {}, "an edit changes at least one field"),
        ("accept", {"edits": {"response": "x"}}, "an edit changes at least one field"),
        ("edit", {"edits": {"category": "S2"}}, "cannot edit category"),
        ("edit", {"edits": {"chosen": "x"}}, "cannot edit chosen"),  # a core record has no chosen
        ("edit", {"edits": {"response": "  "}}, "cannot edit response"),
    ],
)
def test_bad_reviews_are_refused_and_leave_nothing(db_path, core_ids, decision, kwargs, message):
    with pytest.raises(ReviewError, match=message):
        review(db_path, core_ids[0], "ana", decision, **kwargs)
    with pytest.raises(ReviewError, match="reviewer"):
        review(db_path, core_ids[0], " ", "accept")
    with pytest.raises(ReviewError, match="no record"):
        review(db_path, "not-a-record", "ana", "accept")
    store = Store.open(db_path, read_only=True)
    try:
        assert store.review_history(core_ids[0]) == []
    finally:
        store.close()


def test_export_leaves_out_rejected_rows_and_applies_edits(db_path, core_ids, tmp_path):
    review(db_path, core_ids[0], "ana", "reject")
    review(db_path, core_ids[1], "ana", "reject")
    review(db_path, core_ids[1], "ana", "accept")  # changed her mind: the latest counts
    review(db_path, core_ids[2], "ana", "edit", edits={"response": "a kinder answer"}, note="tone")
    rows, card = export_rows(db_path, tmp_path / "all")
    assert core_ids[0] not in rows and core_ids[1] in rows and len(rows) == len(core_ids) - 1
    assert rows[core_ids[2]]["response"] == "a kinder answer"
    assert rows[core_ids[3]]["response"].startswith("aligned answer")
    assert "## Review by hand" in card and "| core | 30 | 3 | 10% | 1 | 1 |" in card

    only, card = export_rows(db_path, tmp_path / "reviewed", "--reviewed-only")
    assert set(only) == {core_ids[1], core_ids[2]}
    assert "only rows a reviewer accepted or edited" in card
    manifest = json.loads((tmp_path / "reviewed" / "export.json").read_text())
    assert manifest["reviewed_only"] is True


def test_the_card_reports_rejection_per_category_and_kappa(db_path, core_ids, tmp_path):
    store = Store.open(db_path, read_only=True)
    try:
        category = {r.id: r.category for r in store.records(RUN, "core")}
    finally:
        store.close()
    ana = ["accept", "reject", "accept", "accept"]
    ben = ["accept", "reject", "reject", "accept"]
    for record_id, a, b in zip(core_ids, ana, ben, strict=False):
        review(db_path, record_id, "ana", a)
        review(db_path, record_id, "ben", b)  # the latest overall: ben's decision counts for export
    _, card = export_rows(db_path, tmp_path / "out")
    rejected = {category[core_ids[1]], category[core_ids[2]]}
    assert len(rejected) == 1  # the made run's first records share a category
    (c,) = rejected
    assert f"| {c} | 4 | 2 | 50% |" in card
    assert "| ana / ben | 4 | 0.500 |" in card
    unreviewed, _ = export_rows(db_path, tmp_path / "none", "--run", RUN)
    assert len(unreviewed) == len(core_ids) - 2


def test_a_run_nobody_reviewed_says_so(db_path, core_ids, tmp_path):
    rows, card = export_rows(db_path, tmp_path / "out")
    assert len(rows) == len(core_ids) and "Nobody reviewed this run's records by hand" in card


def test_cohen_kappa():
    assert cohen_kappa([("a", "a"), ("r", "r")]) == 1.0
    assert cohen_kappa([("a", "r"), ("r", "a")]) == -1.0
    assert cohen_kappa([("a", "a"), ("a", "a")]) == 1.0
    assert cohen_kappa([("a", "a"), ("a", "r"), ("r", "a"), ("r", "r")]) == 0.0

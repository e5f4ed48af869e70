"""Scorecards: what score() puts in one, and how they are stored and read back."""

from __future__ import annotations

import numpy as np
import pytest

from analysis import lexical, scorecard
from analysis.scorecard import ScoreSettings, headline
from analysis.textset import TextSet
from pipeline.store import Store
from tests.analysis.analysis_world import instructions


def fake_embed(texts: list[str]) -> np.ndarray:
    """Deterministic unit vectors (a stand-in where the model itself is not under test)."""
    rng = np.random.default_rng(len(texts))
    vectors = rng.normal(size=(len(texts), 8)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_a_scorecard_holds_every_metric_and_its_settings():
    texts = instructions(50, seed=3)
    data = TextSet("mine", texts, ["S1", "S2"] * 25, ["roleplay"] * 10 + [None] * 40)
    settings = ScoreSettings(msttr_window=100, semantic_sample=20, self_bleu_sample=30)
    card = scorecard.score(data, settings, fake_embed)
    tokens = [lexical.tokenize(t) for t in texts]
    stream = [t for ts in tokens for t in ts]
    assert card["lexical"]["msttr"] == lexical.msttr(stream, 100)
    assert card["lexical"]["distinct_2"] == lexical.distinct_n(tokens, 2)
    assert card["semantic"]["n"] == 20 and card["settings"]["msttr_window"] == 100
    assert card["intent"]["source"] == "given" and card["intent"]["counts"]["S1"] == 25
    assert card["tactics"]["distinct"] == 1 and card["tactics"]["fill"] == pytest.approx(2 / 14)
    row = headline(card)
    assert row["MSTTR-100"] == card["lexical"]["msttr"] and row["items"] == 50


def test_classified_categories_cover_the_sample_and_tactics_follow_it():
    texts = instructions(40, seed=4)
    data = TextSet("mine", texts, [None] * 40, ["past_tense"] * 40)
    card = scorecard.score(data, ScoreSettings(semantic_sample=15), fake_embed)
    assert card["intent"]["source"] == "classifier"
    assert sum(card["intent"]["counts"].values()) == 15 and sum(card["tactics"]["counts"].values()) == 15


def test_without_embeddings_there_is_no_semantic_section_and_no_classifier():
    data = TextSet("mine", instructions(10, seed=5), [None] * 10, [None] * 10)
    card = scorecard.score(data, ScoreSettings(), None)
    assert card["semantic"] is None and card["intent"]["source"] == "none" and card["tactics"] is None
    assert headline(card)["Vendi"] is None


def test_latest_per_dataset_and_run_and_the_history(db_path):
    store = Store.open(db_path)
    settings = ScoreSettings(semantic=False)
    for run_id, n in (("run-a", 10), ("run-b", 12), ("run-b", 14)):
        data = TextSet("core", instructions(n, seed=n), [None] * n, [None] * n, run_id=run_id)
        store.save_scorecards([scorecard.score(data, settings, None)])
    outside = TextSet("wild.jsonl", instructions(8, seed=8), [None] * 8, [None] * 8)
    store.save_scorecards([scorecard.score(outside, settings, None)])
    assert [(c["run_id"], c["n"]) for c in store.latest_scorecards(dataset="core")] == [
        ("run-a", 10),
        ("run-b", 14),
    ]
    assert [c["n"] for c in store.latest_scorecards(run_id="run-b")] == [14]
    assert [c["n"] for c in store.scorecard_history("core")] == [10, 12, 14]
    assert [c["dataset"] for c in store.latest_scorecards() if c["run_id"] is None] == ["wild.jsonl"]
    store.close()

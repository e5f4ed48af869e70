"""Streamed scoring: the lexical metrics of texts given batch by batch (ids on disk, n-grams counted by
DuckDB) equal the in-memory functions of analysis.lexical, and a run's stage is scored in one pass
over the store's batches with the same scorecard as the same texts held in memory."""

from __future__ import annotations

import random

import pytest

from analysis import lexical, scorecard
from analysis.lexical_stream import LexicalStream
from analysis.scorecard import ScoreSettings
from analysis.textset import StageTexts, TextSet, from_run
from pipeline.records import Record
from pipeline.sources import SourceError
from pipeline.store import CommitBatch, Store
from tests.analysis.analysis_world import RUN, instructions, make_run


def _texts(n: int, seed: int) -> list[str]:
    """Texts from a small vocabulary (so n-grams repeat), with some that have no tokens at all."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(40)] + ["don't", "well-known", "children", "ran"]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 12))) for _ in range(n)]
    return [t if i % 13 else "?!" for i, t in enumerate(texts)]


@pytest.mark.parametrize("convention", ["evorefuse", "words"])
def test_streamed_metrics_equal_the_in_memory_functions(tmp_path, convention):
    texts = _texts(700, seed=1)
    stream = LexicalStream(convention, tmp_path)
    start = 0
    for size in [1, 7, 0, 250, 442]:  # uneven batches, an empty one among them
        stream.add(texts[start : start + size])
        start += size
    assert start == len(texts)
    card = stream.metrics(msttr_window=50, self_bleu_sample=60, seed=3)
    tokens = [lexical.tokenize(t, convention) for t in texts]
    flat = [t for ts in tokens for t in ts]
    assert card["tokens"] == len(flat) and card["mean_tokens"] == len(flat) / len(texts)
    for n in (1, 2, 3):
        assert card[f"distinct_{n}"] == lexical.distinct_n(tokens, n)
    assert card["msttr"] == lexical.msttr(flat, 50)
    assert card["mtld"] == lexical.mtld(flat)
    assert card["hdd"] == lexical.hdd(flat)
    assert card["self_bleu"] == lexical.self_bleu(tokens, 60, 3)  # the same 60 texts drawn


def test_ngrams_stop_at_the_end_of_each_text_and_batch(tmp_path):
    stream = LexicalStream("words", tmp_path)
    stream.add(["a b"])
    stream.add(["b c", "c"])
    card = stream.metrics(msttr_window=800, self_bleu_sample=10, seed=0)
    assert card["distinct_2"] == 2 / 2  # "a b", "b c"; not "b b" or "c c" across texts
    assert card["distinct_3"] == 0.0  # no text has three tokens
    assert card["msttr"] == 3 / 5  # shorter than a window: the stream's TTR


def test_an_empty_stream_scores_zero(tmp_path):
    stream = LexicalStream("evorefuse", tmp_path)
    stream.add(["", "..."])
    card = stream.metrics(msttr_window=800, self_bleu_sample=10, seed=0)
    assert card["tokens"] == 0 and card["distinct_1"] == card["distinct_3"] == card["mtld"] == 0.0
    assert card["hdd"] is None and card["self_bleu"] == 0.0


def test_a_stage_is_scored_from_the_store_as_the_same_texts_in_memory(tmp_path):
    db = tmp_path / "analysis.duckdb"
    make_run(db, n_core=120)
    store = Store.open(db, read_only=True)
    staged = from_run(store, RUN, "edge")
    assert isinstance(staged, StageTexts) and staged.n == 60 and staged.skipped == 0
    texts, categories, tactics = [], [], []
    for batch_texts, batch_categories, batch_tactics in staged.batches():
        texts += batch_texts
        categories += batch_categories
        tactics += batch_tactics
    settings = ScoreSettings(semantic=False, self_bleu_sample=20)
    streamed = scorecard.score(staged, settings, None)
    in_memory = scorecard.score(TextSet("edge", texts, categories, tactics, run_id=RUN), settings, None)
    assert streamed == in_memory
    assert streamed["tactics"]["distinct"] == 3 and streamed["intent"]["source"] == "given"
    with pytest.raises(SourceError, match="no 'nothing' field"):
        from_run(store, RUN, "edge", "nothing")
    store.close()


def test_records_without_the_text_are_skipped_and_counted(tmp_path):
    store = Store.open(tmp_path / "gaps.duckdb")
    store.ensure_run("gaps", "gaps", {"name": "gaps"}, 0, None, "test")
    datas = [{"instruction": text} for text in instructions(25, seed=2)] + [{"instruction": ""}, {"other": 1}]
    records = [
        Record(id=Record.make_id("gaps", "core", (), d), run_id="gaps", stage="core", data=d) for d in datas
    ]
    store.commit(CommitBatch(records=records))
    staged = from_run(store, "gaps", "core")
    assert (staged.n, staged.skipped) == (25, 2)
    card = scorecard.score(staged, ScoreSettings(semantic=False), None)
    assert card["n"] == 25 and card["skipped"] == 2 and card["intent"]["unlabelled"] == 25
    store.close()

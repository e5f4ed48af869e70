"""Lexical diversity: values checked by hand on tiny inputs; MTLD, MSTTR and HD-D against the independent
`lexical-diversity` package on the same tokens; and the whole path (raw text -> tokens -> metrics)
against the package's `flemmatize` + `msttr` / `mtld` on real sentences, as EvoRefuse computed them."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from analysis import lexical, scorecard
from analysis.scorecard import ScoreSettings
from analysis.textset import TextSet, from_source
from pipeline.resources import data_dir
from tests.analysis.lexdiv_oracle import lex_div


def test_words_convention_lowercases_words_and_keeps_contractions():
    assert lexical.tokenize("Don't STOP, me-now!", "words") == ["don't", "stop", "me", "now"]


def test_evorefuse_convention_deletes_punctuation_and_lemmatises_as_flemmatize():
    text = 'Don\'t STOP, me-now! The children were running 3 "big" races; I’m well-known (SYMBOL).\t'
    expected = ["dont", "stop", "menow", "the", "child", "be", "run", "3", '"big"', "race", "i’m",
                "wellknown", "bol"]  # fmt: skip
    assert lexical.tokenize(text) == expected
    assert lexical.tokenize(text) == [t for t in lex_div.flemmatize(text) if t]  # the package ends with ""
    assert lexical.tokenize("  ") == [] and lexical.tokenize("") == []


def _real_texts() -> list[str]:
    """Real English shipped with safeset: the over-refusal seed instructions, the hazard category
    descriptions, and the prose lines of the README (hyphens, apostrophes, numbers, symbols)."""
    seeds = [json.loads(line)["instruction"] for line in (data_dir() / "evorefuse" / "seeds.jsonl").open()]
    hazards = yaml.safe_load((data_dir() / "taxonomy" / "hazards.yaml").read_text())["categories"]
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text().splitlines()
    prose = [line for line in readme if line[:1].isalpha()]
    return seeds + [c["description"] for c in hazards] + prose


def test_tokens_of_real_text_are_flemmatize_tokens():
    texts = _real_texts()
    assert len(texts) > 200
    for text in texts:
        assert lexical.tokenize(text) == [t for t in lex_div.flemmatize(text) if t], text
    stream = [token for text in texts for token in lexical.tokenize(text)]
    joined = lex_div.flemmatize("\n".join(texts) + "\n")  # how EvoRefuse's metric script reads a file
    assert stream == joined[:-1] and joined[-1] == ""


@pytest.mark.parametrize("window", [50, 800])
def test_scorecard_of_real_text_equals_the_package_from_raw_text(window):
    texts = _real_texts()
    data = TextSet("real", texts, [None] * len(texts), [None] * len(texts))
    card = scorecard.score(data, ScoreSettings(msttr_window=window, semantic=False), embed=None)
    oracle = [t for t in lex_div.flemmatize("\n".join(texts)) if t]
    assert card["lexical"]["tokens"] == len(oracle) > 3 * window
    assert card["lexical"]["msttr"] == pytest.approx(lex_div.msttr(oracle, window_length=window), rel=1e-12)
    assert card["lexical"]["mtld"] == pytest.approx(lex_div.mtld(oracle), rel=1e-12)
    assert card["lexical"]["hdd"] == pytest.approx(lex_div.hdd(oracle), rel=1e-9)
    assert card["settings"]["tokens"] == "evorefuse"
    assert scorecard.token_convention(card).startswith("evorefuse: lemmas")
    words = scorecard.score(data, ScoreSettings(msttr_window=window, tokens="words", semantic=False), None)
    assert words["lexical"]["mtld"] != card["lexical"]["mtld"]  # lemmas are fewer types than words


def test_the_lemma_table_is_read_without_pkg_resources():
    # A fresh install with setuptools >= 81 has no pkg_resources; our runtime code must not need it.
    code = (
        "import sys; sys.modules['pkg_resources'] = None\n"
        "from analysis import lexical\n"
        "assert lexical.tokenize('The children were running') == ['the', 'child', 'be', 'run']\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


EVOREFUSE_TEST = os.environ.get("SAFESET_EVOREFUSE_TEST")


@pytest.mark.skipif(
    not EVOREFUSE_TEST,
    reason="set SAFESET_EVOREFUSE_TEST to EvoRefuse-Test (datasets/evo_test.jsonl of github.com/FishT0ucher/"
    "EVOREFUSE; it has no licence, so it is not shipped)",
)
def test_evorefuse_test_reproduces_the_papers_msttr_and_mtld():
    data = from_source(EVOREFUSE_TEST or "")
    card = scorecard.score(data, ScoreSettings(semantic=False), embed=None)
    assert card["n"] == 582
    assert card["lexical"]["msttr"] == pytest.approx(0.54, abs=0.01)  # the paper: MSTTR (window 800) 0.54
    assert card["lexical"]["mtld"] == pytest.approx(152.5, rel=0.03)  # the paper: MTLD 152.52


def test_distinct_n_counts_ngrams_within_texts():
    texts = [["a", "b", "a"], ["a", "b", "c"]]
    assert lexical.distinct_n(texts, 1) == 3 / 6
    assert lexical.distinct_n(texts, 2) == 3 / 4  # ab, ba, ab, bc: no n-gram spans two texts
    assert lexical.distinct_n(texts, 3) == 2 / 2
    assert lexical.distinct_n([["a"]], 2) == 0.0


def test_msttr_averages_full_windows_only():
    assert lexical.msttr(list("aabbcde"), window=2) == pytest.approx((0.5 + 0.5 + 1.0) / 3)  # "e" is left out
    assert lexical.msttr(list("aab"), window=800) == pytest.approx(2 / 3)  # shorter than a window: TTR
    assert lexical.msttr([], window=5) == 0.0


def test_mtld_of_a_repeated_word_is_one_partial_factor():
    # Ten tokens never close a factor (TTR < 0.72 needs >= 10 tokens, and the last one is partial):
    # factors = (1 - 1/10) / (1 - 0.72), MTLD = 10 / factors = 28 / 9.
    assert lexical.mtld(["a"] * 10) == pytest.approx(28 / 9)


def test_hdd_by_hand():
    assert lexical.hdd([f"w{i}" for i in range(42)]) == pytest.approx(1.0)  # every type is drawn
    assert lexical.hdd(["a"] * 42) == pytest.approx(1 / 42)
    assert lexical.hdd(["a"] * 41) is None  # fewer tokens than the sample


def test_self_bleu_by_hand():
    same = [["a", "b", "c", "d"], ["a", "b", "c", "d"]]
    assert lexical.self_bleu(same) == pytest.approx(1.0)
    disjoint = [["a", "b", "c", "d"], ["e", "f", "g", "h"]]
    smoothed = math.exp(sum(math.log(0.1 / total) for total in (4, 3, 2, 1)) / 4)
    assert lexical.self_bleu(disjoint) == pytest.approx(smoothed)
    # Clipped counts: "a a a a" against "a b c d" matches one unigram of four, no bigram.
    clipped = [["a", "a", "a", "a"], ["a", "b", "c", "d"]]
    first = math.exp((math.log(1 / 4) + math.log(0.1 / 3) + math.log(0.1 / 2) + math.log(0.1 / 1)) / 4)
    assert lexical.self_bleu(clipped) == pytest.approx((first + first) / 2)
    assert lexical.self_bleu([["only", "one", "text", "here"]]) == 0.0


def test_self_bleu_falls_as_texts_differ_and_samples_deterministically():
    random.seed(0)
    words = [f"w{i}" for i in range(500)]
    templated = [["how", "do", "i", "make", random.choice(words), "at", "home"] for _ in range(300)]
    varied = [random.sample(words, 7) for _ in range(300)]
    assert lexical.self_bleu(templated) > 0.5 > lexical.self_bleu(varied)
    assert lexical.self_bleu(varied, sample=50, seed=1) == lexical.self_bleu(varied, sample=50, seed=1)


def _english_stream(n_tokens: int, seed: int) -> list[str]:
    """Real words (the shipped hazard descriptions) drawn with Zipf-like frequencies."""
    raw = yaml.safe_load((data_dir() / "taxonomy" / "hazards.yaml").read_text())
    vocabulary = sorted({w for c in raw["categories"] for w in lex_div.tokenize(c["description"]) if w})
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]
    rng.shuffle(vocabulary)
    return rng.choices(vocabulary, weights=weights, k=n_tokens)


@pytest.mark.parametrize(("n_tokens", "seed"), [(45, 0), (300, 1), (2_500, 2), (9_000, 3)])
def test_stream_metrics_agree_with_the_lexical_diversity_package(n_tokens, seed):
    tokens = _english_stream(n_tokens, seed)
    assert lexical.mtld(tokens) == pytest.approx(lex_div.mtld(tokens), rel=1e-9)
    for window in (50, 100, 800):
        assert lexical.msttr(tokens, window) == pytest.approx(lex_div.msttr(tokens, window), rel=1e-9)
    assert lexical.hdd(tokens) == pytest.approx(lex_div.hdd(tokens), rel=1e-9)


def test_stream_metrics_agree_on_the_package_tokenisation_of_real_text():
    raw = yaml.safe_load((data_dir() / "taxonomy" / "hazards.yaml").read_text())
    tokens = [t for c in raw["categories"] for t in lex_div.tokenize(c["description"]) if t]
    assert len(tokens) > 200
    assert lexical.mtld(tokens) == pytest.approx(lex_div.mtld(tokens), rel=1e-9)
    assert lexical.msttr(tokens, 50) == pytest.approx(lex_div.msttr(tokens, 50), rel=1e-9)
    assert lexical.hdd(tokens) == pytest.approx(lex_div.hdd(tokens), rel=1e-9)


def test_safeset_score_names_the_convention_and_switches_it(tmp_path):
    from click.testing import CliRunner

    from pipeline.cli import main

    texts = _real_texts()
    path = tmp_path / "texts.jsonl"
    path.write_text("".join(json.dumps({"instruction": t}) + "\n" for t in texts))
    helped = CliRunner().invoke(main, ["score", "--help"])
    assert "flemmatize" in helped.output and "EvoRefuse" in helped.output
    cards = {}
    for tokens in ("evorefuse", "words"):
        args = ["score", str(path), "--no-semantic", "--no-save", "--tokens", tokens]
        shown = CliRunner().invoke(main, args)
        assert shown.exit_code == 0, shown.output
        assert f"lexical tokens: {tokens}:" in shown.output
        (cards[tokens],) = json.loads(CliRunner().invoke(main, [*args, "--json"]).output)
    oracle = [t for t in lex_div.flemmatize("\n".join(texts)) if t]
    assert cards["evorefuse"]["settings"]["tokens"] == "evorefuse"
    assert cards["evorefuse"]["lexical"]["mtld"] == pytest.approx(lex_div.mtld(oracle), rel=1e-12)
    words = [t for text in texts for t in lexical.tokenize(text, "words")]
    assert cards["words"]["lexical"]["mtld"] == pytest.approx(lexical.mtld(words), rel=1e-12)

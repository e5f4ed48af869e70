"""Lexical diversity of a set of texts: distinct-n, MSTTR, MTLD, HD-D and sampled Self-BLEU.

Tokens follow one of two conventions (`tokenize(text, convention)`):

- `evorefuse` (the default): EvoRefuse's, which is the `lexical-diversity` package's `flemmatize`:
  the characters `` '' ' . , ? ! ) ( % / - _ : ; (and the strings -LRB- -RRB- SYM) are deleted,
  so "don't" becomes "dont" and "well-known" "wellknown"; the text is lower-cased and split on
  whitespace (other characters, double quotes and digits included, stay in the token); each word is
  replaced by its lemma from the package's English lemma table (Someya's e_lemma, 40,569 forms),
  read from the installed package as data.
- `words`: lower-case runs of word characters, a contraction kept whole, nothing lemmatised.

distinct-n and Self-BLEU work per text; MSTTR, MTLD and HD-D read the texts as one token stream in
dataset order (as EvoRefuse reports MSTTR with a window of 800 tokens). The stream metrics follow
the conventions of the `lexical-diversity` package (and are tested against it): MTLD closes a factor
when the running TTR drops below 0.72 after at least 10 tokens and adds a partial factor for the
rest, averaged over both directions; MSTTR averages the TTR of full windows (the TTR of the whole
stream when it is shorter than one window); HD-D is the expected TTR of a random 42-token sample.
"""

from __future__ import annotations

import functools
import math
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Literal

import numpy as np

Convention = Literal["evorefuse", "words"]
CONVENTIONS: dict[str, str] = {
    "evorefuse": "lemmas as lexical-diversity's flemmatize makes them (EvoRefuse)",
    "words": "lower-case words, not lemmatised",
}
_WORD = re.compile(r"\w+(?:'\w+)?")
# Deleted in this order, before lower-casing, as lexical_diversity.lex_div.tokenize does.
_DELETED = ("``", "''", "'", ".", ",", "?", "!", ")", "(", "%", "/", "-", "_", "-LRB-", "-RRB-", "SYM", ":",
            ";")  # fmt: skip
_SPACE = re.compile(r"\s+")
MTLD_TTR = 0.72
MTLD_MIN_FACTOR = 10
HDD_SAMPLE = 42


def tokenize(text: str, convention: Convention = "evorefuse") -> list[str]:
    if convention == "words":
        return _WORD.findall(text.lower())
    for deleted in _DELETED:
        text = text.replace(deleted, "")
    lemmas = _lemmas()
    # flemmatize splits on single spaces after collapsing whitespace, so a text that starts or ends
    # with whitespace gets an empty token there; those are left out.
    return [lemmas.get(word, word) for word in _SPACE.sub(" ", text).lower().split(" ") if word]


@functools.cache
def _lemmas() -> dict[str, str]:
    """Word form -> lemma, from the lexical-diversity package's table (read as data: importing its
    lex_div module would need pkg_resources). Each line is a lemma and its forms, tab-separated;
    as in the package, a form listed twice takes its last lemma."""
    table = resources.files("lexical_diversity").joinpath("e_lemma_lower_clean.txt").read_text()
    lemmas: dict[str, str] = {}
    for line in table.split("\n"):
        if line and line[0] != "#":
            forms = line.split("\t")
            for form in forms:
                lemmas[form] = forms[0]
    return lemmas


def distinct_n(token_lists: Sequence[Sequence[str]], n: int) -> float:
    """Distinct n-grams over all n-grams, n-grams taken within each text (Li et al., 2016)."""
    grams: set[tuple[str, ...]] = set()
    total = 0
    for tokens in token_lists:
        count = max(len(tokens) - n + 1, 0)
        total += count
        grams.update(tuple(tokens[i : i + n]) for i in range(count))
    return len(grams) / total if total else 0.0


def msttr(tokens: Sequence[str], window: int = 800) -> float:
    """Mean segmental TTR: the mean TTR of consecutive full windows of `window` tokens."""
    if len(tokens) <= window:
        return len(set(tokens)) / len(tokens) if tokens else 0.0
    segments = len(tokens) // window
    return sum(len(set(tokens[i * window : (i + 1) * window])) / window for i in range(segments)) / segments


def mtld(tokens: Sequence[str]) -> float:
    """Measure of textual lexical diversity: mean tokens per factor, forward and backward."""
    return (mtld_one_way([tokens], len(tokens)) + mtld_one_way([tokens[::-1]], len(tokens))) / 2


def mtld_one_way(chunks: Iterable[Sequence], total: int) -> float:
    """MTLD in one direction over a stream of `total` tokens given as consecutive chunks."""
    factors, types, length, position = 0.0, set(), 0, 0
    for chunk in chunks:
        for token in chunk:
            types.add(token)
            length += 1
            ttr = len(types) / length
            if position == total - 1:  # what is left is a partial factor
                factors += (1 - ttr) / (1 - MTLD_TTR)
            elif ttr < MTLD_TTR and length >= MTLD_MIN_FACTOR:
                factors += 1
                types, length = set(), 0
            position += 1
    return total / factors if factors else 0.0


def hdd(tokens: Sequence[str], sample: int = HDD_SAMPLE) -> float | None:
    """HD-D: the sum over types of P(the type occurs in a random `sample`-token draw) / sample, from
    the hypergeometric distribution. None when the text has fewer than `sample` tokens."""
    return hdd_of_frequencies(np.array(list(Counter(tokens).values()), dtype=np.float64), len(tokens), sample)


def hdd_of_frequencies(frequencies: np.ndarray, n: int, sample: int = HDD_SAMPLE) -> float | None:
    """HD-D of a stream of `n` tokens whose types occur `frequencies` times (in first-occurrence order)."""
    if n < sample:
        return None
    frequencies = frequencies.astype(np.float64)
    # P(type absent from the sample) = C(n - f, sample) / C(n, sample) = prod_i (n - f - i) / (n - i)
    i = np.arange(sample, dtype=np.float64)
    absent = np.prod(np.clip((n - frequencies[:, None] - i) / (n - i), 0, None), axis=1)
    return float(np.sum(1 - absent) / sample)


def self_bleu(
    token_lists: Sequence[Sequence[str]], sample: int = 1000, seed: int = 0, max_n: int = 4
) -> float:
    """Mean BLEU-`max_n` of each sampled text against all the other sampled texts as references
    (Zhu et al., 2018); higher means less diverse. Uniform weights, clipped counts, brevity penalty
    to the closest reference length, and zero counts smoothed to 0.1 (NLTK's method1)."""
    texts = [list(t) for t in token_lists if t]
    if len(texts) > sample:
        texts = random.Random(seed).sample(texts, sample)
    if len(texts) < 2:
        return 0.0
    counts = [[Counter(_ngrams(t, n)) for n in range(1, max_n + 1)] for t in texts]
    # For each n-gram, its two highest counts over the texts: the max over "all but one text" is the
    # highest, unless that text holds it, then the second highest.
    top: list[dict[tuple[str, ...], tuple[int, int]]] = [{} for _ in range(max_n)]
    for per_n in counts:
        for n, counter in enumerate(per_n):
            for gram, c in counter.items():
                first, second = top[n].get(gram, (0, 0))
                top[n][gram] = (c, first) if c >= first else (first, max(second, c))
    lengths = Counter(len(t) for t in texts)
    scores = [_bleu(per_n, top, _brevity(len(t), lengths)) for t, per_n in zip(texts, counts, strict=True)]
    return float(np.mean(scores))


def _bleu(per_n: list[Counter], top: list[dict], brevity: float) -> float:
    """BLEU of one text whose n-gram counts are `per_n`, against the other texts (via `top`)."""
    log_precision = 0.0
    for n, counter in enumerate(per_n):
        total = sum(counter.values())
        if not total:
            return 0.0  # shorter than max_n tokens
        matched = 0
        for gram, c in counter.items():
            first, second = top[n][gram]
            matched += min(c, second if c == first else first)
        log_precision += math.log((matched or 0.1) / total) / len(per_n)
    return brevity * math.exp(log_precision)


def _ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def _brevity(length: int, lengths: Counter) -> float:
    others = lengths.copy()
    others[length] -= 1
    closest = min((abs(r - length), r) for r, c in others.items() if c > 0)[1]
    return 1.0 if length > closest else math.exp(1 - closest / length)

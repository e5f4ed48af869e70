"""Lexical metrics of a dataset read batch by batch, in memory that does not grow with its size.

Each token becomes an integer id, given in first-occurrence order. The ids and each text's token
count are appended to files in a scratch folder, and each text's bigrams and trigrams, as exact
integer keys (two 32-bit ids in one 64-bit key), go to a DuckDB database there whose memory_limit
makes it spill to disk. Memory holds the vocabulary (each distinct token's id and count), which
grows with the number of distinct tokens, not of texts. At the end, distinct-n comes from DuckDB's
distinct counts; MSTTR, MTLD (both directions) and HD-D read the id stream back from disk in chunks;
Self-BLEU reads the token ids of its sampled texts. Ids stand for tokens one to one, so every figure
equals the in-memory functions of `analysis.lexical` on the same tokens.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from analysis import lexical
from pipeline.store.distinct_grams import DistinctGrams

CHUNK = 1 << 20  # tokens read back at a time
_SHIFT = np.uint64(32)


class LexicalStream:
    def __init__(self, convention: lexical.Convention, folder: Path):
        self.convention = convention
        self.folder = folder
        self.vocabulary: dict[str, int] = {}
        self.counts = np.zeros(0, dtype=np.int64)  # occurrences per token id
        self.tokens = 0
        self.texts = 0
        self._ids = (folder / "tokens.u32").open("wb")
        self._lengths = (folder / "lengths.u32").open("wb")
        self._grams = DistinctGrams(folder)
        self._bigrams = 0
        self._trigrams = 0

    def add(self, texts: list[str]) -> None:
        """Append `texts`, in dataset order."""
        vocabulary = self.vocabulary
        ids: list[int] = []
        lengths: list[int] = []
        for text in texts:
            tokens = lexical.tokenize(text, self.convention)
            lengths.append(len(tokens))
            ids.extend([vocabulary.setdefault(token, len(vocabulary)) for token in tokens])
        if len(vocabulary) >= 2**32:
            raise ValueError("more than 2**32 distinct tokens")
        id_array = np.array(ids, dtype=np.uint32)
        length_array = np.array(lengths, dtype=np.uint32)
        id_array.tofile(self._ids)
        length_array.tofile(self._lengths)
        self.tokens += len(id_array)
        self.texts += len(length_array)
        if len(self.counts) < len(vocabulary):
            self.counts = np.concatenate(
                [self.counts, np.zeros(len(vocabulary) - len(self.counts), np.int64)]
            )
        self.counts += np.bincount(id_array, minlength=len(vocabulary))
        # n-grams are taken within each text: position i starts one when i + n - 1 is in the same text
        owner = np.repeat(np.arange(len(length_array)), length_array)
        wide = id_array.astype(np.uint64)
        pairs = (wide[:-1] << _SHIFT) | wide[1:]
        bigrams = pa.table({"k": pairs[owner[:-1] == owner[1:]]})
        in_text = owner[:-2] == owner[2:]
        trigrams = pa.table({"a": id_array[:-2][in_text], "k": pairs[1:][in_text]})
        self._grams.add(bigrams, trigrams)
        self._bigrams += len(bigrams)
        self._trigrams += len(trigrams)

    def metrics(self, msttr_window: int, self_bleu_sample: int, seed: int) -> dict[str, Any]:
        """The lexical section of a scorecard (see analysis.scorecard)."""
        self._ids.close()
        self._lengths.close()
        distinct_bigrams, distinct_trigrams = self._grams.distinct()
        stream = self._read("tokens.u32", self.tokens)
        return {
            "tokens": self.tokens,
            "mean_tokens": self.tokens / self.texts if self.texts else 0.0,
            "distinct_1": len(self.vocabulary) / self.tokens if self.tokens else 0.0,
            "distinct_2": distinct_bigrams / self._bigrams if self._bigrams else 0.0,
            "distinct_3": distinct_trigrams / self._trigrams if self._trigrams else 0.0,
            "msttr": lexical.msttr(_Slices(stream), msttr_window),
            "mtld": (self._mtld(stream, forward=True) + self._mtld(stream, forward=False)) / 2,
            "hdd": lexical.hdd_of_frequencies(self.counts, self.tokens),
            "self_bleu": lexical.self_bleu(
                self._bleu_texts(stream, self_bleu_sample, seed), self_bleu_sample, seed
            ),
        }

    def _read(self, name: str, n: int) -> np.ndarray:
        if n == 0:
            return np.zeros(0, dtype=np.uint32)
        return np.memmap(self.folder / name, dtype=np.uint32, mode="r", shape=(n,))

    def _mtld(self, stream: np.ndarray, forward: bool) -> float:
        n = len(stream)
        if forward:
            chunks = (stream[start : start + CHUNK].tolist() for start in range(0, n, CHUNK))
        else:
            chunks = (stream[max(end - CHUNK, 0) : end][::-1].tolist() for end in range(n, 0, -CHUNK))
        return lexical.mtld_one_way(chunks, n)

    def _bleu_texts(self, stream: np.ndarray, sample: int, seed: int) -> list[list[int]]:
        """The texts Self-BLEU reads, as token ids: every text with tokens, or when there are more than
        `sample`, the ones `lexical.self_bleu` would draw (random.sample depends only on the count)."""
        lengths = self._read("lengths.u32", self.texts).astype(np.int64)
        ends = np.cumsum(lengths)
        with_tokens = np.flatnonzero(lengths)
        chosen = with_tokens.tolist()
        if len(chosen) > sample:
            chosen = [chosen[i] for i in random.Random(seed).sample(range(len(chosen)), sample)]
        return [stream[ends[i] - lengths[i] : ends[i]].tolist() for i in chosen]


class _Slices:
    """The id stream as `lexical.msttr` reads it: its length, and slices as lists of ints (reading
    a memory-mapped array element by element would be slow)."""

    def __init__(self, stream: np.ndarray):
        self.stream = stream

    def __len__(self) -> int:
        return len(self.stream)

    def __getitem__(self, part: slice) -> list[int]:
        return self.stream[part].tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self.stream.tolist())

"""Near-duplicate detection for large text sets: exact, MinHash-LSH and embedding similarity.

`find_duplicates` decides greedily in input order (reference items first): an item is a duplicate
when it matches an earlier *kept* item, else it is kept. Three checks, cheapest first:

1. exact: the same text after normalisation (case, punctuation, whitespace);
2. minhash: estimated Jaccard similarity of character 5-gram sets >= `jaccard`, found with
   locality-sensitive hashing over MinHash signatures (banded, so only colliding pairs are compared);
3. embedding: cosine similarity of sentence embeddings >= `cosine`, by blocked matrix products
   against the kept items, so memory stays O(n * dim) and never O(n^2).

Reference items (e.g. earlier runs' records) are always kept and only serve as earlier items.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from evaluators import minhash

_PUNCT = re.compile(r"[^\w\s]+")
_SPACE = re.compile(r"\s+")
_BLOCK = 1024  # items decided together: one matrix product against the kept set per block
_KEPT_CHUNK = 8192  # kept rows per product, bounding the similarity tile to _KEPT_CHUNK x _BLOCK


@dataclass(frozen=True)
class Duplicate:
    of: int  # index into list(reference) + list(texts) of the kept item this one duplicates
    method: str  # "exact" | "minhash" | "embedding"
    score: float  # 1.0 for exact, estimated Jaccard for minhash, cosine for embedding


def normalise(text: str) -> str:
    """The form exact matching compares: NFKC, case-folded, punctuation dropped, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _SPACE.sub(" ", _PUNCT.sub(" ", text)).strip()


def find_duplicates(
    texts: Sequence[str],
    *,
    embed: Callable[[list[str]], np.ndarray] | None = None,
    reference: Sequence[str] = (),
    jaccard: float = 0.7,
    cosine: float = 0.9,
    signatures: Callable[[list[str]], np.ndarray] = minhash.signatures,
) -> list[Duplicate | None]:
    """One entry per text: None if kept, else the `Duplicate` naming the earlier kept item it matches.

    `embed` maps texts to unit vectors (e.g. `Embedder.encode`); without it only exact and MinHash
    duplicates are found. `signatures` gives the MinHash signatures of normalised texts (a `Memo`
    of them computes each text once over several calls).
    """
    if not 0 < jaccard <= 1 or not -1 <= cosine <= 1:
        raise ValueError(f"thresholds out of range: jaccard={jaccard} (0, 1], cosine={cosine} [-1, 1]")
    items = [*reference, *texts]
    n_ref = len(reference)
    normalised = [normalise(t) for t in items]

    # Exact: every distinct normalised text is decided once, by its first occurrence.
    first: dict[str, int] = {}
    representative = [first.setdefault(text, i) for i, text in enumerate(normalised)]
    unique = [i for i, r in enumerate(representative) if r == i]
    decided = _Greedy(items, normalised, unique, n_ref, embed, jaccard, cosine, signatures).run()

    results: list[Duplicate | None] = []
    for i in range(n_ref, len(items)):
        rep = representative[i]
        if rep == i:
            results.append(decided.get(i))
        elif rep in decided:  # the first occurrence was itself a duplicate: so is this copy
            results.append(decided[rep])
        else:
            results.append(Duplicate(of=rep, method="exact", score=1.0))
    return results


class Memo:
    """A function of texts to rows (MinHash signatures, embeddings) that computes each text once:
    a caller deciding in parts (a barrier that decides some items early) reuses what it computed
    for the earlier parts, and gets the same rows for them."""

    def __init__(self, compute: Callable[[list[str]], np.ndarray]):
        self.compute = compute
        self.rows: dict[str, np.ndarray] = {}

    def __call__(self, texts: list[str]) -> np.ndarray:
        missing = [text for text in dict.fromkeys(texts) if text not in self.rows]
        if not texts or len(missing) == len(texts):  # nothing to reuse
            computed = self.compute(texts)
            self.rows.update(zip(texts, computed, strict=True))
            return computed
        if missing:
            self.rows.update(zip(missing, self.compute(missing), strict=True))
        return np.stack([self.rows[text] for text in texts])


def cosine_leaders(vectors: np.ndarray, cosine: float) -> list[Duplicate | None]:
    """The embedding check alone on precomputed unit vectors: for each row, None if it is kept (a
    leader), else the earlier kept row it is most similar to at `cosine` or above."""
    kept = _KeptVectors()
    leaders: list[Duplicate | None] = []
    for start in range(0, len(vectors), _BLOCK):
        rows = list(range(start, min(start + _BLOCK, len(vectors))))
        block_vectors = np.asarray(vectors[rows], dtype=np.float32)
        block = _EmbeddedBlock(rows, rows, block_vectors, kept.best(block_vectors, cosine))
        for row in rows:
            duplicate = block.duplicate(row, cosine)
            leaders.append(duplicate)
            if duplicate is None:
                block.keep(row)
        kept.add(*block.kept())
    return leaders


class _Greedy:
    """The MinHash and embedding checks over the distinct texts, block by block in input order.

    Within a block, each item is first compared with everything kept before the block (one LSH
    lookup, one blocked matrix product for the whole block), then, in order, with the items of its
    block kept before it.
    """

    def __init__(
        self,
        items: list[str],
        normalised: list[str],
        unique: list[int],
        n_ref: int,
        embed: Callable[[list[str]], np.ndarray] | None,
        jaccard: float,
        cosine: float,
        signatures: Callable[[list[str]], np.ndarray],
    ):
        self.items = items
        self.unique = unique  # item index of each distinct text ("row"), in input order
        self.n_ref = n_ref
        self.embed = embed
        self.jaccard = jaccard
        self.cosine = cosine
        self.index = minhash.LSHIndex(signatures([normalised[i] for i in unique]), jaccard)
        self.vectors = _KeptVectors()
        self.decided: dict[int, Duplicate] = {}

    def run(self) -> dict[int, Duplicate]:
        for start in range(0, len(self.unique), _BLOCK):
            self._block(range(start, min(start + _BLOCK, len(self.unique))))
        return self.decided

    def _block(self, rows: range) -> None:
        prior_of, prior_score = self.index.best(rows)  # MinHash against the rows kept before the block
        within = self.index.pairs_within(rows)
        # Rows that MinHash already ties to an earlier block need no embedding.
        block = self._embed([r for r, score in zip(rows, prior_score, strict=True) if score < self.jaccard])
        kept: dict[int, None] = {}  # rows of this block kept so far, in order
        for k, row in enumerate(rows):
            if not self._is_reference(row):
                duplicate = self._minhash(int(prior_of[k]), float(prior_score[k]), within.get(row, ()), kept)
                if duplicate is None and block is not None:
                    duplicate = block.duplicate(row, self.cosine)
                if duplicate is not None:
                    self.decided[self.unique[row]] = duplicate
                    continue
            kept[row] = None
            if block is not None:
                block.keep(row)
        self.index.add(list(kept))
        if block is not None:
            self.vectors.add(*block.kept())

    def _minhash(
        self, of_row: int, score: float, within: Sequence[tuple[int, float]], kept: dict[int, None]
    ) -> Duplicate | None:
        """The best of the match before the block and the first kept match inside it."""
        for row, similarity in within:
            if similarity > score and row in kept:
                of_row, score = row, similarity
                break
        if of_row < 0 or score < self.jaccard:
            return None
        return Duplicate(of=self.unique[of_row], method="minhash", score=round(score, 4))

    def _is_reference(self, row: int) -> bool:
        return self.unique[row] < self.n_ref

    def _embed(self, rows: list[int]) -> _EmbeddedBlock | None:
        if self.embed is None or not rows:
            return None
        ids = [self.unique[row] for row in rows]
        vectors = np.asarray(self.embed([self.items[i] for i in ids]), dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(rows):
            raise ValueError(f"embed returned {vectors.shape[0]} vectors for {len(rows)} texts")
        return _EmbeddedBlock(rows, ids, vectors, self.vectors.best(vectors, self.cosine))


class _EmbeddedBlock:
    """One block's embeddings, each compared with the kept set before the block (`prior`) and, as
    the block is decided in order, with the rows of the block kept before it."""

    def __init__(self, rows: list[int], ids: list[int], vectors: np.ndarray, prior: list[tuple[int, float]]):
        self.position = {row: k for k, row in enumerate(rows)}
        self.ids = ids
        self.vectors = vectors
        self.prior = prior
        self.within = vectors @ vectors.T
        self.is_kept = np.zeros(len(rows), dtype=bool)

    def duplicate(self, row: int, threshold: float) -> Duplicate | None:
        k = self.position.get(row)
        if k is None:
            return None
        of, score = self.prior[k]
        inside = np.where(self.is_kept, self.within[k], -np.inf)
        at = int(inside.argmax())
        if inside[at] > score:
            of, score = self.ids[at], float(inside[at])
        if of < 0 or score < threshold:
            return None
        return Duplicate(of=of, method="embedding", score=round(score, 4))

    def keep(self, row: int) -> None:
        if row in self.position:
            self.is_kept[self.position[row]] = True

    def kept(self) -> tuple[np.ndarray, list[int]]:
        return self.vectors[self.is_kept], [i for i, kept in zip(self.ids, self.is_kept, strict=True) if kept]


class _KeptVectors:
    """The embeddings of the kept items, in chunks of _KEPT_CHUNK rows: the tiles of the search, and
    growth without copying."""

    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []  # the last one may be partly filled
        self.ids: list[int] = []  # item index of each row

    def best(self, vectors: np.ndarray, threshold: float) -> list[tuple[int, float]]:
        """For each of `vectors`, (item index, cosine) of the most similar kept vector when that cosine
        reaches `threshold`, else (-1, the highest cosine)."""
        best = np.full(len(vectors), -np.inf, dtype=np.float32)
        best_at = np.full(len(vectors), -1, dtype=np.int64)
        for c, chunk in enumerate(self.chunks):
            start = c * _KEPT_CHUNK
            tile = vectors @ chunk[: len(self.ids) - start].T
            value = tile.max(axis=1)  # row-wise on a C-ordered tile: the fast direction
            better = np.flatnonzero((value > best) & (value >= threshold))
            best_at[better] = tile[better].argmax(axis=1) + start
            best = np.maximum(best, value)
        return [
            (self.ids[at] if at >= 0 else -1, value)
            for at, value in zip(best_at.tolist(), best.tolist(), strict=True)
        ]

    def add(self, vectors: np.ndarray, ids: list[int]) -> None:
        done = 0
        while done < len(vectors):
            filled = len(self.ids) % _KEPT_CHUNK
            if filled == 0:
                self.chunks.append(np.empty((_KEPT_CHUNK, vectors.shape[1]), dtype=np.float32))
            take = min(_KEPT_CHUNK - filled, len(vectors) - done)
            self.chunks[-1][filled : filled + take] = vectors[done : done + take]
            self.ids.extend(ids[done : done + take])
            done += take

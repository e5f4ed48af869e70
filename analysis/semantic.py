"""Semantic diversity of a set of texts from their unit-norm sentence embeddings.

Every metric here stays within O(n * dim) memory, whatever n:
- mean pairwise cosine distance: 1 - mean over pairs i != j of cos(e_i, e_j); with unit vectors the
  sum over all pairs is |sum_i e_i|^2, so it needs one pass.
- Vendi score (Friedman & Dieng, 2023): exp of the Shannon entropy of the eigenvalues of K / n, with
  K the n x n cosine kernel. Those are the non-zero eigenvalues of X^T X / n (dim x dim), used when
  n > dim and accumulated block by block.
- clusters at a threshold: greedy leader clustering, each text joining the first earlier leader with
  cosine >= threshold (the embedding step of `evaluators.dedup`), so the count is the number of
  texts an embedding dedup at that threshold keeps.
"""

from __future__ import annotations

import numpy as np

from evaluators.dedup import cosine_leaders

_ROWS_PER_BLOCK = 8192


def mean_pairwise_distance(vectors: np.ndarray) -> float:
    n = len(vectors)
    if n < 2:
        return 0.0
    total = np.zeros(vectors.shape[1], dtype=np.float64)
    for start in range(0, n, _ROWS_PER_BLOCK):
        total += vectors[start : start + _ROWS_PER_BLOCK].sum(axis=0, dtype=np.float64)
    self_similarity = float(np.einsum("ij,ij->", vectors, vectors, dtype=np.float64))
    return 1.0 - (float(total @ total) - self_similarity) / (n * (n - 1))


def vendi_score(vectors: np.ndarray) -> float:
    n, dim = vectors.shape
    if n == 0:
        return 0.0
    if n <= dim:
        x = vectors.astype(np.float64)
        kernel = x @ x.T / n
    else:
        kernel = np.zeros((dim, dim), dtype=np.float64)
        for start in range(0, n, _ROWS_PER_BLOCK):
            block = vectors[start : start + _ROWS_PER_BLOCK].astype(np.float64)
            kernel += block.T @ block
        kernel /= n
    eigenvalues = np.clip(np.linalg.eigvalsh(kernel), 0, None)
    eigenvalues = eigenvalues[eigenvalues > 1e-12]
    return float(np.exp(-np.sum(eigenvalues * np.log(eigenvalues))))


def cluster_count(vectors: np.ndarray, threshold: float) -> int:
    return int(sum(leader is None for leader in cosine_leaders(vectors, threshold)))

"""Semantic diversity on vectors small enough to check by hand, and the dim x dim dual of Vendi."""

from __future__ import annotations

import numpy as np
import pytest

from analysis import semantic


def _unit(rows) -> np.ndarray:
    x = np.asarray(rows, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_orthogonal_and_identical_vectors():
    orthogonal = _unit(np.eye(3))
    assert semantic.mean_pairwise_distance(orthogonal) == pytest.approx(1.0)
    assert semantic.vendi_score(orthogonal) == pytest.approx(3.0)
    assert semantic.cluster_count(orthogonal, 0.5) == 3
    same = _unit([[1, 2, 2]] * 4)
    assert semantic.mean_pairwise_distance(same) == pytest.approx(0.0, abs=1e-6)
    assert semantic.vendi_score(same) == pytest.approx(1.0)
    assert semantic.cluster_count(same, 0.99) == 1


def test_many_vectors_in_few_directions_use_the_dual_kernel():
    # 1,000 vectors (n > dim) on 4 orthogonal axes, 250 each: K/n has four eigenvalues 1/4.
    vectors = _unit(np.repeat(np.eye(4), 250, axis=0))
    assert semantic.vendi_score(vectors) == pytest.approx(4.0)
    same_axis_pairs = 4 * 250 * 249
    assert semantic.mean_pairwise_distance(vectors) == pytest.approx(1 - same_axis_pairs / (1000 * 999))
    assert semantic.cluster_count(vectors, 0.9) == 4


def test_dual_and_primal_vendi_agree_on_random_vectors():
    rng = np.random.default_rng(0)
    vectors = _unit(rng.normal(size=(300, 8)))
    kernel = vectors.astype(np.float64) @ vectors.T.astype(np.float64) / len(vectors)
    eigen = np.clip(np.linalg.eigvalsh(kernel), 1e-15, None)
    assert semantic.vendi_score(vectors) == pytest.approx(
        float(np.exp(-np.sum(eigen * np.log(eigen)))), rel=1e-6
    )
    brute = 1 - (kernel.sum() * len(vectors) - len(vectors)) / (len(vectors) * (len(vectors) - 1))
    assert semantic.mean_pairwise_distance(vectors) == pytest.approx(brute, rel=1e-6)


def test_empty_and_single_inputs():
    assert semantic.mean_pairwise_distance(np.zeros((1, 4), np.float32)) == 0.0
    assert semantic.vendi_score(np.zeros((0, 4), np.float32)) == 0.0

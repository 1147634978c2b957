"""Tests for graphtag.grouping: SDP solvers, rounding, baselines, input validation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from graphtag.grouping import (
    GROUPING_METHODS,
    one_group,
    planted_affinity,
    random_groups,
    round_groups,
    sdp_burer_monteiro,
    sdp_cvxpy,
    sdp_groups,
    singleton_groups,
    spectral_groups,
    validate_affinity,
)


def _labels(groups: list[list[int]], n: int) -> np.ndarray:
    labels = np.full(n, -1)
    for g, members in enumerate(groups):
        labels[members] = g
    return labels


def _assert_partition(groups: list[list[int]], n: int, k: int) -> None:
    assert len(groups) == k
    assert all(len(g) > 0 for g in groups)
    assert sorted(i for g in groups for i in g) == list(range(n))


def _noise(n: int, seed: int) -> np.ndarray:
    G = np.random.default_rng(seed).standard_normal((n, n))
    return (G + G.T) / 2


@pytest.mark.parametrize(
    ("A", "k"),
    [
        (planted_affinity(20, 3, noise=0.5, seed=1)[0], 3),
        (planted_affinity(40, 4, noise=2.0, seed=2)[0], 4),
        (_noise(40, 3), 3),
    ],
    ids=["planted20", "planted40-noisy", "noise40"],
)
def test_bm_matches_cvxpy(A: np.ndarray, k: int) -> None:
    _, obj_c = sdp_cvxpy(A, k)
    Xb, obj_b = sdp_burer_monteiro(A, k)
    assert abs(obj_b - obj_c) <= 0.01 * abs(obj_c)
    # nearly feasible: row sums, trace, non-negativity; PSD by construction
    assert np.abs(Xb.sum(1) - 1).max() < 1e-3
    assert abs(np.trace(Xb) - k) < 1e-3 * k
    assert Xb.min() > -1e-3
    assert np.linalg.eigvalsh(Xb).min() > -1e-8


def test_bm_factor_and_units() -> None:
    A, _ = planted_affinity(30, 3, noise=0.3, seed=0)
    V, obj = sdp_burer_monteiro(A, 3, return_factor=True)
    assert V.shape == (30, 16)
    # scaling A scales the objective (the solver normalises internally)
    _, obj10 = sdp_burer_monteiro(10 * A, 3)
    assert obj10 == pytest.approx(10 * obj, rel=1e-3)


@pytest.mark.parametrize("k", [1, 2, 5, 12])
def test_round_groups_is_partition(k: int) -> None:
    rng = np.random.default_rng(0)
    X = rng.random((12, 12))
    groups = round_groups(X + X.T, k)
    _assert_partition(groups, 12, k)
    assert groups == round_groups(X + X.T, k)  # deterministic


def test_round_groups_duplicate_rows_still_k_groups() -> None:
    # two distinct row patterns, but k = 4 groups requested
    X = np.kron(np.eye(2), np.ones((4, 4)) / 4)
    _assert_partition(round_groups(X, 4), 8, 4)


@pytest.mark.parametrize(
    "method",
    [
        lambda A, k: sdp_groups(A, k, solver="cvxpy"),
        lambda A, k: sdp_groups(A, k, solver="bm"),
        lambda A, k: spectral_groups(A, k, seed=0),
    ],
    ids=["sdp-cvxpy", "sdp-bm", "spectral"],
)
@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_planted_blocks_recovered(method, noise: float) -> None:
    A, labels = planted_affinity(30, 3, noise=noise, seed=4)
    groups = method(A, 3)
    _assert_partition(groups, 30, 3)
    ari = adjusted_rand_score(labels, _labels(groups, 30))
    assert ari == 1.0 if noise == 0 else ari >= 0.9


def test_sdp_groups_auto_and_bad_solver() -> None:
    A, labels = planted_affinity(24, 3, noise=0.2, seed=5)
    groups = sdp_groups(A, 3)
    assert adjusted_rand_score(labels, _labels(groups, 24)) == 1.0
    with pytest.raises(ValueError, match="solver"):
        sdp_groups(A, 3, solver="nope")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("A", "k", "match"),
    [
        (np.ones((3, 4)), 2, "square"),
        (np.ones(5), 2, "square"),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), 1, "NaN"),
        (np.eye(4), 0, "k must"),
        (np.eye(4), 5, "k must"),
        (np.eye(4), 2.5, "k must"),
    ],
)
def test_bad_input(A: np.ndarray, k: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        validate_affinity(A, k)
    with pytest.raises(ValueError, match=match):
        sdp_groups(A, k)


def test_validate_symmetrises() -> None:
    A = np.array([[0.0, 2.0, 0.0], [0.0, 0.0, 4.0], [0.0, 0.0, 1.0]])
    expected = [[0.0, 1.0, 0.0], [1.0, 0.0, 2.0], [0.0, 2.0, 1.0]]
    np.testing.assert_array_equal(validate_affinity(A, 1), expected)


@pytest.mark.parametrize("fn", [sdp_groups, spectral_groups])
def test_constant_affinity_balanced_split(fn) -> None:
    with pytest.warns(UserWarning, match="constant"):
        groups = fn(np.full((7, 7), 0.3), 3)
    assert groups == [[0, 1, 2], [3, 4], [5, 6]]
    with pytest.warns(UserWarning, match="constant"):  # a 11^T + b I is degenerate too
        assert fn(0.3 + np.eye(7), 3) == groups


def test_baselines_partitions_and_seeded() -> None:
    _assert_partition(one_group(5), 5, 1)
    _assert_partition(singleton_groups(5), 5, 5)
    r = random_groups(11, 3, seed=1)
    _assert_partition(r, 11, 3)
    assert sorted(len(g) for g in r) == [3, 4, 4]
    assert r == random_groups(11, 3, seed=1)
    assert r != random_groups(11, 3, seed=2)
    with pytest.raises(ValueError):
        random_groups(3, 4)
    A, _ = planted_affinity(20, 4, noise=1.0, seed=0)
    s = spectral_groups(A, 4, seed=3)
    _assert_partition(s, 20, 4)
    assert s == spectral_groups(A, 4, seed=3)


def test_grouping_methods_registry() -> None:
    A, _ = planted_affinity(12, 3, noise=0.2, seed=0)
    expected_k = {"mtl": 1, "stl": 12}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no spurious warnings on a regular affinity
        for name, fn in GROUPING_METHODS.items():
            _assert_partition(fn(A, 3, 0), 12, expected_k.get(name, 3))

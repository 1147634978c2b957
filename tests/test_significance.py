"""Standard errors of affinity entries and the permutation test on groups."""

import numpy as np
import pytest

from graphtag.affinity import affinity_matrix, affinity_stderr
from graphtag.grouping import group_pvalues


def test_affinity_stderr_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    T, m, s = 6, 200, 3
    subs = np.stack([np.sort(rng.choice(T, s, replace=False)) for _ in range(m)])
    scores = rng.normal(size=(m, s))
    scores[5, 1] = np.nan  # left out, like affinity_matrix does
    se = affinity_stderr(subs, scores, T, symmetric=False)
    for i in range(T):
        for j in range(T):
            if i == j:
                continue
            vals = [scores[k, list(subs[k]).index(i)] for k in range(m)
                    if i in subs[k] and j in subs[k]]
            vals = np.array([v for v in vals if np.isfinite(v)])
            want = vals.std(ddof=1) / np.sqrt(vals.size) if vals.size >= 2 else np.nan
            np.testing.assert_allclose(se[i, j], want, rtol=1e-9)
    sym = affinity_stderr(subs, scores, T)
    np.testing.assert_allclose(sym, 0.5 * np.sqrt(se**2 + se.T**2) * (1 - np.eye(T)))
    assert np.isfinite(affinity_matrix(subs, np.nan_to_num(scores), T)).all()


def test_group_pvalues_separate_planted_from_random_groups():
    T = 12
    truth = np.repeat(np.arange(3), 4)
    rng = np.random.default_rng(1)
    A = 0.05 * rng.normal(size=(T, T))
    A = (A + A.T) / 2 + (truth[:, None] == truth[None, :])
    np.fill_diagonal(A, 0)
    planted = [np.flatnonzero(truth == g).tolist() for g in range(3)]
    mixed = [[0, 4, 8, 1], [5, 9, 2, 6], [10, 3, 7, 11]]
    p_planted = group_pvalues(A, planted, num_draws=500)
    p_mixed = group_pvalues(A, mixed, num_draws=500)
    assert max(p_planted) < 0.01
    assert min(p_mixed) > 0.2
    assert group_pvalues(A, planted, num_draws=500) == p_planted  # seeded
    assert np.isnan(group_pvalues(A, [[3]])[0])
    with pytest.raises(ValueError, match="outside"):
        group_pvalues(A, [[0, 12]])


def test_heatmap_outlines_only_distinguishable_groups(tmp_path):
    from graphtag.pipeline.report import plot_affinity

    T = 12
    truth = np.repeat(np.arange(3), 4)
    rng = np.random.default_rng(2)
    A = 0.05 * rng.normal(size=(T, T))
    A = (A + A.T) / 2
    A[:4, :4] += 1.0  # only the first group is coherent
    np.fill_diagonal(A, 0)
    groups = [np.flatnonzero(truth == g).tolist() for g in range(3)]
    pv = group_pvalues(A, groups, num_draws=500)
    solid = plot_affinity(A, groups, tmp_path / "a.png", pvalues=pv)
    assert solid == [True, False, False]
    assert (tmp_path / "a.png").stat().st_size > 0
    assert plot_affinity(A, groups, tmp_path / "b.png") is None

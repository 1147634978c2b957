import itertools

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from sklearn.metrics import f1_score, log_loss

from graphtag.affinity import (
    affinity_matrix,
    fit_subsets,
    linearized_logits,
    sample_subsets,
    subset_coverage,
    task_scores,
)


def _problem(n=60, t=5, d=4, seed=0, unknown=0.2):
    rng = np.random.default_rng(seed)
    g = rng.normal(size=(n, t, d))
    b = rng.normal(size=(n, t))
    y = rng.integers(0, 2, (n, t)).astype(np.int8)
    y[rng.random((n, t)) < unknown] = -1
    return g, b, y


def _scipy_fit(g, b, y, row, lam, offset=True):
    """Reference: L-BFGS-B on the same summed objective, one subset at a time."""
    d = g.shape[2]
    gg = g[:, row].reshape(-1, d)
    bb = b[:, row].ravel() if offset else np.zeros(gg.shape[0])
    yy = y[:, row].ravel()
    keep = yy >= 0
    gg, bb, yy = gg[keep], bb[keep], yy[keep].astype(float)

    def f(w):
        u = bb + gg @ w
        return (np.sum(np.logaddexp(0, u) - yy * u) + lam * w @ w,
                gg.T @ (1 / (1 + np.exp(-u)) - yy) + 2 * lam * w)

    res = minimize(f, np.zeros(d), jac=True, method="L-BFGS-B",
                   options={"ftol": 1e-15, "gtol": 1e-11, "maxiter": 10_000})
    return res.x


SUBS = np.array([[0, 1], [1, 2], [2, 3], [0, 4], [3, 4], [0, 2]])


@pytest.mark.parametrize("offset", [True, False])
def test_batched_newton_matches_scipy(offset):
    g, b, y = _problem()
    z = fit_subsets(g, b, y, SUBS, lam=0.05, offset=offset, chunk=7)
    assert z.shape == (len(SUBS), 4) and z.dtype == torch.float64
    for k, row in enumerate(SUBS):
        np.testing.assert_allclose(z[k].numpy(), _scipy_fit(g, b, y, row, 0.05, offset),
                                   atol=1e-5)


def test_three_task_subsets_and_small_lam_match_scipy():
    g, b, y = _problem(n=80, t=6, d=5, seed=3)
    subs = sample_subsets(6, 5, 3, seed=1)
    z = fit_subsets(g, b, y, subs, lam=1e-3)
    for k, row in enumerate(subs):
        np.testing.assert_allclose(z[k].numpy(), _scipy_fit(g, b, y, row, 1e-3), atol=1e-5)


def test_inputs_memmap_tensor_chunking_and_cache_agree(tmp_path):
    g, b, y = _problem(seed=1)
    np.save(tmp_path / "g.npy", g.astype(np.float32))
    gm = np.load(tmp_path / "g.npy", mmap_mode="r")
    g32 = g.astype(np.float32).astype(np.float64)
    ref = fit_subsets(g32, b, y, SUBS, lam=0.1)
    for out in (
        fit_subsets(gm, b, y, SUBS, lam=0.1, chunk=5, cache=False),
        fit_subsets(torch.from_numpy(g32), torch.from_numpy(b), torch.from_numpy(y), SUBS,
                    lam=0.1, chunk=13),
    ):
        torch.testing.assert_close(out, ref, rtol=0, atol=1e-10)


def test_zero_gradients_give_zero_z_and_base_logits():
    _, b, y = _problem()
    g = np.zeros((60, 5, 4))
    z = fit_subsets(g, b, y, SUBS, lam=0.1)
    assert torch.count_nonzero(z) == 0
    lin = linearized_logits(g, b, z, SUBS)
    assert lin.shape == (len(SUBS), 60, 2)
    for k, row in enumerate(SUBS):
        np.testing.assert_array_equal(lin[k].numpy(), b[:, row])


def test_linearized_logits_formula_and_node_selection():
    g, b, _ = _problem()
    z = torch.randn(len(SUBS), 4, dtype=torch.float64)
    nodes = np.array([3, 10, 11, 40])
    lin = linearized_logits(g, b, z, SUBS, nodes=nodes, chunk=3)
    want = b[nodes][:, SUBS] + np.einsum("nksd,kd->nks", g[nodes][:, SUBS], z.numpy())
    np.testing.assert_allclose(lin.numpy(), want.transpose(1, 0, 2), atol=1e-12)
    lin0 = linearized_logits(g, b, z, SUBS, offset=False)
    np.testing.assert_allclose(
        lin0.numpy(), np.einsum("nksd,kd->kns", g[:, SUBS], z.numpy()), atol=1e-12)


def test_offset_matters_when_logits_nonzero():
    g, b, y = _problem(seed=2)
    z_on = fit_subsets(g, b + 1.0, y, SUBS, lam=0.1, offset=True)
    z_off = fit_subsets(g, b + 1.0, y, SUBS, lam=0.1, offset=False)
    assert (z_on - z_off).abs().max() > 1e-2
    # with all-zero base logits the two coincide
    z0 = fit_subsets(g, np.zeros_like(b), y, SUBS, lam=0.1, offset=True)
    torch.testing.assert_close(z0, z_off, rtol=0, atol=1e-12)


def test_unknown_labels_are_ignored():
    g, b, y = _problem(seed=4, unknown=0.3)
    ref = fit_subsets(g, b, y, SUBS, lam=0.1)
    # whatever sits at unknown entries does not matter
    g2, b2 = g.copy(), b.copy()
    unk = y < 0
    g2[unk] = 1e3
    b2[unk] = -50.0
    torch.testing.assert_close(fit_subsets(g2, b2, y, SUBS, lam=0.1), ref, rtol=0, atol=1e-10)
    # nodes with no known label at all: same as dropping those rows (node_mask)
    y3 = y.copy()
    y3[:10] = -1
    keep = np.ones(60, dtype=bool)
    keep[:10] = False
    full = fit_subsets(g, b, y3, SUBS, lam=0.1)
    torch.testing.assert_close(fit_subsets(g[10:], b[10:], y3[10:], SUBS, lam=0.1), full,
                               rtol=0, atol=1e-10)
    torch.testing.assert_close(fit_subsets(g, b, y, SUBS, lam=0.1, node_mask=keep), full,
                               rtol=0, atol=1e-10)
    torch.testing.assert_close(fit_subsets(g, b, y, SUBS, lam=0.1, node_mask=np.arange(10, 60)),
                               full, rtol=0, atol=1e-10)


def test_fit_subsets_bad_args():
    g, b, y = _problem()
    with pytest.raises(ValueError, match="lam"):
        fit_subsets(g, b, y, SUBS, lam=-1.0)
    with pytest.raises(ValueError, match="subset entries"):
        fit_subsets(g, b, y, np.array([[0, 5]]))
    with pytest.raises(ValueError, match="shape"):
        fit_subsets(g, b[:, :3], y, SUBS)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        fit_subsets(g, b, y, SUBS, lam=1e-3, max_iter=1)


def test_sample_subsets_seeded_distinct_balanced():
    a = sample_subsets(20, 300, 4, seed=7)
    assert a.shape == (300, 4) and a.dtype == np.int64
    np.testing.assert_array_equal(a, sample_subsets(20, 300, 4, seed=7))
    assert not np.array_equal(a, sample_subsets(20, 300, 4, seed=8))
    for t, m, s in [(20, 300, 4), (100, 2000, 5), (7, 333, 6), (5, 50, 5), (3, 101, 2)]:
        sub = sample_subsets(t, m, s, seed=0)
        assert all(len(set(r)) == s for r in sub.tolist())
        assert (np.diff(sub, axis=1) > 0).all()  # sorted rows
        counts = np.bincount(sub.ravel(), minlength=t)
        assert counts.max() - counts.min() <= 2, (t, m, s, counts)


def test_sample_subsets_bad_args():
    with pytest.raises(ValueError, match="exceeds num_tasks"):
        sample_subsets(4, 10, 5)
    with pytest.raises(ValueError, match="subset_size"):
        sample_subsets(4, 10, 0)
    with pytest.raises(ValueError, match="num_subsets"):
        sample_subsets(4, 0, 2)


def test_subset_coverage_hand_case():
    subs = np.array([[0, 1, 2], [0, 1, 3], [0, 1, 2]])
    cov = subset_coverage(subs, 5)
    # tasks: 0:3, 1:3, 2:2, 3:1, 4:0; pairs: 01:3, 02:2, 12:2, 03:1, 13:1 (5 of 10)
    assert cov == {
        "tasks_covered": 4, "pairs_covered": 5, "pair_fraction": 0.5,
        "task_min": 0, "task_mean": 9 / 5, "task_max": 3,
        "pair_min": 1, "pair_mean": 9 / 5, "pair_max": 3,
    }
    full = subset_coverage(np.array(list(itertools.combinations(range(4), 2))), 4)
    assert full["pair_fraction"] == 1.0 and full["pair_min"] == full["pair_max"] == 1


def test_task_scores_match_sklearn():
    rng = np.random.default_rng(0)
    m, n, t = 4, 50, 5
    subs = sample_subsets(t, m, 3, seed=0)
    lin = torch.from_numpy(rng.normal(size=(m, n, 3)))
    y = rng.integers(0, 2, (n, t)).astype(np.int8)
    y[rng.random((n, t)) < 0.2] = -1
    y[:, 4] = -1  # a task without known labels scores nan
    ll = task_scores(lin, y, subs)
    f1 = task_scores(lin, y, subs, metric="f1")
    assert ll.shape == f1.shape == (m, 3)
    for k, j in itertools.product(range(m), range(3)):
        col = y[:, subs[k, j]]
        if (col < 0).all():
            assert torch.isnan(ll[k, j]) and torch.isnan(f1[k, j])
            continue
        keep = col >= 0
        u = lin[k, keep, j].numpy()
        assert ll[k, j] == pytest.approx(-log_loss(col[keep], 1 / (1 + np.exp(-u)),
                                                   labels=[0, 1]), abs=1e-10)
        assert f1[k, j] == pytest.approx(f1_score(col[keep], u > 0, zero_division=0), abs=1e-12)
    with pytest.raises(ValueError, match="metric"):
        task_scores(lin, y, subs, metric="auc")


def _synthetic_scores(subs):
    """Score of i in S = sum of E[i, j] over the other j in S: 0 and 1 help each other,
    both hurt 2 (and 2 hurts them), tasks 3..5 are neutral; per-task offsets differ."""
    eff = np.zeros((6, 6))
    eff[0, 1] = eff[1, 0] = 1.0
    eff[[0, 1, 2, 2], [2, 2, 0, 1]] = -1.0
    offset = np.array([0.0, -3.0, 5.0, 1.0, 2.0, -1.0])
    return np.array([[offset[i] + sum(eff[i, j] for j in row if j != i) for i in row]
                     for row in subs])


def test_affinity_properties_and_ranking():
    subs = np.array(list(itertools.combinations(range(6), 3)))
    sc = _synthetic_scores(subs)
    aff = affinity_matrix(subs, sc, 6)
    assert aff.shape == (6, 6)
    np.testing.assert_allclose(aff, aff.T, atol=0)
    np.testing.assert_array_equal(np.diag(aff), 0.0)
    # 0-1 is the strongest pair in both rows, 2 the worst partner of 0 and 1
    assert aff[0].argmax() == 1 and aff[1].argmax() == 0
    assert aff[0].argmin() == 2 and aff[1].argmin() == 2
    assert aff[0, 1] > 0 > aff[0, 2]
    # unnormalised: T_ij is the mean of i's score over subsets with i and j (0-1: offset + 1
    # from the partner, plus a third task that is 2 in 1 of 4 subsets -> 0 + 1 - 1/4)
    raw = affinity_matrix(subs, sc, 6, normalize=False, symmetric=False)
    assert raw[0, 1] == pytest.approx(1 - 0.25)
    assert raw[1, 0] == pytest.approx(-3 + 1 - 0.25)


def test_affinity_normalisation_zero_weighted_row_mean():
    subs = sample_subsets(8, 40, 3, seed=2)
    sc = np.random.default_rng(1).normal(size=subs.shape) + np.arange(8)[subs]
    sc[0, 0] = np.nan  # skipped, not propagated
    a = affinity_matrix(subs, sc, 8, symmetric=False)
    inc = np.zeros((40, 8))
    np.put_along_axis(inc, subs, 1.0, axis=1)
    valid = inc.copy()
    valid[0, subs[0, 0]] = 0.0
    n_ij = valid.T @ inc
    np.fill_diagonal(n_ij, 0.0)
    # precisely: for every task i, sum_j n_ij * A[i, j] = 0 (co-occurrence-weighted row mean)
    np.testing.assert_allclose((n_ij * a).sum(1), 0.0, atol=1e-9)
    assert np.isfinite(a).all()
    # the unnormalised row's weighted mean is the task's mean score (its baseline)
    raw = affinity_matrix(subs, sc, 8, normalize=False, symmetric=False)
    placed = np.zeros((40, 8))
    np.put_along_axis(placed, subs, np.nan_to_num(sc), axis=1)
    base = placed.sum(0) / valid.sum(0)
    np.fill_diagonal(raw, 0.0)
    np.testing.assert_allclose((n_ij * raw).sum(1) / n_ij.sum(1), base, atol=1e-12)


def test_affinity_fill_for_pairs_never_together():
    subs = np.array([[0, 1], [2, 3], [0, 1]])
    sc = np.array([[1.0, 2.0], [3.0, 4.0], [3.0, 0.0]])
    a = affinity_matrix(subs, sc, 4, normalize=False, symmetric=False)
    assert a[0, 1] == 2.0 and a[0, 2] == 2.0 and a[2, 0] == 3.0  # fill = row baseline
    assert (affinity_matrix(subs, sc, 4)[[0, 0, 1, 1], [2, 3, 2, 3]] == 0).all()
    f = affinity_matrix(subs, sc, 4, normalize=False, symmetric=False, fill=-9.0)
    assert f[0, 2] == -9.0 and f[0, 0] == 0.0


def test_end_to_end_related_tasks_have_high_affinity():
    """Tasks 0, 1 share a labelling rule; task 2 has the opposite rule; task 3 is unrelated.
    Fitting on {0, 1} helps both, adding 2 hurts them, so the pipeline ranks 0-1 highest."""
    rng = np.random.default_rng(0)
    n, d = 400, 3
    x = rng.normal(size=(n, d))
    w = np.array([2.0, -1.0, 0.5])
    g = np.repeat(x[:, None, :], 4, axis=1)
    g[:, 3] = rng.normal(size=(n, d))
    p = 1 / (1 + np.exp(-(x @ w)))
    y0 = (rng.random(n) < p).astype(np.int8)
    y = np.stack([y0, y0, 1 - y0, rng.integers(0, 2, n).astype(np.int8)], 1)
    b = np.zeros((n, 4))
    subs = np.array(list(itertools.combinations(range(4), 2)))
    train = np.arange(n) < 300
    z = fit_subsets(g, b, y, subs, lam=1.0, node_mask=train)
    lin = linearized_logits(g, b, z, subs, nodes=~train)
    sc = task_scores(lin, y, subs, nodes=~train)
    aff = affinity_matrix(subs, sc, 4)
    assert aff[0].argmax() == 1 and aff[1].argmax() == 0
    assert aff[0, 2] < aff[0, 1] and aff[1, 2] < aff[1, 0]


def test_subset_plan_covers_pairs_and_respects_fixed_values():
    from graphtag.affinity import PAIR_DRAWS, sample_subsets, subset_coverage, subset_plan

    assert subset_plan(100) == (2970, 5) and subset_plan(500) == (2500, 25)
    assert subset_plan(500, num_subsets=100) == (100, 25)
    assert subset_plan(500, subset_size=5)[0] == 74850  # 6 draws of 124,750 pairs, 10 a subset
    assert subset_plan(12, subset_size=3) == (1000, 3)  # never below 1,000 subsets
    for T in (2, 3, 8):
        m, s = subset_plan(T)
        assert 2 <= s <= T and m >= 1000
    for T in (60, 300):
        m, s = subset_plan(T)
        cov = subset_coverage(sample_subsets(T, m, s, seed=0), T)
        assert cov["pair_fraction"] > 0.99
        assert cov["pair_mean"] * cov["pair_fraction"] >= PAIR_DRAWS * 0.95
    with pytest.raises(ValueError, match="num_tasks"):
        subset_plan(0)


def test_affinity_refuses_all_nan_scores_and_warns_on_some():
    # all-NaN used to give an all-zero affinity, which grouping turned into a contiguous split
    subs = np.array([[0, 1], [1, 2], [0, 2]])
    with pytest.raises(ValueError, match="all 6 subset scores are NaN or infinite"):
        affinity_matrix(subs, np.full((3, 2), np.nan), 3)
    sc = np.array([[1.0, np.nan], [0.5, 0.2], [np.inf, 0.3]])
    with pytest.warns(UserWarning, match=r"2 of 6 subset scores are NaN or inf.*\(tasks 0, 1\)"):
        A = affinity_matrix(subs, sc, 3)
    assert np.isfinite(A).all()

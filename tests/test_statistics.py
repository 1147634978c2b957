"""Subset fits from per-task sufficient statistics, checked against direct computations and
against the exact batched Newton reference."""

import numpy as np
import pytest
import torch

from graphtag.affinity import (
    centered_statistics,
    fit_subsets,
    fit_subsets_stats,
    subset_lam,
    task_statistics,
)

SUBS = np.array([[0, 1], [1, 2], [2, 3], [0, 4], [3, 4], [0, 2], [1, 3]])


def _problem(n=80, t=5, d=4, seed=0, unknown=0.2):
    rng = np.random.default_rng(seed)
    g = rng.normal(size=(n, t, d)) * 0.5
    b = rng.normal(size=(n, t))
    y = (rng.random((n, t)) < 0.3).astype(np.int8)
    y[rng.random((n, t)) < unknown] = -1
    return g, b, y


def _objective(g, b, y, row, z, lam, offset):
    gg = g[:, row].reshape(-1, g.shape[2])
    bb = b[:, row].ravel() if offset else np.zeros(gg.shape[0])
    yy = y[:, row].ravel().astype(float)
    keep = yy >= 0
    u = bb[keep] + gg[keep] @ z
    return np.sum(np.logaddexp(0, u) - yy[keep] * u) + lam * z @ z


@pytest.mark.parametrize("offset", [False, True])
def test_task_statistics_match_direct_sums(offset):
    g, b, y = _problem()
    st = task_statistics(g, b, y, offset=offset, chunk=17)
    for t in range(g.shape[1]):
        keep = y[:, t] >= 0
        gt, yt = g[keep, t], y[keep, t].astype(float)
        bt = b[keep, t] if offset else np.zeros(keep.sum())
        p = 1 / (1 + np.exp(-bt))
        np.testing.assert_allclose(st.hess[t].numpy(), gt.T @ (gt * (p * (1 - p))[:, None]),
                                   rtol=1e-6)
        np.testing.assert_allclose(st.grad[t].numpy(), gt.T @ (p - yt), rtol=1e-10)
        np.testing.assert_allclose(st.loss[t].item(),
                                   np.sum(np.logaddexp(0, bt) - yt * bt), rtol=1e-12)
        assert st.n_known[t].item() == keep.sum()
    assert torch.equal(st.center, torch.zeros(4, dtype=torch.float64))


def test_statistics_step_is_the_first_newton_step():
    g, b, y = _problem()
    st = task_statistics(g, b, y, offset=True)
    z = fit_subsets_stats(st, SUBS, lam=0.3)
    for k, row in enumerate(SUBS):
        gg = g[:, row].reshape(-1, 4)
        yy = y[:, row].ravel().astype(float)
        keep = yy >= 0
        p = 1 / (1 + np.exp(-b[:, row].ravel()[keep]))
        h = gg[keep].T @ (gg[keep] * (p * (1 - p))[:, None]) + 0.6 * np.eye(4)
        c = gg[keep].T @ (p - yy[keep])
        np.testing.assert_allclose(z[k].numpy(), -np.linalg.solve(h, c), rtol=1e-6)


@pytest.mark.parametrize("offset", [False, True])
def test_refinement_descends_and_converges_to_the_exact_fit(offset):
    g, b, y = _problem(seed=1)
    lam = subset_lam(0.02, (y >= 0).sum(0), SUBS)
    exact = fit_subsets(g, b, y, SUBS, lam=lam, offset=offset)
    st = task_statistics(g, b, y, offset=offset)
    prev = None
    for refine in (0, 1, 3, 10):
        z = fit_subsets_stats(st, SUBS, lam=lam, refine=refine, grads=g, logits=b, labels=y)
        f = np.array([_objective(g, b, y, row, z[k].numpy(), lam[k], offset)
                      for k, row in enumerate(SUBS)])
        if prev is not None and not (offset and refine == 1):
            assert np.all(f <= prev + 1e-9)  # majorise-minimise never goes up
        prev = f
    z = fit_subsets_stats(st, SUBS, lam=lam, refine=300, grads=g, logits=b, labels=y)
    torch.testing.assert_close(z, exact, atol=1e-6, rtol=1e-5)


def test_offset_newton_overshoot_restarts_from_zero():
    # a huge offset far from the labels makes the Hessian at the base point tiny, so the
    # Newton step overshoots; refinement must still end below the objective at z = 0
    g, b, y = _problem(seed=2, unknown=0.0)
    b = np.where(y > 0, -12.0, 12.0)
    lam = 1e-3
    st = task_statistics(g, b, y, offset=True)
    z = fit_subsets_stats(st, SUBS, lam=lam, refine=2, grads=g, logits=b, labels=y)
    for k, row in enumerate(SUBS):
        assert _objective(g, b, y, row, z[k].numpy(), lam, True) <= _objective(
            g, b, y, row, np.zeros(4), lam, True) + 1e-9


def test_per_subset_lam_equals_one_fit_per_subset():
    g, b, y = _problem(seed=3)
    lam = subset_lam(0.05, (y >= 0).sum(0), SUBS)
    counts = [(y[:, row] >= 0).sum() for row in SUBS]
    np.testing.assert_allclose(lam, 0.05 * np.array(counts))
    assert len(set(counts)) > 1  # the label mask makes the subsets differ
    together = fit_subsets(g, b, y, SUBS, lam=lam, offset=False)
    st = task_statistics(g, b, y)
    fast = fit_subsets_stats(st, SUBS, lam=lam)
    for k, row in enumerate(SUBS):
        one = fit_subsets(g, b, y, row[None], lam=float(lam[k]), offset=False)
        torch.testing.assert_close(together[k], one[0], atol=1e-8, rtol=1e-8)
        torch.testing.assert_close(fast[k], fit_subsets_stats(st, row[None], lam=float(lam[k]))[0])


def test_statistics_fits_bad_args():
    g, b, y = _problem()
    st = task_statistics(g, b, y)
    with pytest.raises(ValueError, match="refine > 0 needs the data"):
        fit_subsets_stats(st, SUBS, lam=0.1, refine=1)
    with pytest.raises(ValueError, match="one entry per subset"):
        fit_subsets_stats(st, SUBS, lam=np.ones(3))
    with pytest.raises(ValueError, match="lam must be finite"):
        fit_subsets(g, b, y, SUBS, lam=np.full(len(SUBS), -1.0))
    with pytest.raises(ValueError, match="subset entries"):
        fit_subsets_stats(st, np.array([[0, 9]]), lam=0.1)
    with pytest.raises(ValueError, match="must have shape"):
        task_statistics(g, b[:, :2], y)


@pytest.mark.parametrize("offset", [False, True])
def test_centered_statistics_start_closer_to_the_exact_fit(offset):
    g, b, y = _problem(seed=4)
    y[y > 0] = (np.random.default_rng(0).random(y[y > 0].shape) < 0.3).astype(np.int8)
    lam_mean = 0.01
    lam = subset_lam(lam_mean, (y >= 0).sum(0), SUBS)
    exact = fit_subsets(g, b, y, SUBS, lam=lam, offset=offset)
    at_zero = fit_subsets_stats(task_statistics(g, b, y, offset=offset), SUBS, lam=lam)
    st = centered_statistics(g, b, y, lam=lam_mean, offset=offset, steps=4)
    centered = fit_subsets_stats(st, SUBS, lam=lam)
    # the center is the ridge fit of all tasks together
    everything = fit_subsets(g, b, y, np.arange(5)[None], lam=lam_mean * (y >= 0).sum(),
                             offset=offset)[0]
    torch.testing.assert_close(st.center, everything, atol=1e-6, rtol=1e-5)
    err0 = (at_zero - exact).norm() / exact.norm()
    err1 = (centered - exact).norm() / exact.norm()
    if not offset:  # from logit 0, the sparse labels' shared shift is most of every fit
        assert err1 < 0.5 * err0, (err0, err1)
    refined = fit_subsets_stats(st, SUBS, lam=lam, refine=200, grads=g, logits=b, labels=y)
    torch.testing.assert_close(refined, exact, atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="steps"):
        centered_statistics(g, b, y, lam=0.1, steps=-1)

"""Tests for the literature grouping baselines: DMTG (graphtag.grouping.dmtg) and TAG
(graphtag.grouping.tag)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from graphtag.datasets.synthetic import synthetic_communities
from graphtag.grouping import (
    DMTGNetwork,
    dmtg_groups,
    lookahead_affinity,
    tag_affinity,
    tag_groups,
)
from graphtag.grouping.peers import sign_inputs
from graphtag.grouping.tag import shared_parameter_names
from graphtag.models import build_model
from graphtag.training.losses import masked_bce_per_task

# 3 planted groups x 4 tasks on 600 nodes: each baseline run takes well under a second (SIGN).
PLANTED = dict(num_nodes=600, num_tasks=12, num_groups=3, seed=0)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These models are tiny: one thread is fastest, and immune to busy shared cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def planted():
    syn = synthetic_communities(**PLANTED)
    return syn.to_data(num_features=16), syn.task_group


def _labels(groups: list[list[int]], n: int) -> np.ndarray:
    labels = np.full(n, -1)
    for g, members in enumerate(groups):
        labels[members] = g
    return labels


def _assert_canonical_partition(groups: list[list[int]], n: int, max_groups: int) -> None:
    assert 1 <= len(groups) <= max_groups
    assert all(len(g) > 0 and g == sorted(g) for g in groups)
    assert [g[0] for g in groups] == sorted(g[0] for g in groups)
    assert sorted(i for g in groups for i in g) == list(range(n))
    assert all(isinstance(i, int) for g in groups for i in g)


def _train_loss(model: torch.nn.Module, args: tuple, data, reduce_branches=None) -> float:
    model.eval()
    with torch.no_grad():
        out = model(*args)
        if reduce_branches is not None:
            out = reduce_branches(out)
        m = data.train_mask
        return float(masked_bce_per_task(out[m], data.y[m]).mean())


# ----------------------------------------------------------------------------------- DMTG
def test_dmtg_partition_probs_and_determinism(planted) -> None:
    data, _ = planted
    kw = dict(epochs=15, batch_size=64, seed=3, progress=False)
    a = dmtg_groups(data, 4, **kw)
    b = dmtg_groups(data, 4, **kw)
    _assert_canonical_partition(a.groups, 12, 4)
    assert a.probs.shape == (12, 4)
    np.testing.assert_allclose(a.probs.sum(1), 1.0, atol=1e-12)
    assert (a.probs >= 0).all()
    # argmax assignment, empty branches pruned
    np.testing.assert_array_equal(a.branch, a.probs.argmax(1))
    assert len(a.groups) == len(np.unique(a.branch))
    # same seed, same everything
    assert a.groups == b.groups
    np.testing.assert_array_equal(a.probs, b.probs)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    # the caller's RNG is left alone
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    dmtg_groups(data, 2, epochs=1, progress=False)
    np.testing.assert_array_equal(torch.rand(3), before)


def test_dmtg_single_group_and_pruning(planted) -> None:
    data, _ = planted
    r = dmtg_groups(data, 1, epochs=2, progress=False)
    assert r.groups == [list(range(12))]
    np.testing.assert_allclose(r.probs, 1.0)
    # K = T branches: whatever the argmax leaves empty is pruned
    r = dmtg_groups(data, 12, epochs=3, progress=False)
    _assert_canonical_partition(r.groups, 12, 12)


def test_dmtg_network_shapes() -> None:
    torch.manual_seed(0)
    x, ei = torch.randn(10, 5), torch.randint(0, 10, (2, 30))
    for kind in ("sage", "gcn"):
        net = DMTGNetwork(5, num_tasks=7, num_groups=3, model=kind, hidden_channels=8,
                          branch_channels=2)
        assert net(x, ei).shape == (10, 3, 7)
    net = DMTGNetwork(5, 7, 3, model="sage", num_layers=1)  # no stem: 3 one-layer encoders
    assert net.stem is None and net(x, ei).shape == (10, 3, 7)
    net = DMTGNetwork(5, 7, 3, model="sign", num_layers=2)
    assert net(torch.randn(10, 3, 5)).shape == (10, 3, 7)
    with pytest.raises(ValueError, match="SIGN hops"):
        net(torch.randn(10, 5))


def test_dmtg_recovers_planted_groups(planted) -> None:
    data, truth = planted
    aris = []
    for seed in range(5):
        r = dmtg_groups(data, 3, branch_channels=1, batch_size=64, epochs=100, seed=seed,
                        progress=False)
        aris.append(adjusted_rand_score(truth, r.branch))
    # measured on this graph: 0.51, 0.51, 0.74, 0.29, 0.57 (mean 0.52); chance is 0
    assert np.mean(aris) > 0.3, aris


def test_dmtg_training_improves_over_untrained(planted) -> None:
    data, _ = planted
    r = dmtg_groups(data, 3, epochs=20, batch_size=64, progress=False)
    xs = sign_inputs(data, 2)
    pick = torch.as_tensor(r.branch)

    def through_argmax(out: torch.Tensor) -> torch.Tensor:  # (n, K, T) -> (n, T)
        return out[:, pick, torch.arange(out.size(2))]

    fresh = DMTGNetwork(data.num_features, 12, 3, hidden_channels=64)
    before = _train_loss(fresh, (xs,), data, through_argmax)
    after = _train_loss(r.model, (xs,), data, through_argmax)
    assert after < 0.7 * before, (before, after)
    assert r.history[-1]["hard_loss"] < r.history[0]["hard_loss"]


def test_dmtg_sage_full_and_minibatch(planted) -> None:
    data, _ = planted
    for full in (True, False):
        r = dmtg_groups(data, 3, model="sage", epochs=3, full_batch=full, batch_size=128,
                        num_neighbors=(5, 5), progress=False, hidden_channels=16)
        _assert_canonical_partition(r.groups, 12, 3)
        assert len(r.history) == 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(num_groups=0), "num_groups"),
        (dict(num_groups=13), "num_groups"),
        (dict(num_groups=2.0), "num_groups"),
        (dict(num_groups=2, model="gin"), "model"),
        (dict(num_groups=2, tau=(0.1, 1.0)), "tau"),
        (dict(num_groups=2, tau=(1.0, 0.0)), "tau_end"),
        (dict(num_groups=2, epochs=0), "epochs"),
        (dict(num_groups=2, model="sage", full_batch=False, num_neighbors=(5,)),
         "num_neighbors"),
    ],
)
def test_dmtg_bad_arguments(planted, kwargs, match) -> None:
    data, _ = planted
    with pytest.raises(ValueError, match=match):
        dmtg_groups(data, progress=False, **kwargs)


# ------------------------------------------------------------------------------------ TAG
def _naive_lookahead(model, args, y, lr, rows=slice(None), label_mask=None) -> torch.Tensor:
    """Reference: per task, copy the model, one SGD step on L_j over shared params only."""
    names = set(shared_parameter_names(model))
    model = copy.deepcopy(model).eval()
    with torch.no_grad():
        base = masked_bce_per_task(model(*args)[rows], y, label_mask)
    T = y.size(1)
    Z = torch.zeros(T, T, dtype=base.dtype)
    for j in range(T):
        m = copy.deepcopy(model)
        loss_j = masked_bce_per_task(m(*args)[rows], y, label_mask)[j]
        loss_j.backward()
        with torch.no_grad():
            for n, p in m.named_parameters():
                if n in names:
                    p -= lr * p.grad
            after = masked_bce_per_task(m(*args)[rows], y, label_mask)
        Z[:, j] = 1 - after / base  # column j: effect of a step on task j on every task
    return Z


def _tiny_sign():
    torch.manual_seed(0)
    model = build_model("sign", 5, 4, hidden_channels=8, num_layers=2, dropout=0.5)
    xs = torch.randn(40, 3, 5)
    y = (torch.rand(40, 4) < 0.4).float()
    return model, (xs,), y


def test_tag_self_affinity_is_own_lookahead_gain() -> None:
    model, args, y = _tiny_sign()
    Z = lookahead_affinity(model, args, y, lr=0.5)
    for i in range(4):
        # explicit copy, one SGD step on the shared parameters with L_i only, recompute L_i
        m = copy.deepcopy(model).eval()
        before = masked_bce_per_task(m(*args), y)[i]
        before.backward()
        with torch.no_grad():
            for n, p in m.named_parameters():
                if not n.startswith("head."):
                    p -= 0.5 * p.grad
            after = masked_bce_per_task(m(*args), y)[i]
        assert float(Z[i, i]) == pytest.approx(float(1 - after / before.detach()), abs=1e-6)
    assert model.training  # restored after the eval-mode lookahead


@pytest.mark.parametrize("chunk_size", [None, 3])
def test_tag_vectorised_matches_naive_loop_sign(chunk_size) -> None:
    model, args, y = _tiny_sign()
    Z = lookahead_affinity(model, args, y, lr=0.5, chunk_size=chunk_size)
    ref = _naive_lookahead(model, args, y, lr=0.5)
    assert Z.shape == (4, 4)
    torch.testing.assert_close(Z, ref, atol=1e-5, rtol=0)
    assert Z.abs().max() > 1e-3  # the comparison is not between two zero matrices


def test_tag_vectorised_matches_naive_loop_sage_with_rows_and_mask() -> None:
    torch.manual_seed(1)
    model = build_model("sage", 6, 5, hidden_channels=8, num_layers=2)
    x, ei = torch.randn(30, 6), torch.randint(0, 30, (2, 90))
    rows = torch.arange(0, 30, 2)
    y = (torch.rand(15, 5) < 0.4).float()
    lm = torch.rand(15, 5) < 0.8
    lm[:, 4] = False  # a task without labels in the batch: no gain, no NaN
    Z = lookahead_affinity(model, (x, ei), y, lm, lr=0.3, rows=rows)
    ref = _naive_lookahead(model, (x, ei), y, 0.3, rows, lm)
    assert torch.isfinite(Z).all()
    torch.testing.assert_close(Z[:4, :4], ref[:4, :4], atol=1e-5, rtol=0)
    assert (Z[4] == 0).all()
    # task 4 has no loss, so its gradient and thus its effect on the others is 0
    torch.testing.assert_close(Z[:, 4], torch.zeros(5), atol=1e-6, rtol=0)


def test_tag_recovers_planted_groups_sign(planted) -> None:
    data, truth = planted
    r = tag_groups(data, 3, epochs=5, batch_size=128, progress=False)
    _assert_canonical_partition(r.groups, 12, 3)
    assert len(r.groups) == 3
    ari = adjusted_rand_score(truth, _labels(r.groups, 12))
    # measured 1.0 for seeds 0-2 on four graph seeds
    assert ari > 0.8, ari
    A = r.affinity
    assert A.shape == (12, 12) and r.num_lookaheads == 15
    same = truth[:, None] == truth[None, :]
    off = ~np.eye(12, dtype=bool)
    assert A[same & off].mean() > A[~same].mean()
    assert np.diag(A).min() > 0  # a step on a task lowers that task's own loss
    np.testing.assert_allclose(r.symmetric, r.symmetric.T)
    assert (np.diag(r.symmetric) == 0).all()


def test_tag_recovers_planted_groups_sage(planted) -> None:
    data, truth = planted
    r = tag_groups(data, 3, model="sage", epochs=20, every=2, progress=False,
                   hidden_channels=32)
    assert r.num_lookaheads == 10
    ari = adjusted_rand_score(truth, _labels(r.groups, 12))
    assert ari > 0.8, ari


def test_tag_deterministic_and_minibatch_sage(planted) -> None:
    data, _ = planted
    kw = dict(model="sage", full_batch=False, batch_size=128, num_neighbors=(5, 5),
              epochs=2, every=2, hidden_channels=16, seed=4, progress=False)
    a, b = tag_affinity(data, **kw), tag_affinity(data, **kw)
    np.testing.assert_array_equal(a.affinity, b.affinity)
    assert a.num_lookaheads == 3  # 3 batches per epoch, steps 0, 2, 4
    assert a.groups is None


@pytest.mark.parametrize("budget, expected", [(5, 5), (4, 4), (100, 15), (1, 1)])
def test_tag_lookahead_budget_spaces_lookaheads(planted, budget, expected) -> None:
    data, _ = planted
    # 3 batches per epoch x 5 epochs = 15 steps; every = ceil(15 / budget)
    r = tag_affinity(data, epochs=5, batch_size=128, num_lookaheads=budget,
                     hidden_channels=16, progress=False)
    assert r.num_lookaheads == expected
    with pytest.raises(ValueError, match="num_lookaheads"):
        tag_affinity(data, epochs=1, num_lookaheads=0, progress=False)


def test_tag_training_improves_over_untrained(planted) -> None:
    data, _ = planted
    r = tag_affinity(data, epochs=10, batch_size=64, progress=False, hidden_channels=32)
    xs = sign_inputs(data, 2)
    fresh = build_model("sign", data.num_features, 12, hidden_channels=32, dropout=0.0)
    before, after = _train_loss(fresh, (xs,), data), _train_loss(r.model, (xs,), data)
    assert after < 0.7 * before, (before, after)
    assert r.history[-1]["loss"] < r.history[0]["loss"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(k=0), "k must"),
        (dict(k=13), "k must"),
        (dict(k=2, model="mlp"), "model"),
        (dict(k=2, lr_lookahead=0.0), "lr_lookahead"),
        (dict(k=2, every=0), "every"),
        (dict(k=2, chunk_size=0), "chunk_size"),
    ],
)
def test_tag_bad_arguments(planted, kwargs, match) -> None:
    data, _ = planted
    with pytest.raises(ValueError, match=match):
        tag_groups(data, progress=False, **kwargs)


def test_lookahead_rejects_unknown_shared_names() -> None:
    model, args, y = _tiny_sign()
    with pytest.raises(ValueError, match="not parameters"):
        lookahead_affinity(model, args, y, lr=0.1, shared=["nope"])

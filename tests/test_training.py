import math

import pytest
import torch
import torch.nn.functional as F

from graphtag.models import SIGN, MultitaskGNN
from graphtag.training import Trainer, constant_predictor_f1, masked_bce_per_task, multitask_scores


def test_masked_bce_equals_hand_computation():
    logits = torch.tensor([[0.0, 2.0], [1.0, -1.0], [-3.0, 0.5]])
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    mask = torch.tensor([[True, False], [True, True], [False, False]])

    def bce(z, t):
        p = 1 / (1 + math.exp(-z))
        return -(t * math.log(p) + (1 - t) * math.log(1 - p))

    got = masked_bce_per_task(logits, y, mask)
    want0 = (bce(0.0, 1) + bce(1.0, 0)) / 2
    want1 = bce(-1.0, 1) / 1
    assert torch.allclose(got, torch.tensor([want0, want1]), atol=1e-6)
    # No mask: plain per-task mean, matching torch's BCE.
    full = masked_bce_per_task(logits, y)
    assert torch.allclose(full, F.binary_cross_entropy_with_logits(logits, y, reduction="none")
                          .mean(0))
    # A task with no labelled node contributes 0 and no gradient.
    z = logits.clone().requires_grad_()
    masked_bce_per_task(z, y, torch.zeros_like(mask)).sum().backward()
    assert torch.count_nonzero(z.grad) == 0


def test_pos_weight_scales_positive_term():
    z, y = torch.tensor([[0.3]]), torch.tensor([[1.0]])
    assert torch.allclose(masked_bce_per_task(z, y, pos_weight=torch.tensor([3.0])),
                          3 * masked_bce_per_task(z, y))


def test_scores_skip_tasks_without_positives():
    y = torch.tensor([[1, 0], [0, 0], [1, 0]])
    s = torch.tensor([[2.0, 1.0], [-1.0, -1.0], [-2.0, -1.0]])
    r = multitask_scores(y, s)
    assert r["num_scored_tasks"] == 1
    assert math.isclose(r["macro_f1"], 2 / 3)  # precision 1, recall 1/2
    assert math.isnan(r["per_task_f1"][1])


def test_minibatch_shapes(amazon_data):
    torch.manual_seed(0)
    model = MultitaskGNN(amazon_data.num_features, 32, amazon_data.y.size(1))
    tr = Trainer(model, batch_size=64, num_neighbors=(5, 3), progress=False)
    b = next(tr._batches(amazon_data, torch.Generator().manual_seed(0)))
    out = model(*b.args)[b.rows]
    assert out.shape == (64, 100) and b.y.shape == (64, 100) and b.label_mask is None
    assert b.weight is None and b.ids is None  # one process: the whole global batch


def _train(data, seed=0, epochs=6, **kw):
    torch.manual_seed(seed)
    model = MultitaskGNN(data.num_features, 64, data.y.size(1))
    tr = Trainer(model, epochs=epochs, batch_size=256, num_neighbors=(10, 5), lr=0.01,
                 pos_weight="auto", seed=seed, progress=False, **kw)
    tr.fit(data)
    return tr


def test_short_training_beats_constant_predictor(amazon_data):
    tr = _train(amazon_data)
    val = tr.evaluate(amazon_data, "val")
    const = constant_predictor_f1(amazon_data.y[amazon_data.val_mask])
    assert val["macro_f1"] > const + 0.2, (val["macro_f1"], const)
    assert val["roc_auc"] > 0.9
    assert len(tr.history_) == 6 and tr.best_epoch_ >= 1


def test_training_is_deterministic(amazon_data):
    a = _train(amazon_data, epochs=2)
    b = _train(amazon_data, epochs=2)
    assert [h["loss"] for h in a.history_] == [h["loss"] for h in b.history_]
    assert a.evaluate(amazon_data)["macro_f1"] == b.evaluate(amazon_data)["macro_f1"]


def test_resume_after_interruption_gives_same_result(amazon_data, tmp_path):
    full = _train(amazon_data, epochs=4, checkpoint_dir=tmp_path / "a", patience=None)

    class Stop(Exception):
        pass

    torch.manual_seed(0)
    model = MultitaskGNN(amazon_data.num_features, 64, amazon_data.y.size(1))
    tr = Trainer(model, epochs=4, batch_size=256, num_neighbors=(10, 5), pos_weight="auto",
                 progress=False, checkpoint_dir=tmp_path / "b", patience=None)
    orig = tr.evaluate
    calls = {"n": 0}

    def crash_in_epoch_3(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise Stop
        return orig(*a, **k)

    tr.evaluate = crash_in_epoch_3
    with pytest.raises(Stop):
        tr.fit(amazon_data)
    assert torch.load(tmp_path / "b" / "last.pt", weights_only=False)["epoch"] == 2
    torch.manual_seed(123)  # a fresh process: the RNG state must come from the checkpoint
    model2 = MultitaskGNN(amazon_data.num_features, 64, amazon_data.y.size(1))
    tr2 = Trainer(model2, epochs=4, batch_size=256, num_neighbors=(10, 5), pos_weight="auto",
                  progress=False, checkpoint_dir=tmp_path / "b", patience=None)
    tr2.fit(amazon_data, resume=True)
    assert [h["loss"] for h in tr2.history_] == [h["loss"] for h in full.history_]
    for p, q in zip(model2.parameters(), full.model.parameters(), strict=False):
        assert torch.equal(p, q)


def test_full_batch_and_sign_train(amazon_data):
    tr = _train(amazon_data, epochs=5, full_batch=True)
    assert tr.history_[-1]["loss"] < tr.history_[0]["loss"]
    torch.manual_seed(0)
    sign = SIGN(amazon_data.num_features, 64, amazon_data.y.size(1), num_hops=2)
    tr = Trainer(sign, epochs=8, batch_size=256, pos_weight="auto", progress=False)
    tr.fit(amazon_data)
    const = constant_predictor_f1(amazon_data.y[amazon_data.val_mask])
    assert tr.evaluate(amazon_data, "val")["macro_f1"] > const + 0.2


def test_fanout_must_match_layers(amazon_data):
    model = MultitaskGNN(amazon_data.num_features, 16, amazon_data.y.size(1), num_layers=3)
    with pytest.raises(ValueError, match="one fan-out per layer"):
        Trainer(model, epochs=1, num_neighbors=(5, 5), progress=False).fit(amazon_data)


def test_task_count_mismatch(amazon_data):
    model = MultitaskGNN(amazon_data.num_features, 16, 7)
    with pytest.raises(ValueError, match="100 tasks but the model has 7"):
        Trainer(model, epochs=1, progress=False).fit(amazon_data)


def test_label_mask_excludes_unknown_labels_from_scores_and_training(amazon_data):
    y = torch.tensor([[1, 0], [0, 1], [1, 1], [0, 0]])
    s = torch.tensor([[2.0, -1.0], [-1.0, -3.0], [-2.0, 1.0], [3.0, 2.0]])
    mask = torch.tensor([[True, False], [True, True], [True, True], [False, True]])
    r = multitask_scores(y, s, mask)
    # Task 0 over rows 0-2: TP 1, FN 1 -> F1 2/3; task 1 over rows 1-3: TP 1, FN 1, FP 1 -> 1/2.
    assert r["per_task_f1"] == pytest.approx([2 / 3, 1 / 2])
    d = amazon_data.clone()
    lm = torch.rand(d.y.shape, generator=torch.Generator().manual_seed(0)) > 0.3
    d.label_mask = lm
    torch.manual_seed(0)
    model = MultitaskGNN(d.num_features, 32, d.y.size(1))
    tr = Trainer(model, epochs=2, batch_size=256, num_neighbors=(5, 5), progress=False).fit(d)
    b = next(tr._batches(d, torch.Generator().manual_seed(0)))
    assert b.label_mask is not None and b.label_mask.shape == b.y.shape
    logits = tr.predict_logits(d)
    ev = tr.evaluate(d, "val", logits)
    vm = d.val_mask
    assert ev["macro_f1"] == multitask_scores(d.y[vm], logits[vm], lm[vm])["macro_f1"]


def test_evaluating_another_graph_uses_that_graph(amazon_data):
    torch.manual_seed(0)
    model = MultitaskGNN(amazon_data.num_features, 16, amazon_data.y.size(1))
    tr = Trainer(model, epochs=1, batch_size=256, num_neighbors=(5, 5), progress=False)
    tr.fit(amazon_data)
    other = amazon_data.clone()
    other.edge_index = other.edge_index[:, : other.edge_index.size(1) // 2].clone()
    a, b = tr.predict_logits(amazon_data), tr.predict_logits(other)
    from torch_sparse import SparseTensor

    n = other.num_nodes
    adj = SparseTensor.from_edge_index(other.edge_index, sparse_sizes=(n, n)).t()
    model.eval()
    with torch.no_grad():
        assert torch.allclose(b, model.inference(other.x, adj), atol=1e-5)
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("with_mask", [False, True])
def test_scores_match_sklearn_reference(with_mask):
    from sklearn.metrics import f1_score, roc_auc_score

    g = torch.Generator().manual_seed(3)
    y = (torch.rand(400, 9, generator=g) < 0.2).int()
    y[:, 4] = 0  # a task without positives
    s = torch.randn(400, 9, generator=g) + y
    lm = torch.rand(400, 9, generator=g) > 0.25 if with_mask else torch.ones(400, 9, dtype=bool)
    r = multitask_scores(y, s, lm if with_mask else None)
    f1s, aucs = [], []
    for t in range(9):
        m = lm[:, t]
        yt, st = y[m, t].numpy(), s[m, t].numpy()
        if yt.sum() == 0:
            assert math.isnan(r["per_task_f1"][t])
            continue
        f1s.append(f1_score(yt, st > 0, zero_division=0))
        assert r["per_task_f1"][t] == pytest.approx(f1s[-1], abs=1e-12)
        if yt.sum() < yt.size:
            aucs.append(roc_auc_score(yt, st))
    assert r["macro_f1"] == pytest.approx(sum(f1s) / len(f1s), abs=1e-12)
    assert r["roc_auc"] == pytest.approx(sum(aucs) / len(aucs), abs=1e-12)
    micro = f1_score(y[lm].numpy(), (s[lm] > 0).numpy(), zero_division=0)
    assert r["micro_f1"] == pytest.approx(micro, abs=1e-12)
    fast = multitask_scores(y, s, lm if with_mask else None, roc_auc=False)
    assert math.isnan(fast["roc_auc"])
    assert fast["per_task_f1"][:4] == r["per_task_f1"][:4] and math.isnan(fast["per_task_f1"][4])


@pytest.mark.parametrize("kind", ["sage", "sign"])
def test_predicting_some_nodes_equals_rows_of_all(amazon_data, kind):
    torch.manual_seed(0)
    d, T = amazon_data, amazon_data.y.size(1)
    model = (MultitaskGNN(d.num_features, 16, T) if kind == "sage"
             else SIGN(d.num_features, 16, T, num_hops=2))
    tr = Trainer(model, epochs=1, batch_size=512, num_neighbors=(5, 5), progress=False).fit(d)
    full = tr.predict_logits(d)
    rows = d.val_mask.nonzero().flatten()
    # chunks smaller than the rows exercise the preallocated output
    part = tr.predict_logits(d, rows, batch_size=97)
    assert torch.allclose(part, full[rows], atol=1e-6)
    assert torch.equal(tr.predict_logits(d, d.val_mask, batch_size=97), part)
    assert tr.predict_logits(d, rows[:0]).shape == (0, T)
    ev, ev_full = tr.evaluate(d, "val"), tr.evaluate(d, "val", full)
    assert ev["macro_f1"] == pytest.approx(ev_full["macro_f1"], abs=1e-9)
    assert ev["loss"] == pytest.approx(ev_full["loss"], rel=1e-5)


def test_constant_predictor_f1_equals_scoring_all_positive():
    g = torch.Generator().manual_seed(1)
    y = (torch.rand(300, 6, generator=g) < 0.1).int()
    y[:, 2] = 0
    ref = multitask_scores(y, torch.ones(300, 6))["macro_f1"]
    assert constant_predictor_f1(y) == pytest.approx(ref, abs=1e-12)
    lm = torch.rand(300, 6, generator=g) > 0.3
    ref = multitask_scores(y, torch.ones(300, 6), lm)["macro_f1"]
    assert constant_predictor_f1(y, lm) == pytest.approx(ref, abs=1e-12)


# ------------------------------------------------------------ batches split across ranks
def _epoch(data, world, **kw):
    from graphtag.training.batching import iter_batches

    args = dict(uses_graph=True, xs=None, full_batch=False, batch_size=100,
                num_neighbors=(4, 3), device=torch.device("cpu"))
    args.update(kw)
    return [list(iter_batches(data, gen=torch.Generator().manual_seed(0), cache={},
                              rank=r, world=world, **args)) for r in range(world)]


@pytest.mark.parametrize("conv", ["sage", "gcn"])
def test_rank_shares_of_a_global_batch_give_its_logits(amazon_data, conv):
    """Three ranks' shares (seeds, upstream subgraph, dropout rows) reproduce the global
    batch: the same logits row for row, and loss weights summing to one per task."""
    from graphtag.training.batching import RowDropout

    d = amazon_data.clone()
    d.label_mask = torch.rand(d.y.shape, generator=torch.Generator().manual_seed(0)) > 0.3
    torch.manual_seed(0)
    model = MultitaskGNN(d.num_features, 16, d.y.size(1), conv=conv, dropout=0.5).train()
    (whole,), shares = _epoch(d, 1), _epoch(d, 3)
    assert all(len(s) == len(whole) for s in shares)
    for i in (0, len(whole) - 1):
        with RowDropout(whole[i], seed=7):
            ref = model(*whole[i].args)[whole[i].rows]
        parts, weights = [None] * ref.size(0), []
        for r in range(3):
            b = shares[r][i]
            with RowDropout(b, seed=7):
                out = model(*b.args)[b.rows]
            for j, row in enumerate(range(r, ref.size(0), 3)):
                parts[row] = out[j]
            weights.append(b.weight)
            if r < ref.size(0):  # else a stand-in row with weight 0 (the last batch is 1 node)
                assert torch.equal(b.y, whole[i].y[r::3])
            else:
                assert not b.weight.any()
        assert torch.allclose(torch.stack(parts), ref, atol=1e-5)
        lm = whole[i].label_mask
        assert torch.allclose(sum(weights), (lm.sum(0) > 0).float())


def test_sign_and_full_batch_shares_cover_each_batch_once(amazon_data):
    from graphtag.models.sign import sign_propagate

    xs = sign_propagate(amazon_data.x, amazon_data.edge_index, 2, amazon_data.num_nodes)
    for kw in (dict(uses_graph=False, xs=xs), dict(full_batch=True)):
        (whole,), shares = _epoch(amazon_data, 1, **kw), _epoch(amazon_data, 2, **kw)
        for i, b in enumerate(whole):
            ys = torch.cat([s[i].y for s in shares])
            assert ys.shape == b.y.shape
            assert torch.allclose(sum(s[i].weight for s in shares), torch.ones(b.y.size(1)))

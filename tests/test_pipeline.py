"""Grad-TAG end to end: estimator, map-back scoring, grouped training, `graphtag run` stages."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from sklearn.metrics import adjusted_rand_score

from graphtag.affinity.mapback import mapback_logits
from graphtag.cli.main import main
from graphtag.datasets import synthetic_communities
from graphtag.gradients.store import collect_gradients
from graphtag.models import build_model
from graphtag.pipeline import GradTAG, RunConfig, run_pipeline
from graphtag.training import Trainer
from graphtag.training.grouped import check_groups, train_groups
from graphtag.training.run import TrainConfig


def _labels(groups, T):
    lab = np.empty(T, dtype=np.int64)
    for i, g in enumerate(groups):
        lab[g] = i
    return lab


@pytest.fixture(scope="module")
def planted():
    """12 tasks in 3 planted groups on a 1,500-node graph, with a trained SAGE base model."""
    syn = synthetic_communities(num_nodes=1500, num_tasks=12, num_groups=3, seed=0)
    data = syn.to_data(num_features=32, seed=0)
    torch.manual_seed(0)
    model = build_model("sage", data.num_features, 12, hidden_channels=64, dropout=0.0)
    Trainer(model, epochs=30, patience=None, pos_weight="auto", batch_size=256, seed=0,
            progress=False).fit(data)
    return syn, data, model.eval()


@pytest.mark.parametrize("seed", [0, 1])
def test_gradtag_recovers_planted_groups(planted, seed):
    syn, data, model = planted
    gt = GradTAG(3, num_subsets=300, subset_size=4, proj_dim=64, seed=seed, progress=False)
    gt.fit(model, data)
    ari = adjusted_rand_score(syn.task_group, _labels(gt.groups_, 12))
    assert ari >= 0.8, (ari, gt.groups_)
    # the fitted attributes are consistent with each other
    assert gt.subsets_.shape == (300, 4) and gt.scores_.shape == (300, 4)
    assert gt.coef_.shape == (300, 64)
    A = gt.affinity_
    assert np.allclose(A, A.T) and np.all(np.diag(A) == 0)
    assert gt.coverage_["tasks_covered"] == 12
    assert np.isfinite(gt.base_scores_).all()


def test_gradtag_within_group_affinity_exceeds_across(planted):
    syn, data, model = planted
    gt = GradTAG(num_subsets=300, subset_size=4, proj_dim=64, progress=False).fit(model, data)
    same = syn.task_group[:, None] == syn.task_group[None, :]
    off = ~np.eye(12, dtype=bool)
    assert gt.affinity_[same & off].mean() > gt.affinity_[~same].mean() + 0.01
    with pytest.raises(ValueError, match="give k"):
        gt.group()
    assert len(gt.group(3)) == 3


def test_gradtag_statistics_fits_match_the_exact_fits(planted, tmp_path):
    syn, data, model = planted
    # d = 64, lam = 0.1: at the defaults (256, 0.01) the converged exact fits of 300
    # subsets on 1,500 nodes overfit (their groups' ARI against the planted ones is 0.74,
    # the statistics fits' 1.0; affinity Spearman 0.997), so the groups would not be equal
    kw = dict(num_subsets=300, subset_size=4, proj_dim=64, lam=0.1, progress=False)
    exact = GradTAG(3, fit_method="exact", **kw)
    fs, ss = exact.collect(model, data, tmp_path / "grads")
    exact.estimate(fs, ss)
    fast = GradTAG(3, **kw).estimate(fs, ss)
    assert fast.fit_method == "stats" and fast.timings_["fit_statistics"] > 0
    iu = np.triu_indices(12, 1)
    rho = spearmanr(exact.affinity_[iu], fast.affinity_[iu]).statistic
    assert rho > 0.95, rho
    # the coefficients are close, not equal: one Newton step plus one refinement
    rel = (fast.coef_ - exact.coef_).norm() / exact.coef_.norm()
    assert 0 < rel < 0.2, rel
    assert exact.group() == fast.group()
    assert adjusted_rand_score(syn.task_group, _labels(fast.groups_, 12)) >= 0.8
    with pytest.raises(ValueError, match="fit_method"):
        GradTAG(fit_method="lbfgs", progress=False).estimate(fs, ss)


def test_gradtag_bad_arguments(planted):
    _, data, model = planted
    for kw, msg in [({"scoring": "exact"}, "scoring"), ({"metric": "auc"}, "metric"),
                    ({"subset_size": 13}, "subset_size"), ({"lam": -1.0}, "lam"),
                    ({"params": "head"}, "params")]:
        with pytest.raises(ValueError, match=msg):
            GradTAG(**kw, progress=False).fit(model, data)
    with pytest.raises(ValueError, match="num_groups"):
        GradTAG(13, progress=False).fit(model, data)


@pytest.fixture(scope="module")
def sign_setup(tmp_path_factory):
    syn = synthetic_communities(num_nodes=400, num_tasks=6, num_groups=2, seed=1)
    data = syn.to_data(num_features=16, seed=1)
    torch.manual_seed(0)
    model = build_model("sign", data.num_features, 6, hidden_channels=16, dropout=0.0)
    Trainer(model, epochs=10, patience=None, seed=0, progress=False).fit(data)
    return data, model.eval()


@pytest.mark.parametrize("shared_only", [False, True])
def test_mapback_is_first_order_consistent_with_linearised(sign_setup, tmp_path, shared_only):
    """At z = 0 map-back returns the base logits; for small z its change matches g . z."""
    from graphtag.gradients.persample import kronecker_projector

    data, model = sign_setup
    proj = kronecker_projector(model, 64, seed=0, shared_only=shared_only)
    val = data.val_mask.nonzero().flatten()
    store = collect_gradients(model, data, val, proj, tmp_path / "s", progress=False)
    subs = np.array([[0, 1, 2], [3, 4, 5]])
    z0 = torch.zeros(2, 64, dtype=torch.float64)
    base = mapback_logits(model, data, proj, z0, subs, nodes=val, offset=True)
    want = torch.from_numpy(np.asarray(store.logits, dtype=np.float64))[:, subs].permute(1, 0, 2)
    assert torch.allclose(base, want, atol=1e-5)
    # no-offset map-back subtracts the base network: zero at z = 0
    assert mapback_logits(model, data, proj, z0, subs, nodes=val, offset=False).abs().max() < 1e-9
    z = torch.randn(2, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    g = torch.from_numpy(np.asarray(store.grads, dtype=np.float64))  # (n, T, d)
    # in float64, so that f(W + delta) - f(W) does not drown in float32 rounding
    m64, d64 = copy.deepcopy(model).double(), data.clone()
    d64.x = data.x.double()
    errs = []
    for eps in (1e-3, 1e-5):
        lin = torch.einsum("ntd,kd->knt", g, eps * z)
        lin = torch.stack([lin[k][:, subs[k]] for k in range(2)])
        mb = mapback_logits(m64, d64, proj, eps * z, subs, nodes=val, offset=False)
        errs.append(float((mb - lin).norm() / lin.norm()))
    # first order: the gap vanishes with the step (ReLU kinks make it slow: P^T z is dense)
    assert errs[1] < 0.01 and errs[1] < errs[0] / 5, errs
    # the model itself is left untouched
    assert torch.allclose(mapback_logits(model, data, proj, z0, subs, nodes=val), base)


def test_gradtag_mapback_scoring_runs_and_agrees_in_ranking(sign_setup):
    data, model = sign_setup
    kw = dict(num_subsets=40, subset_size=3, proj_dim=64, offset=True, progress=False)
    lin = GradTAG(scoring="linearized", **kw).fit(model, data)
    mb = GradTAG(scoring="mapback", **kw).fit(model, data)
    assert np.array_equal(lin.subsets_, mb.subsets_)
    a, b = lin.scores_.flatten().numpy(), mb.scores_.flatten().numpy()
    assert np.corrcoef(a, b)[0, 1] > 0.8


def test_check_groups():
    assert check_groups([[1, 0], (2,)], 3) == [[1, 0], [2]]
    for bad in ([[0, 1]], [[0, 1], [1, 2]], [[0, 1, 2], []], []):
        with pytest.raises(ValueError, match="partition"):
            check_groups(bad, 3)


def test_train_groups_one_group_equals_plain_training_and_resumes(sign_setup, tmp_path):
    data, _ = sign_setup
    cfg = TrainConfig(model="sign", hidden_channels=16, epochs=4, patience=None, dropout=0.0)
    res = train_groups(data, [list(range(6))], cfg, out_dir=tmp_path / "g", progress=False)
    from graphtag.training.run import build_trainer

    tr = build_trainer(cfg, data.num_features, 6, progress=False)
    tr.fit(data)
    direct = tr.evaluate(data, "test")
    assert res["test_macro_f1"] == pytest.approx(direct["macro_f1"], abs=1e-12)
    again = train_groups(data, [list(range(6))], cfg, out_dir=tmp_path / "g", progress=False)
    assert again["seconds_this_call"] == 0.0  # loaded, not retrained
    assert again["seconds"] == res["seconds"] > 0  # ... but its training time is still known
    assert again["test_per_task_f1"] == res["test_per_task_f1"]


def test_train_groups_reloads_old_full_logits_files_from_checkpoint(sign_setup, tmp_path):
    data, _ = sign_setup
    cfg = TrainConfig(model="sign", hidden_channels=16, epochs=2, patience=None)
    groups = [[0, 1, 2], [3, 4, 5]]
    res = train_groups(data, groups, cfg, out_dir=tmp_path / "g", progress=False)
    f = tmp_path / "g" / "group_001" / "logits.pt"
    saved = torch.load(f, weights_only=True)
    rows = (data.val_mask | data.test_mask).nonzero().flatten()
    assert torch.equal(saved["nodes"], rows) and saved["logits"].shape == (rows.numel(), 3)
    # a file written before only evaluated rows were kept: (N, |g|) logits, no "nodes"
    full = torch.zeros(data.num_nodes, 3)
    full[rows] = saved["logits"]
    torch.save({"tasks": [3, 4, 5], "logits": full, "num_parameters": 1}, f)
    again = train_groups(data, groups, cfg, out_dir=tmp_path / "g", progress=False)
    assert again["test_per_task_f1"] == res["test_per_task_f1"]
    assert again["seconds"] == pytest.approx(res["seconds"])  # from the finished checkpoint
    assert "nodes" in torch.load(f, weights_only=True)  # rewritten in the current layout


def test_train_groups_modes_and_task_order(sign_setup):
    data, _ = sign_setup
    cfg = TrainConfig(model="sign", hidden_channels=16, epochs=3, patience=None)
    groups = [[5, 0], [1, 2, 3], [4]]
    for mode in ("models", "heads"):
        res = train_groups(data, groups, cfg, mode=mode, progress=False)
        assert res["group_sizes"] == [2, 3, 1] and len(res["test_per_task_f1"]) == 6
        assert 0.0 <= res["test_macro_f1"] <= 1.0
    sep = train_groups(data, groups, cfg, mode="models", progress=False)
    heads = train_groups(data, groups, cfg, mode="heads", progress=False)
    assert sep["num_parameters"] > heads["num_parameters"]
    with pytest.raises(ValueError, match="mode"):
        train_groups(data, groups, cfg, mode="experts")


# ------------------------------------------------------------------- pipeline
def _cfg(**kw):
    base = dict(dataset="synthetic", num_tasks=8, num_features=16, model="sign",
                hidden_channels=16, epochs=4, patience=None, num_subsets=40, subset_size=3,
                proj_dim=16, num_groups=2, max_fit_nodes=300, max_score_nodes=200,
                methods=("gradtag", "random"))
    base.update(kw)
    return RunConfig(**base)


def _run(cfg, out, root):
    cfg.root = str(root)
    lines: list[str] = []
    rep = run_pipeline(cfg, out, progress=False, log=lines.append)
    return rep, lines


def _ran(lines):
    return {ln.split("]")[0][1:] for ln in lines if ln.endswith("running")
            or ln.endswith("resuming")}


def test_run_pipeline_writes_report_and_skips_finished_stages(tmp_path):
    out = tmp_path / "run"
    rep, lines = _run(_cfg(), out, tmp_path / "data")
    assert _ran(lines) == {"base", "gradients", "affinity", "grouping", "train"}
    for f in ("report.json", "report.md", "groups.csv", "affinity.png", "config.json"):
        assert (out / f).exists(), f
    assert set(rep["methods"]) == {"mtl", "gradtag", "random"}
    assert rep["planted_group_ari"] is not None
    assert sorted(t for g in rep["groups"]["gradtag"] for t in g) == list(range(8))
    csv = (out / "groups.csv").read_text().splitlines()
    assert csv[0].startswith("task,gradtag_group") and len(csv) == 9
    md = (out / "report.md").read_text()
    assert "Grad-TAG groups" in md and "MTL" in md
    assert json.loads((out / "report.json").read_text())["num_groups"] == 2

    # same config: nothing recomputed, same report
    rep2, lines2 = _run(_cfg(), out, tmp_path / "data")
    assert _ran(lines2) == set()
    assert rep2["methods"] == rep["methods"]

    # grouped-training setting only: earlier stages kept
    _, lines3 = _run(_cfg(group_mode="heads"), out, tmp_path / "data")
    assert _ran(lines3) == {"train"}
    # a subset-fit setting: affinity and everything after it redone, gradients kept
    _, lines4 = _run(_cfg(group_mode="heads", lam=1.0), out, tmp_path / "data")
    assert _ran(lines4) == {"affinity", "grouping", "train"}
    assert list((out / "reports").glob("report-*.json"))  # earlier reports are kept


def test_run_pipeline_peer_budgets_redo_only_their_method(tmp_path):
    out, root = tmp_path / "run", tmp_path / "data"
    kw = dict(methods=("gradtag", "tag", "pcgrad"), peer_epochs=1, tag_lookaheads=2)
    rep, lines = _run(_cfg(**kw), out, root)
    assert {"[grouping] tag", "[grouping] gradtag"} <= set(lines)
    assert set(rep["methods"]) == {"mtl", "gradtag", "tag", "pcgrad"}

    def redone(lines):
        names = ("gradtag", "tag", "pcgrad", "random")
        return {w for ln in lines if ln.startswith(("[grouping] ", "[train] "))
                for w in [ln.split()[1].rstrip(":")] if w in names}

    # TAG's lookahead budget: TAG regrouped (and retrained if its groups change), no other
    _, lines = _run(_cfg(**{**kw, "tag_lookaheads": 3}), out, root)
    assert redone(lines) <= {"tag"} and "[grouping] tag" in lines
    # the combiners' gradient source: only the combiner model is retrained
    _, lines = _run(_cfg(**{**kw, "tag_lookaheads": 3, "rep_grad": True}), out, root)
    assert redone(lines) == {"pcgrad"}
    with pytest.raises(ValueError, match="tag_lookaheads"):
        _cfg(tag_lookaheads=0)


def test_run_pipeline_resumes_interrupted_stage(tmp_path, monkeypatch):
    import graphtag.pipeline.gradtag as gtmod
    import graphtag.pipeline.run as runmod

    # 60 subsets in blocks of 24, 24, 12 (fit_method="stats" fits 8 * fit_block at a time)
    made = runmod.gradtag_from_config
    monkeypatch.setattr(runmod, "gradtag_from_config",
                        lambda cfg, progress=True: made(cfg, progress).set_params(fit_block=3))
    ref, _ = _run(_cfg(num_subsets=60), tmp_path / "ref", tmp_path / "data")
    real = gtmod.fit_subsets_stats
    calls = {"n": 0}

    def flaky(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the user stops the run inside the affinity stage
        return real(*args, **kw)

    monkeypatch.setattr(gtmod, "fit_subsets_stats", flaky)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _run(_cfg(num_subsets=60), out, tmp_path / "data")
    assert json.loads((out / "affinity" / "manifest.json").read_text())["complete"] is False
    assert len(list((out / "affinity" / "fits").glob("coef_*.npy"))) == 1
    rep, lines = _run(_cfg(num_subsets=60), out, tmp_path / "data")
    assert _ran(lines) == {"affinity", "grouping", "train"}
    assert any("[affinity] resuming" in ln for ln in lines)
    assert calls["n"] == 4  # the saved block was not refitted
    A_ref = np.load(tmp_path / "ref" / "affinity" / "affinity.npy")
    assert np.allclose(np.load(out / "affinity" / "affinity.npy"), A_ref)
    assert rep["groups"] == ref["groups"]


def test_run_pipeline_rejects_models_without_gradients(tmp_path):
    with pytest.raises(ValueError, match="per-sample gradients"):
        _run(_cfg(model="mlp"), tmp_path / "run", tmp_path / "data")
    with pytest.raises(ValueError, match="methods"):
        _cfg(methods=("gradtag", "magic"))


def test_cli_run_small(tmp_path, capsys):
    out = tmp_path / "cli"
    rc = main(["run", "--dataset", "synthetic", "--tasks", "6", "--root", str(tmp_path / "d"),
               "--model", "sign", "--hidden", "16", "--epochs", "3", "--subsets", "30",
               "--subset-size", "3", "--proj-dim", "16", "--groups", "2", "--methods",
               "gradtag,stl", "--no-progress", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "Grad-TAG groups" in text and "STL" in text
    rep = json.loads((out / "report.json").read_text())
    assert rep["methods"]["stl"]["num_groups"] == 6
    assert main(["run", "--methods", "gradtag,nope", "--out", str(out)]) == 2


def test_estimate_discards_fit_blocks_from_other_settings(planted, tmp_path):
    _, data, model = planted
    gt = GradTAG(num_subsets=40, subset_size=3, proj_dim=64, lam=0.1, progress=False)
    tr, va = gt.collect(model, data, tmp_path / "g")
    gt.estimate(tr, va, checkpoint_dir=tmp_path / "fits")
    z1 = gt.coef_.clone()
    gt.lam = 10.0  # another ridge: the saved blocks must not be reused
    gt.estimate(tr, va, checkpoint_dir=tmp_path / "fits")
    assert not torch.allclose(gt.coef_, z1)
    fresh = GradTAG(num_subsets=40, subset_size=3, proj_dim=64, lam=10.0, progress=False)
    fresh.estimate(tr, va)
    assert torch.allclose(gt.coef_, fresh.coef_)


def test_estimate_scores_blockwise_equal_all_at_once(planted, tmp_path):
    from graphtag.affinity import linearized_logits, task_scores

    _, data, model = planted
    # 40 subsets: blocks of 7, ..., 5
    gt = GradTAG(num_subsets=40, subset_size=3, proj_dim=32, fit_block=7, progress=False)
    tr, va = gt.collect(model, data, tmp_path / "g")
    gt.estimate(tr, va)
    u = linearized_logits(va.grads, va.logits, gt.coef_, gt.subsets_, offset=False)
    ref = task_scores(u, va.labels, gt.subsets_)
    assert torch.allclose(gt.scores_, ref, atol=1e-12)
    auto = GradTAG(progress=False).estimate(tr, va)  # 12 tasks: 1,000 subsets of 5
    assert auto.subsets_.shape == (1000, 5) and auto.coverage_["pair_fraction"] == 1.0


# ------------------------------------------------------------ estimator contract
def test_gradtag_get_params_round_trip_and_init_stores_unchanged():
    import inspect

    names = [p for p in inspect.signature(GradTAG.__init__).parameters if p != "self"]
    kw = dict(num_groups=3, num_subsets=7, subset_size=2, proj_dim=8, lam=0.5,
              fanouts=(4, 3), max_fit_nodes=None, params="all", fit_block=5, grad_chunk=9,
              seed=4, progress=False)
    gt = GradTAG(**kw)
    p = gt.get_params()
    assert list(p) == names  # every __init__ argument, nothing else
    for k, v in kw.items():
        assert p[k] is v  # stored unchanged
    assert GradTAG(**p).get_params() == p
    assert gt.get_params(deep=False) == p  # no nested estimators
    # invalid values are accepted by __init__ and refused when fitting
    GradTAG(fit_method="lbfgs", lam=-1.0, proj_dim=0)
    # no hyperparameter is a class attribute (they would be shared by all instances)
    assert not set(names) & set(vars(GradTAG))


def test_gradtag_set_params():
    gt = GradTAG(progress=False)
    assert gt.set_params(lam=2.0, fit_block=3, num_groups=None) is gt
    assert (gt.lam, gt.fit_block, gt.num_groups) == (2.0, 3, None)
    assert gt.get_params()["lam"] == 2.0
    with pytest.raises(ValueError, match="invalid parameter 'lamda'"):
        gt.set_params(lamda=1.0)
    assert "lam=2.0" in repr(gt) and "proj_dim" not in repr(gt)


def test_gradtag_sklearn_clone():
    base = pytest.importorskip("sklearn.base")
    gt = GradTAG(4, num_subsets=10, fanouts=(3, 3), progress=False)
    gt.affinity_ = np.eye(2)  # a fitted attribute: clone drops it
    c = base.clone(gt)
    assert c is not gt and c.get_params() == gt.get_params()
    assert not hasattr(c, "affinity_")


def test_gradtag_fitted_attributes_absent_before_fit(planted, tmp_path):
    gt = GradTAG(3, num_subsets=30, subset_size=3, proj_dim=16, progress=False)
    assert not [a for a in vars(gt) if a.endswith("_") and not a.startswith("__")]
    for a in ("projector_", "subsets_", "coef_", "scores_", "affinity_", "groups_"):
        assert not hasattr(gt, a)
    _, data, model = planted
    gt.fit(model, data, tmp_path / "w")
    for a in ("projector_", "subsets_", "coverage_", "coef_", "scores_", "base_scores_",
              "affinity_", "affinity_se_", "groups_", "timings_"):
        assert hasattr(gt, a), a
    # the fitted estimate round-trips through save_fitted / load_fitted
    gt.save_fitted(tmp_path / "aff")
    back = GradTAG(3, progress=False).load_fitted(tmp_path / "aff")
    assert np.array_equal(back.affinity_, gt.affinity_)
    assert torch.equal(back.coef_, gt.coef_) and torch.equal(back.scores_, gt.scores_)
    assert back.coverage_ == gt.coverage_ and back.group() == gt.groups_
    with pytest.raises(FileNotFoundError, match=r"affinity\.npy"):
        GradTAG().load_fitted(tmp_path / "nothing")


def test_gradtag_checks_params_when_fitting(planted):
    _, data, model = planted
    for kw, msg in [({"fit_block": 0}, "fit_block"), ({"proj_dim": 0}, "proj_dim"),
                    ({"solver": "magic"}, "solver"), ({"max_fit_nodes": 0}, "max_fit_nodes")]:
        gt = GradTAG(**kw, progress=False)  # accepted here
        with pytest.raises(ValueError, match=msg):
            gt.fit(model, data)

"""The true-affinity oracle: subset models trained for real, resumable blocks, `oracle` method."""

from __future__ import annotations

import copy
import itertools
import json

import numpy as np
import pytest
import torch

import graphtag.affinity.oracle as om
from graphtag.affinity import TrueAffinity
from graphtag.datasets import synthetic_communities
from graphtag.models import GroupedHeads, build_model
from graphtag.pipeline import RunConfig, run_pipeline
from graphtag.training import Trainer

T = 6
PAIRS = np.array(list(itertools.combinations(range(T), 2)))  # all 15 task pairs


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These models are tiny: one thread is fastest, and spares the spin-waits of several on
    a shared machine (4-10x slower here under load)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def planted():
    """6 tasks in 2 planted groups on a 600-node graph; a SAGE base model briefly trained."""
    syn = synthetic_communities(num_nodes=600, num_tasks=T, num_groups=2, seed=0)
    data = syn.to_data(num_features=16, seed=0)
    torch.manual_seed(0)
    model = build_model("sage", data.num_features, T, hidden_channels=32, dropout=0.0)
    Trainer(model, epochs=5, patience=None, full_batch=True, seed=0,
            progress=False).fit(data)
    return syn, data, model.eval()


def _oracle(**kw):
    base = dict(mode="finetune", epochs=5, full_batch=True, lr=0.01, progress=False)
    base.update(kw)
    return TrueAffinity(**base)


def test_finetune_within_planted_group_affinity_exceeds_across(planted):
    syn, data, model = planted
    before = copy.deepcopy(model.state_dict())
    est = _oracle(num_groups=2).fit(model, data, subsets=PAIRS)
    same = syn.task_group[:, None] == syn.task_group[None, :]
    off = ~np.eye(T, dtype=bool)
    A = est.affinity_
    assert A[same & off].mean() > A[~same].mean() + 0.005, A
    assert sorted(sorted(g) for g in est.groups_) == [[0, 1, 2], [3, 4, 5]]
    # the fitted attributes fit together, and the base model is left as it was
    assert est.scores_.shape == (15, 2) and est.scores_.dtype == torch.float64
    assert np.isfinite(est.base_scores_).all() and est.base_scores_.shape == (T,)
    assert np.allclose(A, A.T) and np.all(np.diag(A) == 0)
    assert est.coverage_["pairs_covered"] == 15
    assert est.timings_["subsets_trained"] == 15 and est.timings_["seconds_per_subset"] > 0
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    # fine-tuning improves the subset's own tasks over the base model on average
    assert (est.scores_.numpy() - est.base_scores_[PAIRS]).mean() > 0


def test_training_leaves_other_tasks_head_rows_alone(planted):
    _, data, model = planted
    for full_batch in (True, False):
        m = copy.deepcopy(model)
        steps = om.train_on_tasks(m, data, torch.tensor([1, 4]), epochs=2, lr=0.05,
                                  batch_size=128, full_batch=full_batch, seed=0)
        assert steps == (2 if full_batch else 2 * -(-int(data.train_mask.sum()) // 128))
        w, w0 = m.head.lin.weight, model.head.lin.weight
        assert torch.equal(w[[0, 2, 3, 5]], w0[[0, 2, 3, 5]])
        assert not torch.equal(w[[1, 4]], w0[[1, 4]])
        assert not torch.equal(m.encoder.convs[0].lin_l.weight,
                               model.encoder.convs[0].lin_l.weight)


def test_deterministic_given_seed_and_global_rng_untouched(planted):
    _, data, model = planted
    kw = dict(num_subsets=4, subset_size=3, epochs=2, full_batch=False, batch_size=128)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = _oracle(**kw).fit(model, data)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's generator is not drawn
    b = _oracle(**kw).fit(model, data)
    assert torch.equal(a.scores_, b.scores_) and np.array_equal(a.subsets_, b.subsets_)
    c = _oracle(**kw, seed=1).fit(model, data)
    assert not np.array_equal(a.subsets_, c.subsets_)
    d = _oracle(**kw, seed=1).fit(model, data, subsets=a.subsets_)  # same subsets, new seeds
    assert not torch.equal(a.scores_, d.scores_)


def test_resume_reproduces_scores_and_stale_blocks_are_discarded(planted, tmp_path,
                                                                  monkeypatch):
    _, data, model = planted
    ck = tmp_path / "blocks"
    ref = _oracle(epochs=3)
    ref.block = 4  # 15 subsets: blocks of 4, 4, 4, 3
    ref.fit(model, data, ck, subsets=PAIRS)
    files = sorted(ck.glob("scores_*.npy"))
    assert len(files) == 4
    files[1].unlink()  # as if interrupted before these blocks were written
    files[3].unlink()

    calls = []
    real = TrueAffinity._train_one
    monkeypatch.setattr(TrueAffinity, "_train_one",
                        lambda self, *a: (calls.append(a[4]), real(self, *a)))
    again = _oracle(epochs=3)
    again.block = 4
    again.fit(model, data, ck, subsets=PAIRS)
    assert calls == [4, 5, 6, 7, 12, 13, 14]  # only the missing blocks were trained
    assert torch.equal(again.scores_, ref.scores_)
    assert np.array_equal(again.affinity_, ref.affinity_)

    calls.clear()  # another budget: every saved block is stale
    other = _oracle(epochs=4)
    other.block = 4
    other.fit(model, data, ck, subsets=PAIRS)
    assert len(calls) == 15 and not torch.equal(other.scores_, ref.scores_)
    assert json.loads((ck / "oracle.json").read_text())["key"]


def test_blocks_shared_over_ranks_give_the_single_process_scores(planted, tmp_path,
                                                                 monkeypatch):
    """Two ranks simulated one after the other on a shared folder (round robin blocks)."""
    _, data, model = planted
    ref = _oracle(epochs=2)
    ref.block = 4
    ref.fit(model, data, subsets=PAIRS)

    class Rank1Done(Exception):
        pass

    def stop() -> None:
        raise Rank1Done

    ck = tmp_path / "shared"
    calls = []
    real = TrueAffinity._train_one
    monkeypatch.setattr(TrueAffinity, "_train_one",
                        lambda self, *a: (calls.append(a[4]), real(self, *a)))
    monkeypatch.setattr(om, "get_world_size", lambda: 2)
    monkeypatch.setattr(om, "get_rank", lambda: 1)
    monkeypatch.setattr(om, "barrier", lambda: None)
    est = _oracle(epochs=2)
    est.block = 4
    with monkeypatch.context() as mp:  # rank 1: trains its blocks, stops at the barrier
        barriers = iter([lambda: None, stop])  # after the folder check, after its blocks
        mp.setattr(om, "barrier", lambda: next(barriers)())
        with pytest.raises(Rank1Done):
            est.fit(model, data, ck, subsets=PAIRS)
    assert calls == [4, 5, 6, 7, 12, 13, 14]  # blocks 1 and 3
    calls.clear()
    monkeypatch.setattr(om, "get_rank", lambda: 0)
    est.fit(model, data, ck, subsets=PAIRS)  # rank 0: blocks 0 and 2, then reads them all
    assert calls == [0, 1, 2, 3, 8, 9, 10, 11]
    assert torch.equal(est.scores_, ref.scores_)


def test_scratch_mode_with_sign(planted):
    _, data, _ = planted
    torch.manual_seed(0)
    sign = build_model("sign", data.num_features, T, hidden_channels=16, num_layers=2,
                       dropout=0.1)
    before = copy.deepcopy(sign.state_dict())
    kw = dict(mode="scratch", num_subsets=5, subset_size=2, epochs=None, full_batch=False,
              batch_size=256, max_score_nodes=50)
    est = _oracle(**kw).fit(sign, data)
    assert est.epochs_ == om.DEFAULT_EPOCHS["scratch"]
    assert est.scores_.shape == (5, 2) and torch.isfinite(est.scores_).all()
    assert est.score_nodes_.numel() == 50 and bool(data.val_mask[est.score_nodes_].all())
    # models trained from scratch beat the untrained network on their tasks
    assert (est.scores_.numpy() - est.base_scores_[est.subsets_]).mean() > 0.05
    assert all(torch.equal(v, sign.state_dict()[k]) for k, v in before.items())
    # the fresh initialisation is seeded per subset: equal seeds, equal scores
    again = _oracle(**kw).fit(sign, data)
    assert torch.equal(est.scores_, again.scores_)


def test_common_init_trains_every_subset_from_the_same_start(planted):
    """Common random numbers: a subset's scores depend on its tasks, not on its position."""
    _, data, _ = planted
    torch.manual_seed(0)
    sign = build_model("sign", data.num_features, T, hidden_channels=16, num_layers=2,
                       dropout=0.1)
    subs = np.array([[0, 1], [2, 3], [0, 1]])
    kw = dict(mode="scratch", epochs=3, full_batch=False, batch_size=256, max_score_nodes=50)
    crn = _oracle(common_init=True, **kw).fit(sign, data, subsets=subs)
    assert torch.equal(crn.scores_[0], crn.scores_[2])
    own = _oracle(**kw).fit(sign, data, subsets=subs)  # seeded per subset: rows differ
    assert not torch.equal(own.scores_[0], own.scores_[2])
    assert torch.equal(own.scores_[1], _oracle(**kw).fit(sign, data, subsets=subs).scores_[1])


def test_scratch_resume_ignores_the_given_models_weights(planted, tmp_path):
    """From scratch every subset is re-initialised: a new model instance of the same shape
    (other random weights) resumes from the saved blocks; another shape does not."""
    _, data, _ = planted
    kw = dict(mode="scratch", epochs=2, full_batch=True, max_score_nodes=50)
    subs = np.array([[0, 1], [2, 3]])

    def sign(h: int):
        return build_model("sign", data.num_features, T, hidden_channels=h, dropout=0.0)

    ref = _oracle(**kw).fit(sign(8), data, tmp_path, subsets=subs)
    f = next(tmp_path.glob("scores_*.npy"))
    stamp = f.stat().st_mtime_ns
    again = _oracle(**kw).fit(sign(8), data, tmp_path, subsets=subs)
    assert f.stat().st_mtime_ns == stamp and torch.equal(again.scores_, ref.scores_)
    _oracle(**kw).fit(sign(12), data, tmp_path, subsets=subs)
    assert not f.exists() or f.stat().st_mtime_ns != stamp


def test_bad_arguments(planted):
    _, data, model = planted
    for kw, msg in [({"mode": "lookahead"}, "mode"), ({"epochs": 0}, "epochs"),
                    ({"lr": 0.0}, "lr"), ({"num_subsets": 0}, "num_subsets"),
                    ({"subset_size": T + 1}, "subset_size"), ({"metric": "auc"}, "metric"),
                    ({"batch_size": 0}, "batch_size"), ({"num_groups": T + 1}, "num_groups"),
                    ({"max_score_nodes": 0}, "max_score_nodes")]:
        with pytest.raises(ValueError, match=msg):
            _oracle(**kw).fit(model, data)
    for subs, msg in [([[0, 0]], "distinct"), ([[0, T]], "lie in"), ([0, 1], "2-D")]:
        with pytest.raises(ValueError, match=msg):
            _oracle().fit(model, data, subsets=subs)
    grouped = build_model("sage", data.num_features, T, hidden_channels=8,
                          head=GroupedHeads(8, [[0, 1, 2], [3, 4, 5]]))
    with pytest.raises(ValueError, match="MultiLabelHead"):
        _oracle().fit(grouped, data)
    with pytest.raises(ValueError, match="give k"):
        _oracle(num_subsets=2, epochs=1).fit(model, data).group()
    for kw, msg in [({"oracle_mode": "x"}, "oracle_mode"), ({"oracle_subsets": 0},
                    "oracle_subsets"), ({"oracle_epochs": 0}, "oracle_epochs"),
                    ({"oracle_subset_size": 0}, "oracle_subset_size")]:
        with pytest.raises(ValueError, match=msg):
            RunConfig(**kw)


def _cfg(**kw):  # as tests/test_pipeline.py's small run, with the oracle
    base = dict(dataset="synthetic", num_tasks=8, num_features=16, model="sign",
                hidden_channels=16, epochs=4, patience=None, num_subsets=40, subset_size=3,
                proj_dim=16, num_groups=2, max_fit_nodes=300, max_score_nodes=200,
                methods=("oracle",), oracle_subsets=12, oracle_subset_size=3,
                oracle_epochs=1)
    base.update(kw)
    return RunConfig(**base)


def test_run_pipeline_oracle_method(tmp_path):
    out, root = tmp_path / "run", str(tmp_path / "data")
    lines: list[str] = []
    rep = run_pipeline(_cfg(root=root), out, progress=False, log=lines.append)
    assert "[grouping] oracle" in lines
    folder = out / "grouping" / "oracle"
    for f in ("affinity.npy", "subsets.npy", "scores.npy", "base_scores.npy", "groups.json"):
        assert (folder / f).exists(), f
    assert np.load(folder / "subsets.npy").shape == (12, 3)
    assert np.load(folder / "affinity.npy").shape == (8, 8)
    groups = rep["groups"]["oracle"]
    assert len(groups) == 2 and sorted(t for g in groups for t in g) == list(range(8))
    assert set(rep["methods"]) == {"mtl", "oracle"}
    assert rep["planted_group_ari"]["oracle"] is not None
    summary = json.loads((folder / "manifest.json").read_text())["summary"]
    assert summary["num_subsets"] == 12 and summary["timings"]["subsets_trained"] == 12

    # unchanged: nothing redone; the oracle's budget: only the oracle regrouped (and retrained
    # if its groups change), Grad-TAG's groups kept
    def regrouped(lines):  # "[grouping] <method>" lines
        return [ln.split()[1] for ln in lines
                if ln.startswith("[grouping] ") and len(ln.split()) == 2
                and not ln.endswith(("running", "resuming"))]

    lines.clear()
    run_pipeline(_cfg(root=root), out, progress=False, log=lines.append)
    assert not any(ln.endswith(("running", "resuming")) for ln in lines), lines
    lines.clear()
    run_pipeline(_cfg(root=root, oracle_epochs=2), out, progress=False, log=lines.append)
    assert regrouped(lines) == ["oracle"], lines
    # configs at the oracle's defaults leave its keys out (earlier runs' configs stay equal)
    assert "oracle_mode" not in RunConfig().to_json()
    assert RunConfig.from_json(_cfg().to_json()) == _cfg()

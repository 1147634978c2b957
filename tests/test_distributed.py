"""Multi-process runs (torch.distributed, gloo on CPU) give the single-process results.

Two processes are started with ``torch.multiprocessing.spawn`` and a ``file://`` rendezvous;
rank 0 writes what the parent then compares with a single-process computation.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

from graphtag import distributed as gd

GLOO = dist.is_available() and dist.is_gloo_available()
FILES = ("grads.npy", "logits.npy", "labels.npy", "nodes.npy")
GROUPS = [[0, 3], [1, 4], [2, 5]]


# ------------------------------------------------------------------ single process
def test_shard_is_a_deterministic_round_robin_partition():
    items = list(range(10))
    parts = [gd.shard(items, r, 3) for r in range(3)]
    assert parts == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert sorted(x for p in parts for x in p) == items
    assert gd.shard(items, 0, 1) == items
    assert gd.shard(range(2), 3, 4) == []  # more ranks than items: some get nothing
    assert gd.shard("abcde", 1, 2) == ["b", "d"]
    assert gd.shard(items) == items  # no process group: rank 0 of 1
    for rank, world in ((2, 2), (-1, 2), (0, 0)):
        with pytest.raises(ValueError, match="rank"):
            gd.shard(items, rank, world)


def test_helpers_are_no_ops_in_a_single_process(monkeypatch):
    assert not dist.is_initialized()
    assert (gd.get_rank(), gd.get_world_size(), gd.is_main(), gd.is_distributed()) == (
        0, 1, True, False)
    gd.barrier()
    obj = {"a": [1, 2]}
    assert gd.broadcast_object(obj) is obj
    assert gd.all_gather_object(obj) == [obj]
    assert gd.on_main(lambda: 7) == 7
    with pytest.raises(KeyError):
        gd.on_main(lambda: {}["x"])
    with gd.main_first(), gd.solo():
        assert gd.get_world_size() == 1
    for env in ({}, {"WORLD_SIZE": "1"}):
        monkeypatch.delenv("WORLD_SIZE", raising=False)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        assert gd.init_from_env() is False
        assert not dist.is_initialized()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(RuntimeError, match="torchrun"):
        gd.init_from_env()


# ----------------------------------------------------------------- two processes
def _setup(root: Path):
    """The graph and base model every process uses (the model from the parent's file)."""
    from graphtag.datasets import synthetic_communities
    from graphtag.models import build_model
    from graphtag.pipeline import GradTAG

    syn = synthetic_communities(num_nodes=600, num_tasks=6, num_groups=2, seed=0)
    data = syn.to_data(num_features=16, seed=0)
    model = build_model("sage", 16, 6, hidden_channels=16, dropout=0.0)
    model.load_state_dict(torch.load(root / "base.pt", weights_only=True))
    gt = GradTAG(num_subsets=50, subset_size=3, proj_dim=16, max_fit_nodes=300,
                 max_score_nodes=150, fanouts=(4, 3), batch_size=16, progress=False)
    gt.grad_chunk = 40  # 8 chunks of fit nodes, 4 of score nodes: both ranks get several
    return data, model.eval(), gt


def _estimate(gt, folder: Path, model, data, checkpoint: bool):
    from graphtag.gradients.store import GradientStore

    gt.estimate(GradientStore(folder / "gradients" / "train"),
                GradientStore(folder / "gradients" / "val"), model=model, data=data,
                checkpoint_dir=folder / "fits" if checkpoint else None, block=15)
    return gt


def _train_cfg(**kw):
    from graphtag.training.run import TrainConfig

    base = dict(model="sign", hidden_channels=16, epochs=3, patience=None, dropout=0.0)
    base.update(kw)
    return TrainConfig(**base)


#: Trainings that must give the same model on one and on two processes: neighbour sampling
#: (a last batch of 1 node, so one rank has no share of it, and missing labels), GCN (its
#: normalisation reads degrees), a full-batch GIN, SIGN; all with dropout.
SAME_RUNS = {
    "sage": dict(model="sage", num_neighbors=(5, 5), batch_size=100, dropout=0.3),
    "sage_tail_masked": dict(model="sage", num_neighbors=(5, 5), batch_size=359, dropout=0.3),
    "gcn": dict(model="gcn", num_neighbors=(4, 3), batch_size=100, dropout=0.3),
    "gin_full_batch": dict(model="gin", full_batch=True, dropout=0.3),
    "sign": dict(model="sign", batch_size=100, dropout=0.3),
}


def _same_runs(data) -> dict[str, tuple[dict, list[float]]]:
    """Every run of :data:`SAME_RUNS`: final weights and per-epoch training losses."""
    from graphtag.training.run import build_trainer

    out = {}
    for name, kw in SAME_RUNS.items():
        d = data.clone()
        if "masked" in name:
            d.label_mask = torch.rand(d.y.shape, generator=torch.Generator().manual_seed(1)) > 0.3
        tr = build_trainer(_train_cfg(**kw), 16, 6, progress=False)
        tr.fit(d)
        out[name] = (tr.model.state_dict(), [h["loss"] for h in tr.history_])
    return out


def _worker(rank: int, world: int, init: str, root: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        _worker_body(Path(root))
    finally:
        dist.destroy_process_group()


def _worker_body(root: Path) -> None:
    from graphtag.gradients.store import model_fingerprint
    from graphtag.optim import make_combiner
    from graphtag.training.grouped import train_groups
    from graphtag.training.run import build_trainer

    data, model, gt = _setup(root)
    out = root / "dist"
    # 1. sharded gradient stores, a resume of a store a single process began, and the fits
    gt.collect(model, data, out / "gradients")
    gt.collect(model, data, root / "resumed")
    _estimate(gt, out, model, data, checkpoint=True)
    if gd.is_main():
        np.save(out / "affinity.npy", gt.affinity_)
        np.save(out / "coef.npy", gt.coef_.numpy())
    _estimate(gt, out, model, data, checkpoint=False)  # blocks exchanged in memory
    if gd.is_main():
        np.save(out / "affinity_nock.npy", gt.affinity_)
    gt.scoring = "mapback"  # one forward pass per subset, split over the ranks
    _estimate(gt, out, model, data, checkpoint=True)
    if gd.is_main():
        np.save(out / "scores_mapback.npy", gt.scores_.numpy())
    # 2. group models, round robin over the ranks
    res = train_groups(data, GROUPS, _train_cfg(), out_dir=out / "groups", progress=False)
    # 3. data-parallel training: DDP (plain sum) and gradient averaging (PCGrad)
    cfg = _train_cfg(model="sage", num_neighbors=(5, 5), batch_size=128, dropout=0.3)
    tr = build_trainer(cfg, 16, 6, checkpoint_dir=out / "ddp", progress=False)
    tr.fit(data)
    pc = build_trainer(_train_cfg(), 16, 6, progress=False, combiner=make_combiner("pcgrad"))
    pc.fit(data)
    fps = gd.all_gather_object((model_fingerprint(tr.model), model_fingerprint(pc.model)))
    same = _same_runs(data)
    if gd.is_main():
        torch.save(same, out / "same_runs.pt")
    hist = gd.all_gather_object(tr.history_)
    # 4. a failure on rank 0 inside on_main reaches every rank (nobody waits forever)
    try:
        gd.on_main(lambda: int("not a number"))
        raised = ""
    except ValueError as err:
        raised = str(err)
    errors = gd.all_gather_object(raised)
    if gd.is_main():
        (out / "result.json").write_text(json.dumps({
            "groups": res, "fingerprints": fps, "histories": hist, "errors": errors,
            "best_epoch": tr.best_epoch_, "world": gd.get_world_size()}))


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """Parent: base model, single-process references, a half-collected store; then the two
    ranks run :func:`_worker_body`."""
    import torch.multiprocessing as mp

    import graphtag.gradients.persample as persample
    from graphtag.datasets import synthetic_communities
    from graphtag.models import build_model
    from graphtag.training import Trainer
    from graphtag.training.grouped import train_groups

    if not GLOO:
        pytest.skip("torch.distributed with the gloo backend is not available")
    root = tmp_path_factory.mktemp("dist")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the workers: BLAS rounding may depend on threads
    try:
        data = synthetic_communities(num_nodes=600, num_tasks=6, num_groups=2,
                                     seed=0).to_data(num_features=16, seed=0)
        torch.manual_seed(0)
        model = build_model("sage", 16, 6, hidden_channels=16, dropout=0.0)
        Trainer(model, epochs=5, patience=None, batch_size=128, num_neighbors=(5, 5),
                pos_weight="auto", progress=False).fit(data)
        torch.save(model.state_dict(), root / "base.pt")
        data, model, gt = _setup(root)
        ref = root / "single"
        gt.collect(model, data, ref / "gradients")
        _estimate(gt, ref, model, data, checkpoint=True)
        mapback = _setup(root)[2]
        mapback.scoring, mapback.projector_ = "mapback", gt.projector_
        _estimate(mapback, ref, model, data, checkpoint=True)
        groups = train_groups(data, GROUPS, _train_cfg(), progress=False)
        torch.save(_same_runs(data), ref / "same_runs.pt")
        # a store one process began and stopped in its third chunk; two processes finish it
        orig, calls = persample.GradientModel.projected_gradients, {"n": 0}

        def crash(self, *a, **k):
            calls["n"] += 1
            if calls["n"] > 7:  # 40-node chunks = 3 batches of <= 16: inside chunk 2
                raise KeyboardInterrupt
            return orig(self, *a, **k)

        persample.GradientModel.projected_gradients = crash
        try:
            with pytest.raises(KeyboardInterrupt):
                gt.collect(model, data, root / "resumed")
        finally:
            persample.GradientModel.projected_gradients = orig
    finally:
        torch.set_num_threads(threads)
    init = f"file://{root / 'rendezvous'}"
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.spawn(_worker, args=(2, init, str(root)), nprocs=2, join=True)
    return root, gt, groups, mapback.scores_.numpy()


def test_sharded_gradient_store_equals_single_process_bytes(two_processes):
    root, *_ = two_processes
    for split in ("train", "val"):
        a, b = root / "single" / "gradients" / split, root / "dist" / "gradients" / split
        for f in FILES:
            assert (a / f).read_bytes() == (b / f).read_bytes(), (split, f)
        ma, mb = (json.loads((x / "manifest.json").read_text()) for x in (a, b))
        assert ma == mb and mb["complete"]
        assert not list(b.glob("progress*.json"))


def test_store_begun_by_one_process_is_finished_by_two(two_processes):
    root, *_ = two_processes
    for split in ("train", "val"):
        a, b = root / "single" / "gradients" / split, root / "resumed" / split
        for f in FILES:
            assert (a / f).read_bytes() == (b / f).read_bytes(), (split, f)


def test_sharded_subset_fits_give_the_single_process_affinity(two_processes):
    root, gt, *_ = two_processes
    A = np.load(root / "dist" / "affinity.npy")
    assert np.allclose(A, gt.affinity_, rtol=0, atol=1e-12)
    assert np.allclose(np.load(root / "dist" / "coef.npy"), gt.coef_.numpy(), atol=1e-12)
    assert np.allclose(np.load(root / "dist" / "affinity_nock.npy"), gt.affinity_, atol=1e-12)
    # every block was fitted once, by one of the ranks
    assert len(list((root / "dist" / "fits").glob("coef_*.npy"))) == 4


def test_sharded_mapback_scores_match_single_process(two_processes):
    root, *_, mapback = two_processes
    got = np.load(root / "dist" / "scores_mapback.npy")
    assert got.shape == mapback.shape == (50, 3)
    assert np.allclose(got, mapback, rtol=1e-6, atol=1e-9, equal_nan=True)


def test_groups_trained_round_robin_equal_single_process(two_processes):
    root, _, ref, _ = two_processes
    res = json.loads((root / "dist" / "result.json").read_text())
    got = res["groups"]
    for key in ("test_macro_f1", "val_macro_f1", "test_per_task_f1", "num_parameters"):
        assert got[key] == pytest.approx(ref[key], abs=1e-12, nan_ok=True), key
    assert all((root / "dist" / "groups" / f"group_{i:03d}" / "logits.pt").exists()
               for i in range(3))


def test_data_parallel_training_keeps_ranks_identical(two_processes):
    root, *_ = two_processes
    res = json.loads((root / "dist" / "result.json").read_text())
    assert res["world"] == 2
    (ddp0, pc0), (ddp1, pc1) = res["fingerprints"]
    assert ddp0 == ddp1 and pc0 == pc1
    h0, h1 = res["histories"]
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in h0]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in h1]
    losses = [r["loss"] for r in h0]
    assert len(losses) == 3 and all(np.isfinite(losses)) and losses[-1] < losses[0]
    ck = torch.load(root / "dist" / "ddp" / "last.pt", weights_only=False)
    assert ck["epoch"] == 3


@pytest.mark.parametrize("name", list(SAME_RUNS))
def test_data_parallel_training_gives_the_one_process_model(two_processes, name):
    """Each global batch split over two ranks: the same updates as one process."""
    root, *_ = two_processes
    got = torch.load(root / "dist" / "same_runs.pt", weights_only=False)[name]
    ref = torch.load(root / "single" / "same_runs.pt", weights_only=False)[name]
    assert got[0].keys() == ref[0].keys()
    for key, value in ref[0].items():
        assert torch.allclose(got[0][key], value, rtol=0, atol=1e-5), (name, key)
    assert got[1] == pytest.approx(ref[1], abs=1e-6)


def test_rank0_failure_in_on_main_raises_on_every_rank(two_processes):
    root, *_ = two_processes
    errors = json.loads((root / "dist" / "result.json").read_text())["errors"]
    assert len(errors) == 2 and all("not a number" in e for e in errors)

"""``graphtag run``: base model -> gradients -> subset fits -> affinity -> groups -> grouped
training -> report, each stage in its own folder with a manifest (see
:mod:`graphtag.pipeline.stages`).

Run folder layout::

    config.json            the config of the latest call
    base/                  base model trained on all tasks (the MTL baseline)
    gradients/{train,val}  projected gradient stores (fit and score nodes)
    affinity/              subsets.npy, coef.npy, scores.npy, affinity.npy, coverage.json
    grouping/<method>/     groups.json (gradtag, spectral, random, dmtg, tag, oracle);
                           oracle/ also affinity.npy, subsets.npy, scores.npy,
                           base_scores.npy and blocks/ (resumable trained-subset scores)
    train/<method>/        one model (or head) per group, metrics.json
    report.json, report.md, affinity.png, groups.csv

Under ``torchrun`` (see :mod:`graphtag.distributed` and ``docs/distributed.md``) every rank
runs :func:`run_pipeline`: the base model trains data parallel, gradient chunks, subset fits
and group models are split over the ranks, and rank 0 alone decides which stages to skip,
writes the config, manifests and report, groups the tasks and logs.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Data

from graphtag._io import write_json as _write_json
from graphtag.affinity.oracle import TrueAffinity
from graphtag.datasets import load_dataset
from graphtag.distributed import barrier, init_from_env, is_main, main_first, on_main
from graphtag.gradients.store import GradientStore
from graphtag.grouping import GROUPINGS, group_pvalues, singleton_groups
from graphtag.grouping.registry import RUN_GROUPINGS
from graphtag.models import build_model
from graphtag.pipeline.config import COMBINER_METHODS, GROUPING_METHODS, RunConfig
from graphtag.pipeline.gradtag import GradTAG
from graphtag.pipeline.report import write_report
from graphtag.pipeline.stages import Stage
from graphtag.training.grouped import train_groups
from graphtag.training.run import train_run

__all__ = ["check_gradient_model", "load_base_model", "run_pipeline"]

#: Models ``graphtag run`` can take per-sample gradients of.
GRADIENT_MODELS = ("sage", "gcn", "gin", "sign")

#: The run groupings with a grouping sub-stage and a ``groups.json`` (registry order): all
#: but ``stl``, one group per task, which is made on the spot.
_STORED_GROUPINGS = tuple(name for name in RUN_GROUPINGS if name != "stl")
#: Those computed from the affinity in every run (the report compares them with Grad-TAG);
#: the others (DMTG, TAG and the oracle, which train networks of their own) only when listed
#: in ``methods``.
_AFFINITY_GROUPINGS = tuple(name for name in _STORED_GROUPINGS
                            if GROUPINGS[name].reads == "affinity")


def check_gradient_model(model: str) -> None:
    """Raise ``ValueError`` unless ``graphtag run`` can take per-sample gradients of
    ``model`` (one of :data:`GRADIENT_MODELS`)."""
    if model in GRADIENT_MODELS:
        return
    *first, last = GRADIENT_MODELS
    hint = f"{', '.join(first)} or {last}" if first else last
    raise ValueError(f"graphtag run needs per-sample gradients, implemented for models "
                     f"{GRADIENT_MODELS}; got model={model!r} (use --model {hint}).")


def gradtag_from_config(config: RunConfig, progress: bool = True) -> GradTAG:
    """The :class:`GradTAG` estimator a run config describes."""
    return GradTAG(
        config.num_groups, num_subsets=config.num_subsets, subset_size=config.subset_size,
        proj_dim=config.proj_dim, proj_nnz=config.proj_nnz, lam=config.lam,
        fit_method=config.fit_method, fit_refine=config.fit_refine, offset=config.offset,
        metric=config.metric, scoring=config.scoring,
        fanouts=config.grad_fanouts, max_fit_nodes=config.max_fit_nodes,
        max_score_nodes=config.max_score_nodes, params=config.grad_params,
        solver=config.solver, seed=config.seed,
        progress=progress,
    )


def oracle_from_config(config: RunConfig, progress: bool = True) -> TrueAffinity:
    """The :class:`~graphtag.affinity.TrueAffinity` oracle a run config describes: its own
    budget, the base model's learning rate and minibatches, Grad-TAG's score nodes."""
    return TrueAffinity(
        mode=config.oracle_mode, num_subsets=config.oracle_subsets,
        subset_size=config.oracle_subset_size, epochs=config.oracle_epochs, lr=config.lr,
        batch_size=config.batch_size, num_neighbors=config.num_neighbors,
        full_batch=config.full_batch, max_score_nodes=config.max_score_nodes,
        metric=config.metric, solver=config.solver, device=config.device, seed=config.seed,
        progress=progress,
    )


def load_base_model(config: RunConfig, data: Data, folder: str | os.PathLike) -> torch.nn.Module:
    """The trained base model of a run (``base/model.pt``), in eval mode."""
    model = build_model(config.model, data.num_features, data.y.size(1),
                        hidden_channels=config.hidden_channels, num_layers=config.num_layers,
                        dropout=config.dropout)
    model.load_state_dict(torch.load(Path(folder) / "model.pt", weights_only=True))
    return model.eval()


def _ari(truth: np.ndarray, groups: list[list[int]]) -> float:
    from sklearn.metrics import adjusted_rand_score

    lab = np.empty(len(truth), dtype=np.int64)
    for i, g in enumerate(groups):
        lab[g] = i
    return float(adjusted_rand_score(truth, lab))


def _group(name: str, config: RunConfig, data: Data, A: np.ndarray, k: int,
           progress: bool) -> list[list[int]]:
    """Groups of one grouping method of the registry (:data:`graphtag.grouping.GROUPINGS`):
    of the affinity ``A`` or of ``data``, with the options it takes from the config."""
    method = GROUPINGS.get(name)
    if method is None or method.reads not in ("affinity", "data"):
        raise ValueError(f"unknown grouping method {name!r}.")
    options: dict[str, Any] = dict(
        solver=config.solver, model=config.model, hidden_channels=config.hidden_channels,
        num_layers=config.num_layers, device=config.device, progress=progress,
        num_lookaheads=config.tag_lookaheads)
    if config.peer_epochs is not None:
        options["epochs"] = config.peer_epochs
    source = A if method.reads == "affinity" else data
    return method(source, k, config.seed, **method.select(options))


def run_pipeline(
    config: RunConfig,
    out_dir: str | os.PathLike,
    *,
    progress: bool = True,
    log: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Run (or resume) the whole Grad-TAG job; returns the report dict.

    Finished stages whose settings did not change are skipped; an interrupted stage resumes;
    a stage whose settings changed is redone together with the stages after it.

    Parameters
    ----------
    config
        The run's settings.
    out_dir
        Run folder (created if needed).
    progress
        Progress bars.
    log
        Called with one line per stage event (None: silent).

    Notes
    -----
    Launched by ``torchrun`` (``WORLD_SIZE`` > 1 in the environment), this initialises the
    process group itself (:func:`graphtag.distributed.init_from_env`); every rank must call
    it with the same config and an ``out_dir`` on a filesystem all ranks share. Only rank 0
    logs, shows progress and writes the config, manifests and report; every rank returns
    the report.
    """
    init_from_env()
    main = is_main()
    say = log if log is not None and main else (lambda _msg: None)
    progress = progress and main
    check_gradient_model(config.model)
    out = Path(out_dir)

    def write_config() -> None:
        out.mkdir(parents=True, exist_ok=True)
        old_cfg = out / "config.json"
        if old_cfg.exists():
            prev = json.loads(old_cfg.read_text())
            changed = sorted(k for k in set(prev) | set(config.to_json())
                             if prev.get(k) != config.to_json().get(k))
            if changed:
                say(f"config changed in {changed}: stages that depend on these are redone")
                if (out / "report.json").exists():
                    keep = out / "reports"
                    keep.mkdir(exist_ok=True)
                    stamp = time.strftime("%Y%m%d-%H%M%S")
                    os.replace(out / "report.json", keep / f"report-{stamp}.json")
        _write_json(old_cfg, config.to_json())

    on_main(write_config)

    t0 = time.perf_counter()
    with main_first():  # rank 0 builds the processed-data cache, the others read it
        data = load_dataset(config.dataset, config.root, config.num_tasks, log=progress,
                            **config.data_kwargs())
    T = int(data.y.size(1))
    k = min(config.num_groups, T)
    if k < config.num_groups:
        say(f"num_groups={config.num_groups} > {T} tasks: using {k} groups")
    say(f"data: {config.dataset}, {data.num_nodes:,} nodes, "
        f"{data.edge_index.size(1) // 2:,} edges, {T} tasks ({time.perf_counter() - t0:.1f} s)")
    gt = gradtag_from_config(config, progress)
    seconds: dict[str, float] = {}

    def stage(name: str, upstream: str, body: Callable[[Path], dict[str, Any]],
              clear: bool = True) -> Stage:
        # Rank 0 reads and writes the manifest and broadcasts its decisions; the body runs
        # on every rank (each shards its own work) and the stage is marked complete only
        # once all ranks are through it.
        st = Stage(out, name, config.stage_values(name), upstream)
        if on_main(lambda: st.done):
            seconds[name] = on_main(st.seconds)
            say(f"[{name}] up to date, skipped (took {seconds[name]:.1f} s)")
            return st
        status = on_main(lambda: st.begin(clear))
        say(f"[{name}] {'resuming' if status == 'partial' else 'running'}")
        summary = body(st.folder)
        barrier()
        on_main(lambda: st.finish(summary))
        seconds[name] = on_main(st.seconds)
        say(f"[{name}] done in {seconds[name]:.1f} s")
        return st

    # 1. base model on all tasks (also the MTL baseline)
    base = stage("base", "", lambda f: {k: v for k, v in train_run(
        config.train_config(), f, progress=progress, overwrite=True, data=data).items()
        if k != "test_per_task_f1"})
    model = load_base_model(config, data, base.folder)

    # 2. projected gradients
    def gradients(folder: Path) -> dict[str, Any]:
        tr, va = gt.collect(model, data, folder)
        return {"fit_nodes": tr.num_nodes, "score_nodes": va.num_nodes, "dim": tr.dim}
    grads = stage("gradients", base.fingerprint, gradients)

    # 3. subset fits, scores, affinity
    def affinity(folder: Path) -> dict[str, Any]:
        # with the model, estimate makes the projector when the gradients stage was skipped
        gt.estimate(GradientStore(grads.folder / "train"), GradientStore(grads.folder / "val"),
                    model=model, data=data, checkpoint_dir=folder / "fits")
        if main:  # every rank holds the same estimate; one writes it
            gt.save_fitted(folder)
        m, size = gt.subsets_.shape
        return {"coverage": gt.coverage_, "timings": gt.timings_,
                "num_subsets": int(m), "subset_size": int(size)}
    aff = stage("affinity", grads.fingerprint, affinity)
    # the estimate from its folder, also when the affinity stage was skipped and grouping is
    # redone (rank 0 groups; the others get the affinity for the report)
    A = on_main(lambda: gt.load_fitted(aff.folder).affinity_)

    # 4. groupings. Each method is a sub-stage with its own fingerprint, so adding a method
    #    computes only that one; DMTG, TAG and the oracle train networks of their own.
    def gstage(folder: Path, name: str) -> Stage:
        # DMTG, TAG and the oracle do not read the affinity: only the base settings and
        # their own budget invalidate them
        if name == "oracle":
            budget = {"mode": config.oracle_mode, "subsets": config.oracle_subsets,
                      "subset_size": config.oracle_subset_size, "epochs": config.oracle_epochs,
                      "max_score_nodes": config.max_score_nodes, "metric": config.metric}
            return Stage(folder, name, {"k": k, "solver": config.solver, **budget},
                         base.fingerprint)
        if GROUPINGS[name].reads == "affinity":
            return Stage(folder, name, {"k": k, "solver": config.solver}, aff.fingerprint)
        budget = {"epochs": config.peer_epochs}  # DMTG's and TAG's
        if name == "tag":
            budget["lookaheads"] = config.tag_lookaheads
        return Stage(folder, name, {"k": k, "solver": config.solver, **budget},
                     base.fingerprint)

    def grouping(folder: Path) -> dict[str, Any]:
        if "oracle" in config.methods:  # a model per subset: shared out over the ranks
            oracle(gstage(folder, "oracle"))
        return on_main(lambda: grouping_main(folder))  # cheap next to the rest: rank 0 only

    def oracle(sub: Stage) -> None:
        if on_main(lambda: sub.done):
            return
        on_main(sub.begin)
        say("[grouping] oracle")
        est = oracle_from_config(config, progress).fit(model, data, sub.folder / "blocks")
        barrier()

        def write() -> None:
            for name in ("subsets", "scores", "base_scores", "affinity"):
                v = getattr(est, f"{name}_")
                np.save(sub.folder / f"{name}.npy", v.numpy() if torch.is_tensor(v) else v)
            _write_json(sub.folder / "groups.json", est.group(k))
            m, size = est.subsets_.shape
            sub.finish({"mode": config.oracle_mode, "num_subsets": int(m),
                        "subset_size": int(size), "epochs": est.epochs_,
                        "coverage": est.coverage_, "timings": est.timings_})
        on_main(write)

    def grouping_main(folder: Path) -> dict[str, Any]:
        secs = {}
        # the affinity's groupings, then the listed peers (the oracle: grouping() above)
        needed = [m for m in _STORED_GROUPINGS if m != "oracle" and (
            m in _AFFINITY_GROUPINGS or m in config.methods)]
        for name in needed:
            sub = gstage(folder, name)
            if not sub.done:
                sub.begin()
                say(f"[grouping] {name}")
                _write_json(sub.folder / "groups.json", _group(name, config, data, A, k,
                                                               progress))
                sub.finish()
            secs[name] = sub.seconds()
        if "oracle" in config.methods:  # grouped by grouping() before this
            secs["oracle"] = gstage(folder, "oracle").seconds()
        return {"seconds": secs}
    grp = stage("grouping", aff.fingerprint, grouping, clear=False)
    groups = on_main(lambda: {m: json.loads((grp.folder / m / "groups.json").read_text())
                              for m in _STORED_GROUPINGS if gstage(grp.folder, m).done})
    groups["stl"] = singleton_groups(T)
    groups.update({m: [list(range(T))] for m in COMBINER_METHODS})

    # 5. grouped training; each method keeps its own fingerprint (groups + settings), so
    #    adding a method or regrouping one retrains only that method
    def finish_method(sub: Stage, m: dict[str, Any]) -> None:
        _write_json(sub.folder / "metrics.json", m)
        sub.finish({"test_macro_f1": m["test_macro_f1"]})

    def train(folder: Path) -> dict[str, Any]:
        res = {}
        for method in config.methods:
            settings = {"groups": groups[method], "method": method,
                        "group_mode": config.group_mode}
            if method in COMBINER_METHODS:
                settings["rep_grad"] = config.rep_grad
            sub = Stage(folder, method, settings, base.fingerprint)
            if not on_main(lambda sub=sub: sub.done):
                on_main(sub.begin)
                say(f"[train] {method}: {len(groups[method])} groups")
                m = train_groups(data, groups[method], config.train_config(),
                                 mode=config.group_mode, out_dir=sub.folder / "models",
                                 progress=progress,
                                 combiner=method if method in COMBINER_METHODS else None,
                                 combiner_options={"rep_grad": config.rep_grad})
                barrier()
                on_main(lambda sub=sub, m=m: finish_method(sub, m))
            res[method] = on_main(sub.seconds)
        return {"seconds": res}
    trn = stage("train", grp.fingerprint, train, clear=False)

    # 6. report (always rewritten: cheap), by rank 0; every rank returns it
    report = on_main(lambda: _report(config, out, data, model, base, trn, aff, groups,
                                     seconds, k, T, A))
    say(f"report: {out / 'report.md'}")
    return report


def _report(config: RunConfig, out: Path, data: Data, model: torch.nn.Module, base: Stage,
            trn: Stage, aff: Stage, groups: dict[str, list[list[int]]],
            seconds: dict[str, float], k: int, T: int, A: np.ndarray) -> dict[str, Any]:
    """Assemble the report of a finished run and write its files."""
    methods: dict[str, Any] = {}
    bm = json.loads((base.folder / "metrics.json").read_text())
    methods["mtl"] = {"num_groups": 1, "test_macro_f1": bm["test_macro_f1"],
                      "val_macro_f1": bm["val_macro_f1"], "test_micro_f1": bm["test_micro_f1"],
                      "seconds": bm["seconds_train"],
                      "num_parameters": sum(p.numel() for p in model.parameters()),
                      "test_per_task_f1": bm["test_per_task_f1"]}
    for method in config.methods:
        methods[method] = json.loads((trn.folder / method / "metrics.json").read_text())
    truth = data.get("task_group")
    planted = None
    if truth is not None:
        tg = np.asarray(truth)
        planted = {m: _ari(tg, groups[m]) for m in groups if m in GROUPING_METHODS}
    report = {
        "config": config.to_json(),
        "dataset": {"name": config.dataset, "num_nodes": int(data.num_nodes),
                    "num_edges": int(data.edge_index.size(1) // 2), "num_tasks": T},
        "num_groups": k,
        "stage_seconds": seconds,
        "affinity_seconds": aff.summary().get("timings"),
        "coverage": aff.summary().get("coverage"),
        "subsets": {k: aff.summary().get(k) for k in ("num_subsets", "subset_size")},
        "methods": methods,
        "groups": {m: g for m, g in groups.items() if m not in (*COMBINER_METHODS, "stl")},
        "planted_group_ari": planted,
        "group_pvalues": {m: group_pvalues(A, groups[m], seed=config.seed)
                          for m in ("gradtag", "spectral") if m in groups},
    }
    write_report(out, report, A, groups["gradtag"])
    return report

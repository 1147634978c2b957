"""Headline table: macro-F1 and wall time of every method on three community/label benchmarks.

Usage::

    OMP_NUM_THREADS=1 python bench/community.py          # all datasets, seeds 0 1 2
    python bench/community.py --datasets amazon-top100 --seeds 0 --methods mtl gradtag random
    python bench/community.py --epochs 10 --seeds 0      # quick smoke run

The default run took 45 min of CPU time on one thread (70 min of wall time on a 2-core machine
shared with other jobs); com-DBLP is 83 % of it, and the four gradient combiners are about
45 % of com-DBLP. ``--methods`` / ``--datasets`` narrow it down.

Datasets: com-Amazon top-100 (``amazon-top100``, shipped), com-DBLP top-100 (``dblp``) and
BlogCatalog (``blogcatalog``, all 39 labels). The last two are copied from ``--shared``
(default ``../shared/data`` beside the repository) into ``--root``; a dataset whose files are
missing is skipped with a note.

Methods (rows): MTL (one model, all tasks; the pipeline's base model), STL (one model per
task), the gradient combiners PCGrad, FairGrad, MTGD and gradient-projection weighting (one
model on all tasks each), and one model per task group for the groupings Grad-TAG, spectral
clustering of the same affinity, random, DMTG and TAG. Every model is SIGN (2 hops) with the
same hidden size (64), dropout (0), epochs (30, early stopping after 5 epochs without a
better val macro-F1), learning rate and batch size, and the same split.

How each row is produced:

* MTL, Grad-TAG, spectral, random and DMTG: :func:`graphtag.pipeline.run_pipeline`, one run
  folder per (dataset, seed) under ``--out``. Run folders resume, so an interrupted bench is
  restarted cheaply with the same command. DMTG uses the pipeline's settings (the package
  defaults of :func:`graphtag.grouping.dmtg_groups`: 100 epochs, batch 512).
* TAG: :func:`graphtag.grouping.tag_groups` called here, with a lookahead budget: it trains
  ``--tag-epochs`` epochs at batch 512 and records the all-pairs lookahead every ``every``
  steps, with ``every`` chosen so that about ``--tag-lookaheads`` lookaheads are taken. The
  pipeline would look ahead at every step (about 1,400 lookaheads, 20+ minutes per seed on
  com-DBLP with one thread). The groups are then trained by
  :func:`graphtag.training.train_groups` exactly like the pipeline's.
* Combiners: trained here with ``rep_grad=True`` (per-task gradients of the shared
  representation, LibMTL's ``rep_grad``). The pipeline's parameter-space Jacobian costs about
  100 backward passes per step, 10x MTL on Amazon and far beyond the budget on com-DBLP.
* STL: :func:`graphtag.training.train_groups` with one group per task, on a fixed seeded
  sample of tasks where ``--stl-tasks`` (default: 10 on com-DBLP, all tasks elsewhere) is below
  the number of tasks. The sample is the same for every seed. When STL is sampled the table
  gets a column with every method's mean test F1 over those same tasks.

Columns: test macro-F1 (mean +- sample std over seeds), val macro-F1, number of groups, train s
(the wall time of training that method's model(s), summed over all sessions of a resumed
run; for MTL it is the pipeline's base stage) and grouping s (the time to compute the groups:
for Grad-TAG and spectral, gradient projection + affinity estimation + the grouping itself,
both also need the trained MTL model; for DMTG and TAG, their own training run).

Output: the Markdown tables on stdout and in ``<out>/community.md``; the raw per-seed
numbers (including per-task test F1) in ``<out>/community.json``. ``--out`` defaults to
``runs/bench-community`` (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch
from _data import REPO, SHARED, prepare
from torch_geometric.data import Data

from graphtag.datasets import load_dataset
from graphtag.grouping import tag_groups
from graphtag.optim import make_combiner
from graphtag.pipeline import run_pipeline
from graphtag.pipeline.config import RunConfig
from graphtag.training.grouped import train_groups
from graphtag.training.run import build_trainer

#: Table rows, in order. ``mtl`` is the pipeline's base model and always runs.
METHODS = ("mtl", "stl", "pcgrad", "fairgrad", "mtgd", "gradproj", "dmtg", "tag", "gradtag",
           "spectral", "random")
LABELS = {"mtl": "MTL", "stl": "STL", "pcgrad": "PCGrad", "fairgrad": "FairGrad",
          "mtgd": "MTGD", "gradproj": "GradProj weighting", "dmtg": "DMTG groups",
          "tag": "TAG groups", "gradtag": "**Grad-TAG groups**", "spectral": "spectral groups",
          "random": "random groups"}
PIPELINE_METHODS = ("gradtag", "spectral", "random", "dmtg")
COMBINERS = ("pcgrad", "fairgrad", "mtgd", "gradproj")
#: Batch size of TAG's training (the package default of ``tag_affinity``).
TAG_BATCH = 512


@dataclass(frozen=True)
class DatasetSpec:
    """Per-dataset settings: task count, batch size, groups, STL sample size (None: all)."""

    num_tasks: int | None
    batch_size: int
    num_groups: int
    stl_tasks: int | None


DATASETS: dict[str, DatasetSpec] = {
    "amazon-top100": DatasetSpec(100, 512, 10, None),
    "blogcatalog": DatasetSpec(None, 1024, 6, None),
    "dblp": DatasetSpec(100, 4096, 10, 10),
}


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def _seconds(manifest: Path) -> float:
    """``seconds_total`` of a pipeline stage manifest (0 when absent)."""
    if not manifest.exists():
        return 0.0
    return float(json.loads(manifest.read_text()).get("seconds_total", 0.0))


def stl_sample(num_tasks: int, size: int | None) -> list[int]:
    """The tasks STL trains on: all, or a sorted sample drawn with a fixed seed (0)."""
    if size is None or size >= num_tasks:
        return list(range(num_tasks))
    rng = np.random.default_rng(0)
    return sorted(int(t) for t in rng.choice(num_tasks, size=size, replace=False))


def _cached(folder: Path, settings: dict[str, Any],
            compute: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """``compute(folder)``'s result, reused from ``folder/result.json`` if settings match."""
    done = folder / "result.json"
    if done.exists():
        old = json.loads(done.read_text())
        if old.get("settings") == settings:
            return old["result"]
    if folder.exists() and (folder / "settings.json").exists():
        if json.loads((folder / "settings.json").read_text()) != settings:
            shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _write_json(folder / "settings.json", settings)
    result = compute(folder)
    _write_json(done, {"settings": settings, "result": result})
    return result


def _scores(metrics: dict[str, Any]) -> dict[str, Any]:
    keep = ("test_macro_f1", "val_macro_f1", "test_per_task_f1", "num_groups", "num_parameters")
    return {k: metrics[k] for k in keep if k in metrics}


def run_stl(data: Data, cfg: RunConfig, tasks: list[int], folder: Path) -> dict[str, Any]:
    """One model per task in ``tasks``; per-task F1 is scattered back to task order."""
    def compute(f: Path) -> dict[str, Any]:
        sub = data.clone()
        sub.y = data.y[:, tasks]
        if data.get("label_mask") is not None:
            sub.label_mask = data.label_mask[:, tasks]
        t0 = time.perf_counter()
        m = train_groups(sub, [[i] for i in range(len(tasks))], cfg.train_config(),
                         out_dir=f / "models", progress=False)
        per_task = [float("nan")] * int(data.y.size(1))
        for i, t in enumerate(tasks):
            per_task[t] = m["test_per_task_f1"][i]
        return {**_scores(m), "test_per_task_f1": per_task, "train_s": time.perf_counter() - t0,
                "grouping_s": None, "tasks": tasks}
    return _cached(folder, {"config": cfg.train_config().to_json(), "tasks": tasks}, compute)


def run_tag(data: Data, cfg: RunConfig, k: int, epochs: int, lookaheads: int,
            folder: Path) -> dict[str, Any]:
    """TAG groups with a lookahead budget, then one model per group."""
    n_train = int(data.train_mask.sum())
    steps = epochs * math.ceil(n_train / TAG_BATCH)
    every = max(1, math.ceil(steps / max(lookaheads, 1)))

    def compute(f: Path) -> dict[str, Any]:
        t0 = time.perf_counter()
        res = tag_groups(data, k, solver=cfg.solver, seed=cfg.seed, model=cfg.model,
                         hidden_channels=cfg.hidden_channels, num_layers=cfg.num_layers,
                         epochs=epochs, batch_size=TAG_BATCH, every=every, progress=False)
        t_group = time.perf_counter() - t0
        assert res.groups is not None
        _write_json(f / "groups.json", res.groups)
        t1 = time.perf_counter()
        m = train_groups(data, res.groups, cfg.train_config(), out_dir=f / "models",
                         progress=False)
        return {**_scores(m), "train_s": time.perf_counter() - t1, "grouping_s": t_group,
                "num_lookaheads": res.num_lookaheads, "every": every,
                "groups": res.groups}
    settings = {"config": cfg.train_config().to_json(), "k": k, "epochs": epochs,
                "every": every, "solver": cfg.solver}
    return _cached(folder, settings, compute)


def run_combiner(data: Data, cfg: RunConfig, name: str, folder: Path) -> dict[str, Any]:
    """One SIGN model on all tasks, trained with combiner ``name`` (``rep_grad=True``)."""
    def compute(f: Path) -> dict[str, Any]:
        t0 = time.perf_counter()
        tr = build_trainer(cfg.train_config(), data.num_features, int(data.y.size(1)),
                           checkpoint_dir=f / "checkpoints", progress=False,
                           combiner=make_combiner(name, rep_grad=True))
        tr.fit(data, resume=True)
        logits = tr.predict_logits(data)
        test, val = tr.evaluate(data, "test", logits), tr.evaluate(data, "val", logits)
        return {"test_macro_f1": test["macro_f1"], "val_macro_f1": val["macro_f1"],
                "test_per_task_f1": [float(v) for v in test["per_task_f1"]],
                "num_groups": 1,
                "num_parameters": sum(p.numel() for p in tr.model.parameters()),
                "epochs_run": len(tr.history_), "train_s": time.perf_counter() - t0,
                "grouping_s": None}
    settings = {"config": cfg.train_config().to_json(), "combiner": name, "rep_grad": True}
    return _cached(folder, settings, compute)


def run_seed(name: str, spec: DatasetSpec, seed: int, methods: Sequence[str],
             args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    """Every requested method on one (dataset, seed); returns ``{method: numbers}``."""
    folder = Path(args.out) / name / f"seed{seed}"
    cfg = RunConfig(
        dataset=name, root=str(args.root), num_tasks=spec.num_tasks, model="sign",
        hidden_channels=args.hidden, num_layers=2, dropout=args.dropout, epochs=args.epochs,
        batch_size=spec.batch_size, lr=args.lr, patience=args.patience, seed=seed,
        num_subsets=args.num_subsets or None, max_fit_nodes=args.max_fit_nodes,
        num_groups=spec.num_groups, group_mode="models",
        methods=tuple(m for m in PIPELINE_METHODS if m in methods),
    )
    report = run_pipeline(cfg, folder, progress=False,
                          log=lambda msg: say(f"{name} seed {seed}: {msg}"))
    out: dict[str, Any] = {}
    st = report["stage_seconds"]
    affinity_s = st.get("gradients", 0.0) + st.get("affinity", 0.0)
    out["mtl"] = {**_scores(report["methods"]["mtl"]),
                  "train_s": _seconds(folder / "base" / "manifest.json"), "grouping_s": None}
    for m in PIPELINE_METHODS:
        if m not in methods:
            continue
        g = _seconds(folder / "grouping" / m / "manifest.json")
        out[m] = {**_scores(report["methods"][m]),
                  "train_s": _seconds(folder / "train" / m / "manifest.json"),
                  "grouping_s": g + (affinity_s if m in ("gradtag", "spectral") else 0.0)}
    T = report["dataset"]["num_tasks"]
    k = report["num_groups"]
    need_data = [m for m in methods if m in ("stl", "tag", *COMBINERS)]
    if need_data:
        data = load_dataset(name, cfg.root, cfg.num_tasks, features=cfg.features,
                            num_features=cfg.num_features, split=cfg.split, seed=seed,
                            log=False)
    for m in need_data:
        t0 = time.perf_counter()
        say(f"{name} seed {seed}: [{m}] running")
        if m == "stl":
            out[m] = run_stl(data, cfg, stl_sample(T, args.stl_tasks.get(name, spec.stl_tasks)),
                             folder / "bench" / "stl")
        elif m == "tag":
            out[m] = run_tag(data, cfg, k, args.tag_epochs, args.tag_lookaheads,
                             folder / "bench" / "tag")
        else:
            out[m] = run_combiner(data, cfg, m, folder / "bench" / m)
        say(f"{name} seed {seed}: [{m}] done in {time.perf_counter() - t0:.1f} s "
            f"(test macro-F1 {out[m]['test_macro_f1']:.4f})")
    out["_meta"] = {"num_tasks": T, "num_groups": k, "num_nodes": report["dataset"]["num_nodes"],
                    "num_edges": report["dataset"]["num_edges"], "config": cfg.to_json(),
                    "stage_seconds": st}
    return out


def _fmt(values: Sequence[float], digits: int = 4) -> str:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return "–"
    if len(vals) == 1:
        return f"{vals[0]:.{digits}f}"
    return f"{statistics.mean(vals):.{digits}f} ± {statistics.stdev(vals):.{digits}f}"


def _fmt_s(values: Sequence[float | None]) -> str:
    vals = [v for v in values if v is not None]
    return f"{statistics.mean(vals):.1f}" if vals else "–"


def table(name: str, per_seed: dict[int, dict[str, Any]], methods: Sequence[str]) -> str:
    """Markdown table of one dataset: rows = methods, mean +- std over seeds."""
    seeds = sorted(per_seed)
    meta = per_seed[seeds[0]]["_meta"]
    stl_tasks = None
    for s in seeds:
        if "stl" in per_seed[s]:
            stl_tasks = per_seed[s]["stl"]["tasks"]
    sampled = stl_tasks is not None and len(stl_tasks) < meta["num_tasks"]
    head = ["method", "test macro-F1"]
    if sampled:
        head.append(f"test F1, STL's {len(stl_tasks)} tasks")
    head += ["val macro-F1", "#groups", "train s", "grouping s"]
    lines = [f"### {name}: {meta['num_nodes']:,} nodes, {meta['num_edges']:,} edges, "
             f"{meta['num_tasks']} tasks, seeds {', '.join(map(str, seeds))}", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in METHODS:
        if m not in methods:
            continue
        rows = [per_seed[s][m] for s in seeds if m in per_seed[s]]
        if not rows:
            continue
        label = LABELS[m]
        if m == "stl" and sampled:
            label += f" ({len(stl_tasks)}-task sample)"
        test = [r["test_macro_f1"] for r in rows]
        cells = [label, _fmt(test) if not (m == "stl" and sampled) else "–"]
        if sampled:
            cells.append(_fmt([float(np.nanmean([r["test_per_task_f1"][t] for t in stl_tasks]))
                               for r in rows]))
        groups = sorted({int(r["num_groups"]) for r in rows})
        cells += [_fmt([r["val_macro_f1"] for r in rows]) if not (m == "stl" and sampled)
                  else "–",
                  "/".join(map(str, groups)) if m != "stl" else str(len(rows[0]["tasks"])),
                  _fmt_s([r["train_s"] for r in rows]), _fmt_s([r["grouping_s"] for r in rows])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS),
                    help="rows to run (MTL always runs: it is every run's base model)")
    ap.add_argument("--epochs", type=int, default=30, help="max epochs of every model")
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--dropout", type=float, default=0.0,
                    help="dropout of every model (0.5, the package default, under-fits MTL on "
                         "com-DBLP: val macro-F1 0.50 against 0.74 with 0)")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--num-subsets", type=int, default=500,
                    help="Grad-TAG task subsets (0: GradTAG's default plan, about 6 draws of "
                         "each task pair)")
    ap.add_argument("--max-fit-nodes", type=int, default=1000,
                    help="Grad-TAG: training nodes the subset fits use")
    ap.add_argument("--stl-tasks", nargs="*", default=[], metavar="DATASET=N",
                    help="STL task sample size per dataset (N=0: all tasks); default dblp=10")
    ap.add_argument("--tag-epochs", type=int, default=10)
    ap.add_argument("--tag-lookaheads", type=int, default=60)
    ap.add_argument("--out", default=str(REPO / "runs" / "bench-community"))
    ap.add_argument("--root", default=str(REPO / "data"))
    ap.add_argument("--shared", default=str(SHARED))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    stl: dict[str, int | None] = {}
    for item in args.stl_tasks:
        key, _, val = item.partition("=")
        if key not in DATASETS or not val.isdigit():
            ap.error(f"--stl-tasks expects DATASET=N with DATASET in {list(DATASETS)}")
        stl[key] = int(val) or None
    args.stl_tasks = stl
    torch.set_num_threads(args.threads)
    methods = ["mtl", *(m for m in METHODS if m in args.methods and m != "mtl")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start, cpu_start = time.perf_counter(), time.process_time()

    def say(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:7.1f} s] {msg}", file=sys.stderr, flush=True)

    results: dict[str, dict[int, dict[str, Any]]] = {}
    tables, dataset_seconds, dataset_cpu = [], {}, {}
    for name in args.datasets:
        if not prepare(name, Path(args.root), Path(args.shared)):
            note = f"### {name}\n\nskipped: its files are not in {args.shared}."
            tables.append(note)
            print(note + "\n", flush=True)
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        results[name] = {s: run_seed(name, DATASETS[name], s, methods, args, say)
                         for s in args.seeds}
        dataset_seconds[name] = time.perf_counter() - t0
        dataset_cpu[name] = time.process_time() - c0
        tab = table(name, results[name], methods)
        tab += (f"\n\nWall time of this dataset: {dataset_seconds[name]:.0f} s "
                f"(CPU time of this process: {dataset_cpu[name]:.0f} s).")
        tables.append(tab)
        print(tab + "\n", flush=True)
    total, cpu = time.perf_counter() - t_start, time.process_time() - cpu_start
    command = "python bench/community.py " + " ".join(sys.argv[1:] if argv is None else argv)
    header = (f"Command: `{command.strip()}`. Total wall time {total:.0f} s "
              f"({total / 60:.1f} min; CPU time {cpu:.0f} s, {cpu / 60:.1f} min: the wall "
              f"time without other load), torch {torch.__version__}, "
              f"{torch.get_num_threads()} thread(s).")
    print(header)
    (out / "community.md").write_text(header + "\n\n" + "\n\n".join(tables) + "\n")
    _write_json(out / "community.json", {
        "command": command.strip(), "total_seconds": total, "cpu_seconds": cpu,
        "dataset_seconds": dataset_seconds, "dataset_cpu_seconds": dataset_cpu,
        "args": {k: v for k, v in vars(args).items()},
        "results": {n: {str(s): r for s, r in d.items()} for n, d in results.items()},
    })
    print(f"wrote {out / 'community.md'} and {out / 'community.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

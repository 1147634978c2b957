"""Does the grouping matter? Grouped vs random groups at equal capacity, over seeds, paired.

Usage::

    python bench/groups.py                                    # amazon-families, seeds 0-4
    python bench/groups.py --datasets amazon-top100 dblp --seeds 0 1 2 3 4
    python bench/groups.py --methods gradtag random oracle planted --hidden 64

For each (dataset, seed), :func:`graphtag.pipeline.run_pipeline` trains the base model (MTL),
estimates the Grad-TAG affinity, groups the tasks (Grad-TAG, random, spectral, and the
true-affinity ``oracle`` when asked) and trains one model per group at the base width
(``--hidden``). Then, here:

* ``planted``: the known grouping (``task_group``) where the dataset has one, trained the same
  way;
* ``mtl-wide``: one model on all tasks as wide as all ``k`` group models together (same total
  parameter count, to within one hidden unit);
* every grouping again with **narrowed** group models, each as wide as makes the ``k``
  models' total parameter count equal MTL's.

The verdict rows are paired over seeds: ``A - B`` is the mean of the per-seed differences of
test macro-F1, its standard error, and the two-sided paired t-test p-value, for every grouping
against random groups at the same capacity (wide and narrowed). ``share of oracle gain`` is
``(A - random) / (oracle - random)``. All models are SIGN (2 hops) with one budget (epochs,
patience, lr, dropout), so rows differ only by grouping and width.

Run folders resume (``--out``, default ``runs/bench-groups``); tables go to stdout and
``<out>/groups.md``, raw numbers to ``<out>/groups.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch
from _data import REPO, SHARED, prepare
from scipy.stats import ttest_rel

from graphtag.datasets import load_dataset
from graphtag.grouping.registry import planted_groups
from graphtag.models import build_model
from graphtag.pipeline import run_pipeline
from graphtag.pipeline.config import GROUPING_METHODS, RunConfig
from graphtag.training.grouped import train_groups

#: Per dataset: (num_tasks, number of groups, batch size).
DATASETS: dict[str, tuple[int | None, int, int]] = {
    "amazon-families": (None, 10, 512),
    "amazon-top100": (100, 10, 512),
    "dblp": (100, 10, 4096),
    "blogcatalog": (None, 6, 1024),
}


def num_params(cfg: RunConfig, in_channels: int, num_tasks: int, hidden: int) -> int:
    m = build_model(cfg.model, in_channels, num_tasks, hidden_channels=hidden,
                    num_layers=cfg.num_layers, dropout=cfg.dropout)
    return sum(p.numel() for p in m.parameters())


def group_params(cfg: RunConfig, in_channels: int, groups: list[list[int]], hidden: int) -> int:
    return sum(num_params(cfg, in_channels, len(g), hidden) for g in groups)


def width_for(target: int, count: Any, lo: int = 1, hi: int = 1 << 14) -> int:
    """Smallest hidden width whose parameter count ``count(h)`` reaches ``target``, or the one
    just below when that is closer."""
    while lo < hi:
        mid = (lo + hi) // 2
        if count(mid) < target:
            lo = mid + 1
        else:
            hi = mid
    if lo > 1 and abs(count(lo - 1) - target) < abs(count(lo) - target):
        return lo - 1
    return lo


def _digest(groups: list[list[int]], hidden: int) -> str:
    """Cache key of a trained grouping: regrouping (e.g. after an estimator change) retrains."""
    import hashlib

    return hashlib.sha256(json.dumps([groups, hidden]).encode()).hexdigest()[:12]


def _cached(path: Path, compute: Any) -> dict[str, Any]:
    if path.exists():
        return json.loads(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    res = compute()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(res))
    os.replace(tmp, path)
    return res


def run_seed(name: str, seed: int, args: argparse.Namespace, say: Any) -> dict[str, Any]:
    num_tasks, k, batch = DATASETS[name]
    folder = Path(args.out) / name / f"seed{seed}"
    pipe = tuple(m for m in args.methods if m in GROUPING_METHODS)
    cfg = RunConfig(
        dataset=name, root=str(args.root), num_tasks=num_tasks, model="sign",
        hidden_channels=args.hidden, num_layers=2, dropout=args.dropout, epochs=args.epochs,
        batch_size=batch, lr=args.lr, patience=args.patience, seed=seed, num_groups=k,
        group_mode="models", methods=pipe, proj_dim=args.proj_dim, lam=args.lam,
    )
    if "oracle" in pipe:
        cfg = dataclasses.replace(cfg, **{f"oracle_{key}": v for key, v in args.oracle.items()})
    t0 = time.perf_counter()
    report = run_pipeline(cfg, folder, progress=False,
                          log=lambda msg: say(f"{name} seed {seed}: {msg}"))
    T = report["dataset"]["num_tasks"]
    data = load_dataset(name, cfg.root, cfg.num_tasks, features=cfg.features,
                        num_features=cfg.num_features, split=cfg.split, seed=seed, log=False)
    F = data.num_features
    groups = {m: report["groups"][m] for m in pipe if m in report["groups"]}
    if "planted" in args.methods and data.get("task_group") is not None:
        groups["planted"] = planted_groups(data)
    out: dict[str, Any] = {"mtl": {"test": report["methods"]["mtl"]["test_macro_f1"],
                                   "params": num_params(cfg, F, T, cfg.hidden_channels),
                                   "hidden": cfg.hidden_channels}}
    tc = cfg.train_config()

    def train(groups_: list[list[int]], hidden: int) -> dict[str, Any]:
        r = train_groups(data, groups_, dataclasses.replace(tc, hidden_channels=hidden),
                         mode="models", progress=False)
        return {"test": r["test_macro_f1"], "hidden": hidden,
                "params": group_params(cfg, F, groups_, hidden)}

    for m, g in groups.items():
        if m in pipe:
            out[m] = {"test": report["methods"][m]["test_macro_f1"], "hidden": args.hidden,
                      "params": group_params(cfg, F, g, args.hidden)}
        else:
            out[m] = _cached(folder / "bench" / f"{m}-{_digest(g, args.hidden)}.json",
                             lambda g=g: train(g, args.hidden))
        # narrowed: the k group models together as large as the one MTL model
        h = width_for(out["mtl"]["params"], lambda w, g=g: group_params(cfg, F, g, w))
        out[f"{m}-narrow"] = _cached(folder / "bench" / f"{m}-narrow-{_digest(g, h)}.json",
                                     lambda g=g, h=h: train(g, h))
    wide_target = out["random"]["params"] if "random" in out else None
    if wide_target:
        h = width_for(wide_target, lambda w: num_params(cfg, F, T, w))
        out["mtl-wide"] = _cached(folder / "bench" / f"mtl-wide-{_digest([], h)}.json",
                                  lambda: train([list(range(T))], h))
    out["_meta"] = {"num_tasks": T, "num_groups": report["num_groups"],
                    "planted_ari": report.get("planted_group_ari"),
                    "seconds": time.perf_counter() - t0, "stage_seconds":
                    report["stage_seconds"]}
    say(f"{name} seed {seed}: " + ", ".join(f"{m} {v['test']:.4f}" for m, v in out.items()
                                            if m != "_meta"))
    return out


def paired(a: list[float], b: list[float]) -> tuple[float, float, float]:
    d = np.asarray(a) - np.asarray(b)
    se = float(d.std(ddof=1) / math.sqrt(d.size)) if d.size > 1 else float("nan")
    p = float(ttest_rel(a, b).pvalue) if d.size > 1 and d.std() > 0 else float("nan")
    return float(d.mean()), se, p


def tables(name: str, per_seed: dict[int, dict[str, Any]]) -> str:
    seeds = sorted(per_seed)
    rows = [m for m in per_seed[seeds[0]] if m != "_meta"]
    meta = per_seed[seeds[0]]["_meta"]
    lines = [f"### {name}: {meta['num_tasks']} tasks, {meta['num_groups']} groups, "
             f"seeds {seeds}", "",
             "| model(s) | width | parameters | test macro-F1 (mean ± std) |", "|---|---|---|---|"]
    for m in rows:
        v = [per_seed[s][m]["test"] for s in seeds]
        sd = statistics.stdev(v) if len(v) > 1 else 0.0
        lines.append(f"| {m} | {per_seed[seeds[0]][m]['hidden']} | "
                     f"{per_seed[seeds[0]][m]['params']:,} | {statistics.mean(v):.4f} ± {sd:.4f} |")
    lines += ["", "| paired over seeds | mean difference | std. error | p (paired t) | "
              "share of oracle gain | share of planted gain |", "|---|---|---|---|---|---|"]

    def gain(name: str, ref_values: list[float]) -> float | None:
        if name not in rows:
            return None
        return statistics.mean([per_seed[s][name]["test"] for s in seeds]) \
            - statistics.mean(ref_values)

    for suffix in ("", "-narrow"):
        ref = f"random{suffix}"
        if ref not in rows:
            continue
        rv = [per_seed[s][ref]["test"] for s in seeds]
        og, pg = gain(f"oracle{suffix}", rv), gain(f"planted{suffix}", rv)
        for m in rows:
            if not m.endswith(suffix) or m in (ref, "mtl", "mtl-wide") or \
                    (suffix == "" and m.endswith("-narrow")):
                continue
            mean, se, p = paired([per_seed[s][m]["test"] for s in seeds], rv)
            share = [f"{mean / g:.0%}" if g and not m.startswith(ref_name) else ""
                     for g, ref_name in ((og, "oracle"), (pg, "planted"))]
            lines.append(f"| {m} - {ref} | {mean:+.4f} | {se:.4f} | {p:.2g} | {share[0]} | "
                         f"{share[1]} |")
    for a, b in (("random", "mtl-wide"), ("random-narrow", "mtl")):
        if a in rows and b in rows:
            mean, se, p = paired([per_seed[s][a]["test"] for s in seeds],
                                 [per_seed[s][b]["test"] for s in seeds])
            lines.append(f"| {a} - {b} (same parameters) | {mean:+.4f} | {se:.4f} | {p:.2g} | "
                         "| |")
    ari = per_seed[seeds[0]]["_meta"].get("planted_ari")
    if ari:
        lines += ["", "Adjusted Rand index against the planted groups (seed "
                  f"{seeds[0]}): " + ", ".join(f"{m} {v:.3f}" for m, v in ari.items()) + "."]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["amazon-families"], choices=list(DATASETS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--methods", nargs="+", default=["gradtag", "random", "oracle", "planted"])
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--lr", type=float, default=0.01)
    defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    ap.add_argument("--proj-dim", type=int, default=defaults["proj_dim"],
                    help="Grad-TAG's projection dimension (default: the package's)")
    ap.add_argument("--lam", type=float, default=defaults["lam"],
                    help="Grad-TAG's ridge weight (default: the package's)")
    ap.add_argument("--oracle", type=json.loads, default={},
                    help='oracle budget overrides as JSON, e.g. \'{"subsets": 400}\'')
    ap.add_argument("--out", default=str(REPO / "runs" / "bench-groups"))
    ap.add_argument("--root", default=str(REPO / "data"))
    ap.add_argument("--shared", default=str(SHARED))
    args = ap.parse_args()
    if "random" not in args.methods:
        args.methods.append("random")
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

    def say(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    results: dict[str, dict[int, Any]] = {}
    md = []
    for name in args.datasets:
        if not prepare(name, Path(args.root), Path(args.shared)):
            say(f"{name}: files not found under {args.shared}, skipped")
            continue
        results[name] = {s: run_seed(name, s, args, say) for s in args.seeds}
        md.append(tables(name, results[name]))
        print(md[-1] + "\n", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "groups.md").write_text("\n\n".join(md) + "\n")
    (out / "groups.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Grad-TAG subset fits: per-task sufficient statistics against the exact batched Newton.

Times the affinity stage (subset fits + scores, as ``graphtag run`` runs it) with
``fit_method="exact"`` and ``"stats"`` (0, 1, 2 refinement steps) on the same gradient stores,
one thread and two, each measurement in its own process (so its peak RSS is its own), and
compares the affinities (Spearman of the off-diagonal entries) and the SDP groups with the
exact fit's.

Cases:

- ``default``: the README's main job, amazon-top100 with ``graphtag run``'s defaults
  (2,970 subsets of 5, 2,000 fit nodes, d = 64), plus the statistics path at d = 256.
- ``500``: a planted-group graph with 500 tasks (2,500 subsets of 25), exact at d = 64 (the
  stage as it was) against the statistics path at d = 64 and 256.

    python3 bench/fits.py --case default
    python3 bench/fits.py --case 500

Base models and gradient stores are kept in ``--work`` (default ``bench/.fits``) and reused.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _config(case: str, work: Path):
    from graphtag.pipeline import RunConfig

    if case == "default":
        return RunConfig(root=str(work / "data"))
    return RunConfig(dataset="synthetic", num_tasks=500, model="sign", epochs=5,
                     batch_size=2048, root=str(work / "data"), num_groups=20)


def _data(case: str, cfg):
    from graphtag.datasets import load_dataset, synthetic_communities

    if case == "default":
        return load_dataset(cfg.dataset, cfg.root, cfg.num_tasks, features=cfg.features,
                            num_features=cfg.num_features, split=cfg.split, seed=cfg.seed,
                            log=False)
    return synthetic_communities(20_000, 500, 20, avg_degree=10.0, seed=0).to_data(seed=0)


def prepare(case: str, work: Path, dims: list[int]) -> None:
    """Base model and gradient stores for ``case`` (skipped when already in ``work``)."""
    import torch

    from graphtag.pipeline.run import gradtag_from_config, load_base_model
    from graphtag.training.run import train_run

    cfg = _config(case, work)
    data = _data(case, cfg)
    base = work / case / "base"
    if not (base / "model.pt").exists():
        t0 = time.perf_counter()
        train_run(cfg.train_config(), base, progress=False, overwrite=True, data=data)
        print(f"[{case}] base model trained in {time.perf_counter() - t0:.0f} s", flush=True)
    model = load_base_model(cfg, data, base)
    torch.manual_seed(0)
    for d in dims:
        gt = gradtag_from_config(dataclasses.replace(cfg, proj_dim=d), progress=False)
        t0 = time.perf_counter()
        gt.collect(model, data, work / case / f"grads-d{d}")
        print(f"[{case}] gradients d={d}: {time.perf_counter() - t0:.0f} s", flush=True)


def measure(case: str, work: Path, d: int, method: str, refine: int, threads: int) -> dict:
    """One affinity stage in this process: seconds, peak RSS, affinity and groups."""
    import torch

    from graphtag.gradients.store import GradientStore
    from graphtag.pipeline.run import gradtag_from_config

    torch.set_num_threads(threads)
    cfg = dataclasses.replace(_config(case, work), proj_dim=d, fit_method=method,
                              fit_refine=refine)
    gt = gradtag_from_config(cfg, progress=False)
    folder = work / case / f"grads-d{d}"
    fit, score = GradientStore(folder / "train"), GradientStore(folder / "val")
    t0 = time.perf_counter()
    gt.estimate(fit, score)
    stage = time.perf_counter() - t0
    t1 = time.perf_counter()
    groups = gt.group(min(cfg.num_groups, fit.num_tasks))
    return {"case": case, "d": d, "method": method, "refine": refine, "threads": threads,
            "stage_s": stage, "fits_s": gt.timings_["fits"],
            "stats_s": gt.timings_.get("fit_statistics", 0.0), "scores_s": gt.timings_["scores"],
            "grouping_s": time.perf_counter() - t1,
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "subsets": list(gt.subsets_.shape), "affinity": gt.affinity_.tolist(),
            "groups": groups}


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    iu = np.triu_indices(a.shape[0], 1)
    return float(spearmanr(a[iu], b[iu]).statistic)


def _labels(groups: list[list[int]], T: int) -> np.ndarray:
    lab = np.empty(T, dtype=np.int64)
    for i, g in enumerate(groups):
        lab[g] = i
    return lab


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=("default", "500"), default="default")
    ap.add_argument("--work", default=str(REPO / "bench" / ".fits"))
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--refine", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--skip-exact", action="store_true", help="reuse the saved exact results")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    work = Path(args.work)
    if args.one:  # child process: one measurement, JSON on stdout's last line
        spec = json.loads(args.one)
        print(json.dumps(measure(args.case, work, **spec)))
        return
    dims = [64, 256]
    prepare(args.case, work, dims)
    runs = [(64, "exact", 0)] + [(d, "stats", r) for d in dims for r in args.refine]
    results = []
    saved = work / args.case / "results.jsonl"
    done = {}
    if saved.exists():  # resume: measurements already made are kept
        for line in saved.read_text().splitlines():
            r = json.loads(line)
            done[(r["d"], r["method"], r["refine"], r["threads"])] = r
    for threads in args.threads:
        for d, method, refine in runs:
            key = (d, method, refine, threads)
            if key in done:
                results.append(done[key])
                continue
            env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
            spec = json.dumps({"d": d, "method": method, "refine": refine, "threads": threads})
            out = subprocess.run([sys.executable, __file__, "--case", args.case, "--work",
                                  str(work), "--one", spec], env=env, check=True,
                                 capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            with saved.open("a") as f:
                f.write(json.dumps(r) + "\n")
            results.append(r)
            print(f"  {threads} thread(s) d={d} {method}{'' if method == 'exact' else refine}: "
                  f"{r['stage_s']:.1f} s", flush=True)
    print_table(results)
    print(sdp_stability(results, _config(args.case, work).num_groups))


def print_table(results: list[dict]) -> None:
    from sklearn.metrics import adjusted_rand_score

    r0 = results[0]
    print(f"\ncase {r0['case']}: {r0['subsets'][0]} subsets of {r0['subsets'][1]}, "
          f"{len(r0['affinity'])} tasks")
    print("| threads | d | fit | affinity stage (s) | fits (s) | of which statistics (s) | "
          "scores (s) | speed-up vs exact d=64 | Spearman vs exact | groups ARI vs exact | "
          "peak RSS (GiB) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for threads in sorted({r["threads"] for r in results}):
        rows = [r for r in results if r["threads"] == threads]
        ref = next(r for r in rows if r["method"] == "exact")
        A0 = np.asarray(ref["affinity"])
        lab0 = _labels(ref["groups"], A0.shape[0])
        for r in rows:
            A = np.asarray(r["affinity"])
            name = "exact" if r["method"] == "exact" else f"stats, refine {r['refine']}"
            ari = adjusted_rand_score(lab0, _labels(r["groups"], A.shape[0]))
            print(f"| {threads} | {r['d']} | {name} | {r['stage_s']:.2f} | {r['fits_s']:.2f} | "
                  f"{r['stats_s']:.2f} | {r['scores_s']:.2f} | "
                  f"{ref['stage_s'] / r['stage_s']:.1f}x | {_spearman(A0, A):.4f} | "
                  f"{ari:.3f} | {r['peak_rss_gib']:.2f} |")


def sdp_stability(results: list[dict], k: int, levels: tuple[float, ...] = (0.01, 0.05)
                  ) -> str:
    """How much the SDP groups of the exact affinity move under tiny symmetric noise: the
    ceiling for "identical groups" from any approximate fit."""
    from sklearn.metrics import adjusted_rand_score

    from graphtag.grouping import sdp_groups

    ref = next(r for r in results if r["method"] == "exact")
    A = np.asarray(ref["affinity"])
    lab0 = _labels(ref["groups"], A.shape[0])
    sd = A[np.triu_indices(A.shape[0], 1)].std()
    out = []
    for level in levels:
        rng = np.random.default_rng(0)
        e = rng.normal(scale=level * sd, size=A.shape)
        e = (e + e.T) / 2
        np.fill_diagonal(e, 0)
        g = sdp_groups(A + e, k, seed=0)
        out.append(f"{level:.0%} noise: ARI {adjusted_rand_score(lab0, _labels(g, A.shape[0])):.3f}"
                   f" (Spearman {_spearman(A, A + e):.4f})")
    return "SDP groups of the exact affinity plus symmetric Gaussian noise: " + "; ".join(out)


if __name__ == "__main__":
    main()

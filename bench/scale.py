"""Per-stage wall time, CPU time and peak RSS of the whole Grad-TAG pipeline at scale (issue 7).

Usage::

    OMP_NUM_THREADS=1 python bench/scale.py --edges 1e6 5e6 --tasks 100 500
    OMP_NUM_THREADS=1 nohup python bench/scale.py --edges 21e6 --tasks 500 \\
        --results bench/out/scale/results.jsonl > bench/out/scale/21m.log 2>&1 &
    python bench/scale.py --report bench/out/scale/results.jsonl     # tables only

Every (edges, tasks) configuration runs in a fresh child process (``--child``), which runs the
stages one after the other in that one process, as ``graphtag run`` does, and appends one JSON
record per finished stage to ``--results``, so a run that dies keeps what it measured:

1. ``generate``: :func:`make_scale_graph.make_scale_graph` (planted-group graph, SNAP files);
2. ``load+features``: ``load_dataset(name, root, tasks)``, the SNAP loader from scratch
   (parse, community tasks, induced subgraph, ``to_undirected``, spectral features, the
   processed ``.pt`` file written and read back); sub-step wall times are recorded by
   wrapping the loader's functions;
3. ``sign_propagate``: ``[X, AX, A^2X]`` (:func:`graphtag.models.sign.sign_propagate`);
4. ``base_train``: SIGN on all tasks, few epochs, large batches;
5. ``gradients``: :meth:`GradTAG.collect` into the memory-mapped stores;
6. ``subset_fits``: :meth:`GradTAG.estimate` (fits, linearised scores, affinity);
7. ``sdp_grouping``: :meth:`GradTAG.group` (solver ``auto``: cvxpy up to 100 tasks, BM above);
8. ``grouped_train``: :func:`graphtag.training.grouped.train_groups`, one SIGN per group.

Peak RSS per stage: the child resets the kernel's high-water mark (``/proc/self/clear_refs``
``5``) before each stage and reads ``VmHWM`` after it, so the figure is the peak of the
**whole process** during that stage (data held from earlier stages included), not a delta;
``rss_start_gib`` is the resident size when the stage began. Where ``clear_refs`` is not
writable the child falls back to ``ru_maxrss`` (then a stage's figure is the peak so far).
CPU seconds (user + system of the process) are recorded next to wall seconds: on a shared
machine they are the steadier measure of the work done; the 1-minute load average at the
stage's end is recorded too.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
STAGES = ("generate", "load+features", "sign_propagate", "base_train", "gradients",
          "subset_fits", "sdp_grouping", "grouped_train")


# ----------------------------------------------------------------------------- measuring
def _status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Recorder:
    """Times stages and appends one JSON record per stage to ``path``."""

    def __init__(self, path: Path, base: dict[str, Any]) -> None:
        self.path = path
        self.base = base
        self.extra: dict[str, Any] = {}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[dict[str, Any]]:
        extra: dict[str, Any] = {}
        resettable = _reset_peak()
        rss0 = (_status_kib("VmRSS") or 0) / 2**20
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        print(f"[{time.strftime('%H:%M:%S')}] {self.base['edges_target']:.0e} edges "
              f"{self.base['tasks']} tasks: {name} ...", flush=True)
        yield extra
        wall = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        hwm = _status_kib("VmHWM") if resettable else None
        peak = (hwm if hwm is not None else ru1.ru_maxrss) / 2**20
        rec = {
            **self.base,
            "stage": name,
            "seconds": round(wall, 2),
            "cpu_seconds": round(ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime, 2),
            "peak_rss_gib": round(peak, 3),
            "peak_method": "VmHWM-reset" if hwm is not None else "ru_maxrss",
            "rss_start_gib": round(rss0, 3),
            "loadavg_1m": round(os.getloadavg()[0], 2),
            **extra,
        }
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        print(f"    {wall:8.1f} s wall, {rec['cpu_seconds']:8.1f} s cpu, peak "
              f"{peak:6.2f} GiB, load {rec['loadavg_1m']}", flush=True)


def _memory_guard(min_available_gib: float, results: Path, base: dict[str, Any]) -> None:
    """Exit this process (code 137) before the machine runs out of memory.

    The machine is shared: rather than let the kernel's OOM killer choose, a daemon thread
    polls ``MemAvailable`` and, below ``min_available_gib``, records the event and exits.
    """
    import threading

    def watch() -> None:
        while True:
            avail = None
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        avail = int(line.split()[1]) / 2**20
            if avail is not None and avail < min_available_gib:
                msg = {**base, "stage": "ABORTED", "reason": f"MemAvailable {avail:.2f} GiB",
                       "rss_gib": round((_status_kib("VmRSS") or 0) / 2**20, 3)}
                with open(results, "a") as f:
                    f.write(json.dumps(msg) + "\n")
                print(f"memory guard: {msg}", flush=True)
                os._exit(137)
            time.sleep(0.25)

    threading.Thread(target=watch, daemon=True).start()


def _timed(fn: Callable[..., Any], sink: dict[str, float], key: str) -> Callable[..., Any]:
    def wrapper(*a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            sink[key] = round(sink.get(key, 0.0) + time.perf_counter() - t0, 2)
    return wrapper


# ----------------------------------------------------------------------------- one config
def run_child(a: argparse.Namespace) -> None:
    """All stages of one (edges, tasks) configuration in this process."""
    import numpy as np
    import torch

    import graphtag.datasets.snap as snap
    import graphtag.datasets.tasks as tasks_mod
    from graphtag.datasets import load_dataset
    from graphtag.models.sign import sign_propagate
    from graphtag.pipeline import GradTAG
    from graphtag.training.grouped import train_groups
    from graphtag.training.run import TrainConfig, build_trainer

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from make_scale_graph import make_scale_graph

    warnings.simplefilter("ignore")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    edges, T = float(a.edges[0]), int(a.tasks[0])
    name = f"scale_e{int(edges)}_t{T}"
    root = Path(a.root)
    work = Path(a.work) / name
    shutil.rmtree(work, ignore_errors=True)
    base = {"edges_target": edges, "tasks": T, "threads": torch.get_num_threads(),
            "avg_degree": a.avg_degree}
    rec = Recorder(Path(a.results), base)
    if a.min_available_gib > 0:
        _memory_guard(a.min_available_gib, Path(a.results), base)

    raw = root / name / "raw"
    with rec.stage("generate") as ex:
        if a.reuse_graph and (raw / f"com-{name}.ungraph.txt.gz").exists():
            ex["reused"] = True
        else:
            ex.update(make_scale_graph(edges, T, raw, name=name, avg_degree=a.avg_degree,
                                       groups=a.planted_groups, seed=a.seed))
    shutil.rmtree(root / name / "processed", ignore_errors=True)

    sub: dict[str, float] = {}
    patches = [(snap, "read_edge_list"), (snap, "read_communities"),
               (snap, "build_community_tasks"), (tasks_mod, "to_undirected"),
               (tasks_mod, "node_features")]
    saved = [(m, n, getattr(m, n)) for m, n in patches]
    for m, n in patches:
        setattr(m, n, _timed(getattr(m, n), sub, n))
    try:
        with rec.stage("load+features") as ex:
            data = load_dataset(name, root, T, features="spectral", num_features=a.features,
                                seed=a.seed, log=False)
            ex.update({"sub_seconds": sub, "nodes": int(data.num_nodes),
                       "edges": int(data.edge_index.size(1) // 2)})
    finally:
        for m, n, f in saved:
            setattr(m, n, f)
    nodes = int(data.num_nodes)
    rec.base.update({"nodes": nodes, "edges": int(data.edge_index.size(1) // 2)})

    cfg = TrainConfig(model="sign", hidden_channels=a.hidden, num_layers=2, dropout=0.5,
                      epochs=a.epochs, batch_size=a.batch_size, patience=None,
                      pos_weight="auto", seed=a.seed)
    with rec.stage("sign_propagate"):
        data.xs = sign_propagate(data.x, data.edge_index, cfg.num_layers, nodes)

    with rec.stage("base_train") as ex:
        tr = build_trainer(cfg, data.num_features, T, progress=False)
        tr.fit(data)
        model = tr.model.eval()
        ex["epoch_seconds"] = [round(h["seconds"], 2) for h in tr.history_]
        ex["val_macro_f1"] = round(float(tr.history_[-1]["val_macro_f1"]), 4)
        del tr

    gt = GradTAG(num_groups=a.groups, num_subsets=a.subsets, subset_size=a.subset_size,
                 max_fit_nodes=a.max_fit_nodes, max_score_nodes=a.max_fit_nodes,
                 batch_size=a.grad_batch, seed=a.seed, progress=False)
    with rec.stage("gradients") as ex:
        fit_store, score_store = gt.collect(model, data, work / "gradients")
        ex["fit_nodes"], ex["score_nodes"] = fit_store.num_nodes, score_store.num_nodes
        ex["store_bytes"] = sum(p.stat().st_size for p in (work / "gradients").rglob("*")
                                if p.is_file())

    with rec.stage("subset_fits") as ex:
        gt.estimate(fit_store, score_store)
        ex["num_subsets"], ex["subset_size"] = (int(v) for v in gt.subsets_.shape)
        ex["pair_fraction"] = round(float(gt.coverage_["pair_fraction"]), 4)

    with rec.stage("sdp_grouping") as ex:
        groups = gt.group(a.groups)
        ex["solver"] = "cvxpy" if T <= 100 else "bm"
        ex["group_sizes"] = sorted((len(g) for g in groups), reverse=True)
        # the loader orders tasks by community size: data task t is generator community
        # community_index[t], whose planted group the generator wrote to groups.txt
        tg = np.loadtxt(raw / f"com-{name}.groups.txt", dtype=np.int64)
        planted = tg[data.community_index.numpy()].tolist()
        ex["ari_vs_planted"] = round(_ari(groups, planted), 4)

    gcfg = TrainConfig(**{**cfg.to_json(), "epochs": a.group_epochs,
                          "split": tuple(cfg.split), "num_neighbors": tuple(cfg.num_neighbors)})
    with rec.stage("grouped_train") as ex:
        res = train_groups(data, groups, gcfg, mode="models", progress=False)
        ex["num_groups"] = len(groups)
        ex["test_macro_f1"] = round(float(res["test_macro_f1"]), 4)
    print(f"peak RSS of the whole run (ru_maxrss): "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB", flush=True)
    shutil.rmtree(work, ignore_errors=True)


def _ari(groups: list[list[int]], planted: list[int]) -> float:
    from sklearn.metrics import adjusted_rand_score

    lab = [0] * len(planted)
    for i, g in enumerate(groups):
        for t in g:
            lab[t] = i
    return float(adjusted_rand_score(planted, lab))


# ----------------------------------------------------------------------------- reporting
def _fmt_e(e: float) -> str:
    return f"{e / 1e6:g}M"


def _neighbours(runs: dict[tuple[float, int], dict[str, dict[str, Any]]], fixed: int
                ) -> Iterator[tuple[Any, str, Any, Any, dict[str, Any], dict[str, Any]]]:
    """Pairs of measured stages at neighbouring sizes along one axis, the other held fixed.

    ``fixed=1`` holds the task count and steps through edge counts, ``fixed=0`` the reverse;
    yields ``(fixed value, stage, smaller, larger, record, record)``.
    """
    vary = 1 - fixed
    for f in sorted({k[fixed] for k in runs}):
        sizes = sorted(k[vary] for k in runs if k[fixed] == f)
        for s in STAGES:
            for v0, v1 in itertools.pairwise(sizes):
                key0 = (v0, f) if fixed == 1 else (f, v0)
                key1 = (v1, f) if fixed == 1 else (f, v1)
                a, b = runs[key0].get(s), runs[key1].get(s)
                if a and b and a["cpu_seconds"] > 0 and a["seconds"] > 0:
                    yield f, s, v0, v1, a, b


def report(path: Path) -> str:
    """Markdown tables from a results file: stages, totals and growth rates."""
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    runs: dict[tuple[float, int], dict[str, dict[str, Any]]] = {}
    for r in recs:  # the last record of a (config, stage) wins
        runs.setdefault((r["edges_target"], r["tasks"]), {})[r["stage"]] = r
    lines = ["| edges | nodes | tasks | stage | wall s | cpu s | peak RSS GiB | RSS at start GiB "
             "| load avg |", "|---|---|---|---|---|---|---|---|---|"]
    for (e, t), st in sorted(runs.items()):
        nodes = next((r.get("nodes") for r in st.values() if r.get("nodes")), "")
        for s in STAGES:
            if s not in st:
                continue
            r = st[s]
            lines.append(f"| {_fmt_e(e)} | {nodes} | {t} | {s} | {r['seconds']:.1f} | "
                         f"{r['cpu_seconds']:.1f} | {r['peak_rss_gib']:.2f} | "
                         f"{r['rss_start_gib']:.2f} | {r['loadavg_1m']} |")
        done = [st[s] for s in STAGES if s in st]
        lines.append(f"| {_fmt_e(e)} | {nodes} | {t} | **total ({len(done)}/{len(STAGES)} "
                     f"stages)** | **{sum(r['seconds'] for r in done):.1f}** | "
                     f"**{sum(r['cpu_seconds'] for r in done):.1f}** | "
                     f"**{max(r['peak_rss_gib'] for r in done):.2f}** | | |")
    out = ["\n".join(lines)]
    # growth in edges at fixed tasks: (cpu ratio) / (edge ratio)
    g = ["| tasks | stage | edges | cpu ratio / edge ratio | wall ratio / edge ratio | "
         "peak RSS ratio |", "|---|---|---|---|---|---|"]
    for t, s, e0, e1, a, b in _neighbours(runs, fixed=1):
        er = b.get("edges", e1) / a.get("edges", e0)
        g.append(f"| {t} | {s} | {_fmt_e(e0)} -> {_fmt_e(e1)} | "
                 f"{b['cpu_seconds'] / a['cpu_seconds'] / er:.2f} | "
                 f"{b['seconds'] / a['seconds'] / er:.2f} | "
                 f"{b['peak_rss_gib'] / a['peak_rss_gib']:.2f} |")
    out.append("Growth in edges (1.0 = linear; above 1 = superlinear):\n\n" + "\n".join(g))
    h = ["| edges | stage | tasks | cpu ratio / (tasks x nodes) ratio | wall ratio / (tasks x "
         "nodes) ratio |", "|---|---|---|---|---|"]
    for e, s, t0, t1, a, b in _neighbours(runs, fixed=0):
        tn = (t1 * b.get("nodes", 1)) / (t0 * a.get("nodes", 1))
        h.append(f"| {_fmt_e(e)} | {s} | {t0} -> {t1} | "
                 f"{b['cpu_seconds'] / a['cpu_seconds'] / tn:.2f} | "
                 f"{b['seconds'] / a['seconds'] / tn:.2f} |")
    out.append("Growth in tasks x nodes at fixed edges:\n\n" + "\n".join(h))
    return "\n\n".join(out)


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--edges", type=float, nargs="+", default=[1e6, 5e6])
    ap.add_argument("--tasks", type=int, nargs="+", default=[100, 500])
    ap.add_argument("--root", default="/tmp/graphtag-scale/data", help="dataset root")
    ap.add_argument("--work", default="/tmp/graphtag-scale/work", help="gradient stores")
    ap.add_argument("--results", default=str(REPO / "bench" / "out" / "scale" /
                                                  "results.jsonl"))
    ap.add_argument("--avg-degree", type=float, default=20.0)
    ap.add_argument("--planted-groups", type=int, default=20)
    ap.add_argument("--groups", type=int, default=20, help="k of the SDP grouping")
    ap.add_argument("--features", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--group-epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8192)
    ap.add_argument("--subsets", type=int, default=None,
                    help="task subsets (default: GradTAG's, about 6 draws per task pair)")
    ap.add_argument("--subset-size", type=int, default=None)
    ap.add_argument("--max-fit-nodes", type=int, default=2000)
    ap.add_argument("--grad-batch", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reuse-graph", action="store_true",
                    help="skip generation when the files exist (the stage then times nothing)")
    ap.add_argument("--min-available-gib", type=float, default=1.5,
                    help="exit a child when the machine's MemAvailable drops below (0: off)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--report", default=None, help="only print the tables of a results file")
    a = ap.parse_args(argv)
    if a.report:
        print(report(Path(a.report)))
        return
    if a.child:
        run_child(a)
        return
    Path(a.results).parent.mkdir(parents=True, exist_ok=True)
    passthrough = [x for x in (argv if argv is not None else sys.argv[1:])]
    strip = {"--edges", "--tasks"}
    rest, skip = [], False
    for x in passthrough:
        if skip and not x.startswith("--"):
            continue
        skip = x in strip
        if not skip:
            rest.append(x)
    for e in a.edges:
        for t in a.tasks:
            cmd = [sys.executable, __file__, "--child", "--edges", str(e), "--tasks", str(t),
                   *rest]
            rc = subprocess.call(cmd)
            if rc != 0:
                print(f"config {e:g} edges / {t} tasks failed with exit code {rc}", flush=True)
    print(report(Path(a.results)))


if __name__ == "__main__":
    main()

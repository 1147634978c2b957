"""Write a run's report: ``report.json``, ``report.md``, ``groups.csv``, ``affinity.png``."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["markdown_table", "plot_affinity", "write_report"]

_ORDER = ("mtl", "stl", "pcgrad", "fairgrad", "mtgd", "gradproj", "dmtg", "tag", "gradtag",
          "spectral", "oracle", "planted", "random")
_LABELS = {"mtl": "MTL (one model, all tasks)", "stl": "STL (one model per task)",
           "gradtag": "Grad-TAG groups (SDP)", "spectral": "spectral groups (same affinity)",
           "random": "random groups", "pcgrad": "PCGrad (one model)",
           "fairgrad": "FairGrad (one model)", "mtgd": "MTGD-style head mixing (one model)",
           "gradproj": "consensus-cosine weighting (one model)",
           "dmtg": "DMTG groups", "tag": "TAG lookahead groups (SDP)",
           "oracle": "oracle groups (true affinity, SDP)",
           "planted": "known (planted) groups"}


def _fmt(v: Any, spec: str = ".4f") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec)


def markdown_table(report: dict[str, Any]) -> str:
    """The methods table of a report as Markdown."""
    planted = report.get("planted_group_ari") or {}
    head = "| method | groups | test macro-F1 | val macro-F1 | parameters | train s |"
    sep = "|---|---:|---:|---:|---:|---:|"
    if planted:
        head += " planted ARI |"
        sep += "---:|"
    rows = [head, sep]
    methods = report["methods"]
    for name in sorted(methods, key=lambda m: _ORDER.index(m) if m in _ORDER else 99):
        m = methods[name]
        row = (f"| {_LABELS.get(name, name)} | {m['num_groups']} | {_fmt(m['test_macro_f1'])} "
               f"| {_fmt(m['val_macro_f1'])} | {m['num_parameters']:,} | "
               f"{_fmt(m['seconds'], '.1f')} |")
        if planted:
            row += f" {_fmt(planted.get(name), '.2f')} |"
        rows.append(row)
    return "\n".join(rows)


def plot_affinity(A: np.ndarray, groups: list[list[int]], path: str | os.PathLike,
                  title: str = "", pvalues: list[float] | None = None,
                  alpha: float = 0.05) -> list[bool] | None:
    """Heatmap of ``A`` with tasks ordered by group and group boundaries drawn.

    With ``pvalues`` (one per group, from :func:`~graphtag.grouping.group_pvalues`), each
    group's diagonal block is outlined: solid for a group whose within-group affinity beats
    random task sets of its size (``p < alpha``), dashed for one the affinity cannot tell
    from a random grouping. Returns which groups were outlined solid (None without
    ``pvalues``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = [t for g in groups for t in g]
    B = A[np.ix_(order, order)]
    lim = float(np.abs(B).max()) or 1.0
    n = len(order)
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=110)
    im = ax.imshow(B, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    edge = -0.5
    for g in groups[:-1] if pvalues is None else []:  # with p-values, outlines instead
        edge += len(g)
        ax.axhline(edge, color="k", lw=0.6)
        ax.axvline(edge, color="k", lw=0.6)
    if pvalues is not None:
        from matplotlib.patches import Rectangle

        start = -0.5
        for g, p in zip(groups, pvalues, strict=True):
            sig = p == p and p < alpha
            ax.add_patch(Rectangle((start, start), len(g), len(g), fill=False,
                                   edgecolor="k" if sig else "0.35", lw=1.6 if sig else 1.0,
                                   ls="-" if sig else "--"))
            start += len(g)
        solid = [bool(p == p and p < alpha) for p in pvalues]
        n_sig = sum(solid)
        note = (f"\nsolid: {n_sig} of {len(groups)} groups beat random task sets "
                f"(p < {alpha:g}); dashed: indistinguishable")
    else:
        note, solid = "", None
    ax.set_xlabel("task (ordered by group)")
    ax.set_ylabel("task (ordered by group)")
    if n <= 40:
        ax.set_xticks(range(n), order, fontsize=6, rotation=90)
        ax.set_yticks(range(n), order, fontsize=6)
    ax.set_title((title or f"Grad-TAG task affinity, {len(groups)} groups") + note, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="affinity (normalised)")
    fig.tight_layout()
    tmp = Path(path).with_name(Path(path).stem + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
    return solid


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_report(out: str | os.PathLike, report: dict[str, Any], affinity: np.ndarray,
                 groups: list[list[int]]) -> None:
    """Write the report files of a run into ``out``."""
    out = Path(out)
    _write(out / "report.json", json.dumps(report, indent=1))
    T = report["dataset"]["num_tasks"]
    cols = list(report["groups"])
    label = {m: np.empty(T, dtype=np.int64) for m in cols}
    for m in cols:
        for i, g in enumerate(report["groups"][m]):
            label[m][g] = i
    lines = ["task," + ",".join(f"{m}_group" for m in cols)]
    lines += [f"{t}," + ",".join(str(label[m][t]) for m in cols) for t in range(T)]
    _write(out / "groups.csv", "\n".join(lines) + "\n")
    plot_affinity(affinity, groups, out / "affinity.png",
                  pvalues=(report.get("group_pvalues") or {}).get("gradtag"))
    ds = report["dataset"]
    cov = report.get("coverage") or {}
    secs = report["stage_seconds"]
    md = [
        f"# graphtag run: {ds['name']}",
        "",
        f"{ds['num_nodes']:,} nodes, {ds['num_edges']:,} edges, {ds['num_tasks']} tasks, "
        f"{report['num_groups']} groups. Test macro-F1 averages the per-task F1 of tasks with "
        "test positives; every model has the same split, epochs and early stopping.",
        "",
        markdown_table(report),
        "",
        "Stage times (s): " + ", ".join(f"{k} {v:.1f}" for k, v in secs.items()) + ".",
    ]
    fit_secs = report.get("affinity_seconds") or {}
    if fit_secs:
        cfg = report["config"]
        how = cfg.get("fit_method", "exact")
        if how == "stats":
            how += f", {cfg.get('fit_refine')} refinement step(s)"
        md.append(f"Affinity stage ({how}): subset fits {fit_secs.get('fits', 0):.1f} s "
                  f"(of which per-task statistics {fit_secs.get('fit_statistics', 0):.1f} s), "
                  f"scores {fit_secs.get('scores', 0):.1f} s.")
    if cov:
        sub = report.get("subsets") or {}
        m = sub.get("num_subsets") or report["config"]["num_subsets"]
        size = sub.get("subset_size") or report["config"]["subset_size"]
        md.append(f"Subsets: {m} of size {size}; pairs covered "
                  f"{_fmt(cov.get('pair_fraction'), '.1%')}.")
    methods = report["methods"]
    if "random" in methods and "gradtag" in methods:
        gain = methods["gradtag"]["test_macro_f1"] - methods["random"]["test_macro_f1"]
        line = (f"Grad-TAG groups minus random groups of the same size and capacity: "
                f"{gain:+.4f} test macro-F1 (one seed; `bench/groups.py` pairs seeds)")
        if "planted" in methods:
            known = methods["planted"]["test_macro_f1"] - methods["random"]["test_macro_f1"]
            line += f"; the known groups minus random: {known:+.4f}"
            if known > 0:
                line += f", so Grad-TAG reaches {gain / known:.0%} of the known groups' gain"
        md.append(line + ".")
    pv = (report.get("group_pvalues") or {}).get("gradtag")
    if pv:
        sig = [i for i, p in enumerate(pv) if p == p and p < 0.05]
        md.append(f"Grad-TAG groups whose within-group affinity beats random task sets of the "
                  f"same size (permutation p < 0.05): {len(sig)} of {len(pv)} "
                  f"(groups {', '.join(map(str, sig)) or 'none'}; p-values in `report.json`, "
                  "entry standard errors in `affinity/affinity_se.npy`).")
    md += ["", "Files: `report.json`, `groups.csv`, `affinity.png` (affinity ordered by "
           "Grad-TAG group; groups that beat random task sets outlined solid, the others "
           "dashed)."]
    _write(out / "report.md", "\n".join(md) + "\n")

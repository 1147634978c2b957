"""Grad-TAG's estimated subset scores against the scores of actually fine-tuned models.

Usage::

    python bench/affinity.py                                   # amazon-top100 (shipped)
    python bench/affinity.py --dataset dblp                    # com-DBLP top-100 (../shared/data)
    python bench/affinity.py --subsets 200 --true-subsets 8 --params shared   # quick

Method
------
1. Train a base model (GraphSAGE, or ``--model sign``) on all tasks for a fixed number of
   epochs (no early stopping; the best epoch by validation macro-F1 is kept, as the Trainer
   does).
2. Run :class:`graphtag.pipeline.GradTAG` on it: collect projected gradients on the fit
   (training) and score (validation) nodes, fit the ``m`` subset models and score every task
   of every subset. Each variant crosses ``offset`` (base logits as offsets or not),
   ``scoring`` (``linearized``: ``b + g . z``; ``mapback``: one exact forward of the network
   at ``W* + P^T z`` per subset) and ``params`` (``shared`` encoder gradients or ``all``).
   The fits are computed once per (params, offset): the map-back estimate reads them back
   from the linearised run's checkpoint folder.
3. Ground truth: ``--true-subsets`` (n) of the same seeded subsets, picked for
   ``--anchors`` anchor tasks (the tasks with the worst base validation score, each with the
   first ``n / anchors`` subsets that hold it; ``--anchors 0``: the first n rows). For each,
   fine-tune a copy of the base model on only that subset's tasks (mean of the subset's
   masked BCE, all parameters trainable, the other tasks' head rows unused, Adam at the base
   learning rate unless ``--ft-lr``, ``--ft-epochs`` epochs of the same minibatches as base
   training, dropout on as in training) and score each subset task on the estimator's
   validation nodes (``score_store.nodes``) with exact full-graph inference: ``f`` (n, s),
   minus the mean log-loss. The estimate is ``f_hat = gt.scores_[rows]``.
4. Report

   * ``||f_hat - f||_F / ||f||_F``, the paper's relative distance;
   * the same for the changes, ``Delta f = f - base`` against ``Delta f_hat = f_hat -
     f_hat(z = 0)`` (the gain each side predicts over its own starting point: the base
     logits on the gradient trees for linearised scoring with offsets, the exact base for
     map-back with offsets, logit 0 without offsets);
   * the Spearman correlation of the two changes over all (subset, task) entries;
   * the within-task Spearman: the anchors' scores centred per anchor over the subsets that
     hold it, as :func:`~graphtag.affinity.affinity_matrix` normalises them. It asks whether
     the estimate ranks a task's partner subsets like fine-tuning does, which is all the
     affinity uses, and it is the only one of these numbers that is meaningful without
     offsets (the model fitted from logit 0 estimates no fine-tuned score, but can still rank).

   Two reference rows: the base model itself as the "estimate" (``f_hat = base``: the
   relative distance of predicting no change at all), and the ground truth re-run with other
   seeds (its noise floor: no estimate can agree with fine-tuning better than fine-tuning
   agrees with itself).

FLOPs
-----
Counted with :class:`torch.utils.flop_counter.FlopCounterMode` (matrix products: ``mm``,
``addmm``, ``bmm``, einsums; two FLOPs per multiply-add), plus exact formulas where it sees
nothing: the sparse JL projections run in a compiled (pybind) kernel, counted as
``2 * nnz`` FLOPs per input coordinate of ``project`` and per output coordinate of
``transpose`` (by wrapping ``SparseProjector._project``/``_transpose`` for the duration of a
count; nothing under ``graphtag/`` is edited), and the batched Cholesky factorisation and
solve of the Newton steps (``n^3 / 3`` and ``2 n^2`` per right-hand side). Not counted,
anywhere: elementwise ops and reductions (activations, losses, optimiser updates, the tree
aggregation done as mul+sum) and sparse/scatter neighbour aggregation (``O(E F)``, a few
percent of the dense layers at these widths). The same rules apply to the three costs:

(a) estimation = gradient collection + all ``m`` subset fits + scoring,
(b) fine-tuning all ``m`` subsets = ``m`` x the per-subset fine-tuning (training steps plus
    the full-graph inference that scores it),
(c) training the base model once (its steps plus the Trainer's per-epoch full-graph
    validation inference).

The counter's dispatch hook slows small ops several-fold (a fine-tuning step 4x), so wall
times come from uncounted runs and FLOPs from separate counted ones: training FLOPs are the
FLOPs of a full batch (counted over 3 steps of a throwaway copy) times the number of
batches, ``train nodes / batch size`` per epoch; map-back FLOPs are extrapolated linearly
from counts on 4 and 8 subsets (each subset costs one identical forward pass); gradient
collection is run a second time, counted, into a scratch folder. Only the subset fits (a few
hundred large batched ops, where the hook costs nothing measurable) are timed and counted
in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import math
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _data import REPO, SHARED, load
from scipy.stats import spearmanr
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode
from torch_geometric.data import Data
from torch_sparse import SparseTensor

from graphtag.affinity import linearized_logits, task_scores
from graphtag.affinity.mapback import mapback_logits
from graphtag.gradients.store import GradientStore
from graphtag.models.sign import sign_propagate
from graphtag.pipeline import GradTAG
from graphtag.projection import SparseProjector
from graphtag.training.run import TrainConfig, build_trainer
from graphtag.training.subsets import ModelInputs, exact_logits, model_inputs, train_on_tasks

DEFAULTS = {  # per dataset: base epochs, fine-tuning epochs, subsets m
    "amazon-top100": {"epochs": 30, "ft_epochs": 5, "subsets": 500},
    "dblp": {"epochs": 8, "ft_epochs": 1, "subsets": 300},
}

# --------------------------------------------------------------------------- FLOP counting


def _cholesky_flops(a_shape: tuple[int, ...], *args: Any, out_shape: Any = None,
                    **kwargs: Any) -> int:
    *batch, n, _ = a_shape
    return math.prod(batch) * n ** 3 // 3


def _cholesky_solve_flops(b_shape: tuple[int, ...], l_shape: tuple[int, ...], *args: Any,
                          out_shape: Any = None, **kwargs: Any) -> int:
    *batch, n, k = b_shape
    return math.prod(batch) * 2 * n * n * k


_CUSTOM = {torch.ops.aten.linalg_cholesky_ex: _cholesky_flops,
           torch.ops.aten.cholesky_solve: _cholesky_solve_flops}


@dataclass
class Cost:
    """FLOPs and wall seconds of one measured piece of work."""

    flops: float = 0.0
    seconds: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.flops + other.flops, self.seconds + other.seconds)

    def scaled(self, k: float) -> Cost:
        return Cost(self.flops * k, self.seconds * k)


@contextlib.contextmanager
def measure(count: bool = True) -> Iterator[Cost]:
    """Time the block and count its FLOPs (see the module docstring); fills the yielded Cost."""
    cost = Cost()
    sjlt = [0]
    orig_p, orig_t = SparseProjector._project, SparseProjector._transpose

    def project(self: SparseProjector, x: Tensor, offset: int) -> Tensor:
        sjlt[0] += 2 * self.nnz * x.numel()
        return orig_p(self, x, offset)

    def transpose(self: SparseProjector, y: Tensor, offset: int, length: int) -> Tensor:
        sjlt[0] += 2 * self.nnz * y.shape[0] * length
        return orig_t(self, y, offset, length)

    counter = FlopCounterMode(display=False, custom_mapping=_CUSTOM) if count else None
    if count:
        SparseProjector._project, SparseProjector._transpose = project, transpose
    t0 = time.perf_counter()
    try:
        with counter if counter is not None else contextlib.nullcontext():
            yield cost
    finally:
        cost.seconds = time.perf_counter() - t0
        SparseProjector._project, SparseProjector._transpose = orig_p, orig_t
        if counter is not None:
            cost.flops = float(counter.get_total_flops()) + float(sjlt[0])


# ------------------------------------------------------------------------------ models


# The subset training itself lives in the library (graphtag.training.subsets, which the
# ``oracle`` grouping method uses too); these wrappers only read the bench's arguments.
_INPUTS: dict[tuple[int, bool], ModelInputs] = {}


def _inputs(model: nn.Module, data: Data) -> ModelInputs:
    """The model inputs of ``data`` (``data.adj_t`` / ``data.xs``), built once per graph so
    the neighbour sampler is not rebuilt for every fine-tuned subset."""
    key = (id(data), bool(getattr(model, "uses_graph", True)))
    if key not in _INPUTS:
        _INPUTS[key] = model_inputs(model, data)
    return _INPUTS[key]


def train_steps(model: nn.Module, data: Data, tasks: Tensor | None, args: argparse.Namespace,
                *, lr: float, epochs: int, seed: int, max_steps: int | None = None) -> int:
    """Adam on the mean masked BCE of ``tasks``, in place; returns the steps taken
    (:func:`graphtag.training.subsets.train_on_tasks` with the bench's minibatches).

    ``tasks=None`` is a step of base training (every task's logit on every subgraph node,
    as the Trainer computes it); otherwise only the subset's head rows, on the seed nodes.
    """
    return train_on_tasks(model, data, tasks, epochs=epochs, lr=lr, batch_size=args.batch_size,
                          num_neighbors=args.num_neighbors, seed=seed, max_steps=max_steps,
                          inputs=_inputs(model, data))


def finetune(base: nn.Module, data: Data, tasks: Tensor, args: argparse.Namespace, seed: int
             ) -> nn.Module:
    """A copy of ``base`` fine-tuned on ``tasks`` only (all parameters trainable)."""
    model = copy.deepcopy(base)
    train_steps(model, data, tasks, args, lr=args.ft_lr, epochs=args.ft_epochs, seed=seed)
    return model.eval()


def step_flops(base: nn.Module, data: Data, tasks: Tensor | None, args: argparse.Namespace,
               probe: int = 3) -> float:
    """FLOPs of one training step on a full batch, counted over the first ``probe`` steps of
    a throwaway copy (full batches when the epoch has more than ``probe`` of them)."""
    model = copy.deepcopy(base)
    with measure(True) as c:
        steps = train_steps(model, data, tasks, args, lr=args.lr, epochs=1, seed=0,
                            max_steps=probe)
    return c.flops / steps


def inference_flops(model: nn.Module, data: Data, nodes: Tensor, tasks: Tensor | None
                    ) -> float:
    with measure(True) as c:
        exact_logits(model, data, nodes, tasks)
    return c.flops


def mapback_flops(model: nn.Module, data: Data, projector: Any, coef: Tensor,
                  subsets: np.ndarray, nodes: np.ndarray, offset: bool) -> float:
    """FLOPs of map-back scoring of all ``m`` subsets, extrapolated linearly from counts on
    the first 4 and 8 (every subset costs the same forward pass)."""
    counts = []
    for k in (4, 8):
        with measure(True) as c:
            mapback_logits(model, data, projector, coef[:k], subsets[:k], nodes=nodes,
                           offset=offset)
        counts.append(c.flops)
    per = (counts[1] - counts[0]) / 4
    return counts[0] + per * (subsets.shape[0] - 4)


def neg_logloss(logits: Tensor, labels: np.ndarray, subsets: np.ndarray) -> np.ndarray:
    """``(m, s)`` minus mean log-loss of ``logits`` ``(m, n, s)`` (same metric as GradTAG)."""
    return task_scores(logits.double(), labels, subsets, metric="neg_logloss").numpy()


# ------------------------------------------------------------------------- comparisons


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return float("nan")
    return float(spearmanr(a[ok], b[ok]).statistic)


def pick_rows(subsets: np.ndarray, base_scores: np.ndarray, n: int, num_anchors: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``subsets`` to fine-tune, and the anchor tasks they were picked for.

    With anchors: the ``num_anchors`` tasks with the worst base validation score (where
    fine-tuning has something to change), each with the first ``ceil(n / num_anchors)``
    subsets holding it, so that every anchor's score can be ranked across several subsets,
    which is the comparison the affinity makes. Without (``num_anchors = 0``): the first
    ``n`` rows.
    """
    if num_anchors <= 0:
        return np.arange(min(n, subsets.shape[0])), np.empty(0, dtype=np.int64)
    order = np.argsort(np.where(np.isfinite(base_scores), base_scores, np.inf), kind="stable")
    anchors = order[:num_anchors]
    per = math.ceil(n / num_anchors)
    rows: list[int] = []
    for t in anchors:
        for r in np.flatnonzero((subsets == t).any(1))[:per]:
            if r not in rows:
                rows.append(int(r))
    return np.asarray(rows, dtype=np.int64), anchors


def within_task_spearman(f_hat: np.ndarray, f: np.ndarray, subsets: np.ndarray,
                         anchors: np.ndarray) -> float:
    """Spearman over (anchor, subset) pairs of the anchors' scores, each centred by its mean
    over the subsets holding it (as :func:`~graphtag.affinity.affinity_matrix` normalises)."""
    a_hat, a_true = [], []
    for t in anchors:
        pos = subsets == t
        x, y = f_hat[pos], f[pos]
        if x.size >= 2:
            # an estimate constant across the anchor's subsets ranks nothing (no rounding noise)
            flat = np.ptp(x) <= 1e-9 * max(1.0, float(np.abs(x).max()))
            a_hat.append(np.zeros_like(x) if flat else x - x.mean())
            a_true.append(y - y.mean())
    if not a_hat:
        return float("nan")
    return _spearman(np.concatenate(a_hat), np.concatenate(a_true))


def first_order_error(base: nn.Module, tuned: nn.Module, data: Data, nodes: Tensor,
                      tasks: Tensor, eps: float = 0.05) -> tuple[float, float]:
    """The paper's first-order error of the outputs, and the same for "no change".

    ``|f(θ*) + <∇f(θ*), θ - θ*> - f(θ)| / max(|f(θ)|, |f(θ*)|)`` averaged over the score
    nodes and the subset's tasks, where ``f`` are the logits, ``θ*`` the base weights and
    ``θ`` the fine-tuned ones. The directional derivative is a central difference along
    ``θ - θ*`` (step ``eps``): exact up to ``eps^2`` times the third-order term, and it works
    for any model, including sparse neighbour aggregation that forward-mode AD lacks. The
    second number drops the linear term (predicting ``f(θ*)``), the floor any expansion
    should beat.
    """
    star = {k: v.detach().clone() for k, v in base.state_dict().items()}
    delta = {k: tuned.state_dict()[k].detach() - v for k, v in star.items()}
    probe = copy.deepcopy(base).eval()

    def at(t: float) -> Tensor:
        probe.load_state_dict({k: v + t * delta[k] if v.is_floating_point() else v
                               for k, v in star.items()})
        return exact_logits(probe, data, nodes, tasks).double()

    f_star, f = at(0.0), at(1.0)
    jvp = (at(eps) - at(-eps)) / (2 * eps)
    scale = torch.maximum(f.abs(), f_star.abs()).clamp_min(1e-12)
    return (float(((f_star + jvp - f).abs() / scale).mean()),
            float(((f_star - f).abs() / scale).mean()))


def compare(f_hat: np.ndarray, f: np.ndarray, f_hat0: np.ndarray | None, f0: np.ndarray,
            subsets: np.ndarray, anchors: np.ndarray) -> dict[str, float]:
    """Relative distances of scores and of score changes, Spearman of the changes over all
    entries, and the within-task Spearman of the anchors."""
    ok = np.isfinite(f_hat) & np.isfinite(f)
    rel = np.linalg.norm((f_hat - f)[ok]) / np.linalg.norm(f[ok])
    d_true = (f - f0)[ok]
    if f_hat0 is None:  # an "estimate" that predicts no change
        d_hat = np.zeros_like(d_true)
    else:
        d_hat = (f_hat - f_hat0)[ok]
    return {"rel": float(rel),
            "rel_delta": float(np.linalg.norm(d_hat - d_true) / np.linalg.norm(d_true)),
            "spearman": _spearman(d_hat, d_true),
            "within": within_task_spearman(f_hat, f, subsets, anchors)}


# ---------------------------------------------------------------------------------- run


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=sorted(DEFAULTS), default="amazon-top100")
    ap.add_argument("--root", default=str(REPO / "data"))
    ap.add_argument("--shared", default=str(SHARED))
    ap.add_argument("--model", choices=("sage", "sign"), default="sage")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--dropout", type=float, default=0.5)
    ap.add_argument("--epochs", type=int, default=None,
                    help="base-model epochs (default: 30 Amazon, 8 DBLP)")
    ap.add_argument("--lr", type=float, default=0.01, help="Adam lr (base and fine-tuning)")
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--num-neighbors", type=int, nargs="+", default=[15, 10])
    ap.add_argument("--pos-weight", default="none",
                    help="base-model BCE positive weight: 'none' (default: the same plain "
                         "log-loss that fine-tuning and the estimator use), 'auto' or a number")
    ap.add_argument("--subsets", type=int, default=None,
                    help="m, Grad-TAG subsets (default: 500 Amazon, 300 DBLP)")
    ap.add_argument("--subset-size", type=int, default=5)
    ap.add_argument("--true-subsets", type=int, default=24,
                    help="n, subsets fine-tuned for the ground truth")
    ap.add_argument("--anchors", type=int, default=4,
                    help="anchor tasks the true subsets are picked for (0: the first n rows)")
    ap.add_argument("--ft-epochs", type=int, default=None,
                    help="fine-tuning epochs per subset (default: 5 Amazon, 1 DBLP)")
    ap.add_argument("--ft-lr", type=float, default=None,
                    help="fine-tuning Adam lr (default: --lr)")
    ap.add_argument("--proj-dim", type=int, default=64)
    ap.add_argument("--proj-nnz", type=int, default=4)
    ap.add_argument("--lam", type=float, default=0.01)
    ap.add_argument("--max-fit-nodes", type=int, default=2000)
    ap.add_argument("--max-score-nodes", type=int, default=2000)
    ap.add_argument("--fanouts", type=int, nargs="+", default=None,
                    help="gradient computation-tree fan-outs (default 10 per layer)")
    ap.add_argument("--params", nargs="+", choices=("shared", "all"),
                    default=["shared", "all"])
    ap.add_argument("--offsets", nargs="+", choices=("on", "off"), default=["on", "off"])
    ap.add_argument("--scorings", nargs="+", choices=("linearized", "mapback"),
                    default=["linearized", "mapback"])
    ap.add_argument("--no-noise", action="store_true",
                    help="skip the ground-truth re-run with other seeds")
    ap.add_argument("--no-flops", action="store_true", help="time only, count no FLOPs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work-dir", default=None, help="gradient stores and fits (default: temp)")
    ap.add_argument("--base-cache", default=None,
                    help="file for the trained base model and its measured cost: read when it "
                         "holds the same training config, else written (saves retraining when "
                         "re-running variants)")
    ap.add_argument("--truth-cache", default=None,
                    help="file for the fine-tuned scores and their measured cost, reused like "
                         "--base-cache when base model, subsets and fine-tuning settings match")
    ap.add_argument("--save", default=None,
                    help="write the subsets, f, base and every variant's f_hat to this .npz")
    args = ap.parse_args()
    for key, val in DEFAULTS[args.dataset].items():
        if getattr(args, key) is None:
            setattr(args, key, val)
    if args.ft_lr is None:
        args.ft_lr = args.lr
    return args


def _pos_weight(text: str) -> float | str | None:
    return None if text == "none" else text if text == "auto" else float(text)


def _describe(anchors: np.ndarray, base_scores: np.ndarray) -> str:
    if anchors.size == 0:
        return "the first n rows"
    return ("for anchor tasks " + ", ".join(f"{t} ({base_scores[t]:.3f})" for t in anchors)
            + ", the hardest by base validation neg-logloss")


def _fmt_flops(x: float) -> str:
    return f"{x:.3g}" if x else "–"


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    command = "python3 bench/affinity.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    count = not args.no_flops
    t_start = time.perf_counter()

    data = load(args.dataset, Path(args.root), Path(args.shared))
    if data is None:
        sys.exit(f"{args.dataset}: shared files not found under {args.shared}.")
    n_nodes, T = data.num_nodes, data.y.size(1)
    data.adj_t = SparseTensor.from_edge_index(data.edge_index, sparse_sizes=(n_nodes, n_nodes)).t()
    if args.model == "sign":
        data.xs = sign_propagate(data.x, data.edge_index, 2, n_nodes)
    # full batches per epoch (fractional: the last, partial batch costs its share)
    steps_per_epoch = int(data.train_mask.sum()) / args.batch_size

    # ---- (c) base model
    cfg = TrainConfig(dataset=args.dataset, model=args.model, hidden_channels=args.hidden,
                      num_layers=2, dropout=args.dropout, epochs=args.epochs,
                      batch_size=args.batch_size, num_neighbors=tuple(args.num_neighbors),
                      lr=args.lr, patience=None, pos_weight=_pos_weight(args.pos_weight),
                      seed=args.seed)
    trainer = build_trainer(cfg, data.num_features, T, progress=False)
    cache = Path(args.base_cache) if args.base_cache else None
    saved = torch.load(cache, weights_only=False) if cache and cache.exists() else None
    if saved is not None and saved["config"] == cfg.to_json():
        trainer.model.load_state_dict(saved["state"])
        t_base = saved["seconds"]
        print(f"base model and its wall time read from {cache}", file=sys.stderr)
    else:
        with measure(False) as c:
            trainer.fit(data)
        t_base = c.seconds
        if cache is not None:
            torch.save({"config": cfg.to_json(), "state": trainer.model.state_dict(),
                        "seconds": t_base}, cache)
    base = trainer.model.eval()
    c_base = Cost(0.0, t_base)
    if count:  # an epoch: its steps plus the Trainer's full-graph validation inference
        c_base.flops = args.epochs * (steps_per_epoch * step_flops(base, data, None, args)
                                      + inference_flops(base, data, torch.arange(n_nodes), None))
    test = trainer.evaluate(data, "test")
    print(f"base {args.model}: {t_base:.1f} s, test macro-F1 {test['macro_f1']:.4f}, "
          f"loss {test['loss']:.4f}", file=sys.stderr, flush=True)

    tmp = tempfile.TemporaryDirectory(prefix="bench-affinity-") if args.work_dir is None else None
    work = Path(args.work_dir if tmp is None else tmp.name)

    def make(params: str, offset: bool, scoring: str) -> GradTAG:
        return GradTAG(num_subsets=args.subsets, subset_size=args.subset_size,
                       proj_dim=args.proj_dim, proj_nnz=args.proj_nnz, lam=args.lam,
                       offset=offset, scoring=scoring, params=params,
                       fanouts=tuple(args.fanouts) if args.fanouts else None,
                       max_fit_nodes=args.max_fit_nodes, max_score_nodes=args.max_score_nodes,
                       seed=args.seed, progress=False)

    # ---- (a) Grad-TAG: collect once per params, fit once per (params, offset), score per scoring
    variants: list[dict[str, Any]] = []
    costs: list[tuple[str, Cost]] = []
    score_store: GradientStore | None = None
    subsets: np.ndarray | None = None
    for params in args.params:
        gt0 = make(params, False, "linearized")
        with measure(False) as c_col:
            fit_store, score_store = gt0.collect(base, data, work / f"grads-{params}")
        if count:  # the same collection again, counted, into a scratch folder
            with measure(True) as c:
                make(params, False, "linearized").collect(base, data, work / "scratch")
            shutil.rmtree(work / "scratch")
            c_col.flops = c.flops
        costs.append((f"gradient collection, params={params} ({fit_store.num_nodes} fit + "
                      f"{score_store.num_nodes} score nodes)", c_col))
        score_nodes = np.array(score_store.nodes)
        for off in args.offsets:
            offset = off == "on"
            ck = work / f"fits-{params}-{off}"
            lin = make(params, offset, "linearized")
            lin.projector_ = gt0.projector_
            with measure(count) as c_lin:  # big batched ops: the counter costs ~nothing here
                lin.estimate(fit_store, score_store, model=base, data=data, checkpoint_dir=ck)
            subsets = lin.subsets_
            with measure(count) as c_ls:  # the linearised scoring alone, to split c_lin
                u = linearized_logits(score_store.grads, score_store.logits, lin.coef_,
                                      lin.subsets_, offset=offset)
                task_scores(u, score_store.labels, lin.subsets_)
            c_fit = Cost(c_lin.flops - c_ls.flops, lin.timings_["fits"])
            c_lsc = Cost(c_ls.flops, lin.timings_["scores"])
            costs.append((f"{args.subsets} subset fits, params={params}, offset={off}", c_fit))
            costs.append((f"linearised scoring, params={params}, offset={off}", c_lsc))
            # each scorer's score at z = 0: the point its predicted change is measured from
            base0 = lin.base_scores_ if offset else np.full(T, -math.log(2.0))
            for scoring in args.scorings:
                if scoring == "linearized":
                    est, c_sc, s0 = lin, c_lsc, base0
                else:
                    est = make(params, offset, "mapback")
                    est.projector_ = gt0.projector_
                    est.estimate(fit_store, score_store, model=base, data=data,
                                 checkpoint_dir=ck)  # the fits are read back from ck
                    if not torch.equal(est.coef_, lin.coef_):
                        raise RuntimeError(f"{ck}: map-back did not reuse the fits.")
                    c_sc = Cost(0.0, est.timings_["scores"])
                    if count:
                        c_sc.flops = mapback_flops(base, data, gt0.projector_, est.coef_,
                                                   est.subsets_, score_nodes, offset)
                    costs.append((f"map-back scoring, params={params}, offset={off}", c_sc))
                    s0 = None if offset else base0  # None: the exact base scores
                variants.append({"params": params, "offset": off, "scoring": scoring,
                                 "scores": est.scores_.numpy(), "s0": s0,
                                 "cost": c_col + c_fit + c_sc})
            print(f"params={params} offset={off}: done at {time.perf_counter() - t_start:.0f} s",
                  file=sys.stderr, flush=True)
    assert score_store is not None and subsets is not None

    # ---- (b) ground truth: fine-tune on n of the same subsets
    nodes = torch.from_numpy(np.array(score_store.nodes, dtype=np.int64))
    labels = np.asarray(score_store.labels)
    base_exact = neg_logloss(exact_logits(base, data, nodes)[None], labels,
                             np.arange(T)[None])[0]
    rows, anchors = pick_rows(subsets, base_exact, args.true_subsets, args.anchors)
    sub_n = subsets[rows]
    n = len(rows)
    f0 = base_exact[sub_n]

    fo_err: list[tuple[float, float]] = []

    def truth(seed_offset: int) -> tuple[np.ndarray, list[float]]:
        f = np.empty(sub_n.shape)
        secs: list[float] = []
        for k, row in enumerate(sub_n):
            tasks = torch.from_numpy(row)
            with measure(False) as c:
                model = finetune(base, data, tasks, args, args.seed * 100_003 + seed_offset + k)
                u = exact_logits(model, data, nodes, tasks)
            f[k] = neg_logloss(u[None], labels, row[None])[0]
            secs.append(c.seconds)
            if seed_offset == 0:
                fo_err.append(first_order_error(base, model, data, nodes, tasks))
        return f, secs

    tkey = {"base": cfg.to_json(), "rows": rows.tolist(), "ft_epochs": args.ft_epochs,
            "ft_lr": args.ft_lr, "seed": args.seed, "nodes": nodes.tolist()}
    tcache = Path(args.truth_cache) if args.truth_cache else None
    tsaved = torch.load(tcache, weights_only=False) if tcache and tcache.exists() else None
    if tsaved is not None and tsaved["key"] == tkey:
        f_true, secs = tsaved["f"], tsaved["seconds"]
        fo_err = tsaved.get("first_order", [])
        print(f"ground truth and its wall times read from {tcache}", file=sys.stderr)
    else:
        tsaved = None
        f_true, secs = truth(0)
    c_ft = Cost(0.0, float(np.mean(secs)))
    if count:  # the same for every subset of size s: count it on the first
        t0 = torch.from_numpy(sub_n[0])
        c_ft.flops = (args.ft_epochs * steps_per_epoch * step_flops(base, data, t0, args)
                      + inference_flops(base, data, nodes, t0))
    costs.append((f"fine-tuning one subset ({args.ft_epochs} epoch(s) + scoring), wall time "
                  f"mean of {n}", c_ft))
    c_true = c_ft.scaled(args.subsets)
    print(f"ground truth: {n} subsets, {sum(secs):.0f} s", file=sys.stderr, flush=True)

    rows_out = []
    for v in variants:
        f_hat = v["scores"][rows]
        f_hat0 = f0 if v["s0"] is None else np.asarray(v["s0"])[sub_n]
        rows_out.append((v, compare(f_hat, f_true, f_hat0, f0, sub_n, anchors)))
    ref_rows = [("base model as the estimate (f_hat = base)",
                 compare(f0, f_true, None, f0, sub_n, anchors))]
    f_again = None if tsaved is None else tsaved.get("f_again")
    if not args.no_noise:
        if f_again is None:
            f_again, _ = truth(50_000)
        ref_rows.append(("ground truth, other fine-tuning seeds",
                         compare(f_again, f_true, f0, f0, sub_n, anchors)))
    if tcache is not None:
        torch.save({"key": tkey, "f": f_true, "f_again": f_again, "seconds": secs,
                    "first_order": fo_err}, tcache)
    if args.save:
        extra = {} if f_again is None else {"f_true_other_seeds": f_again}
        np.savez(args.save, rows=rows, anchors=anchors, subsets=sub_n, f_true=f_true,
                 base_exact=base_exact, **extra,
                 **{f"f_hat_{v['params']}_{v['offset']}_{v['scoring']}": v["scores"][rows]
                    for v in variants},
                 **{f"f_hat0_{v['params']}_{v['offset']}_{v['scoring']}": (
                     base_exact if v["s0"] is None else np.asarray(v["s0"]))
                    for v in variants})

    # ---- report
    total = time.perf_counter() - t_start
    print(f"Command: `{command}` ({total / 60:.1f} min, {torch.get_num_threads()} thread(s))\n")
    print(f"{args.dataset}: {n_nodes:,} nodes, {data.edge_index.size(1) // 2:,} edges, {T} tasks; "
          f"base {args.model}, 2 layers, hidden {args.hidden}, dropout {args.dropout}, "
          f"{args.epochs} epochs, lr {args.lr}, pos_weight {args.pos_weight}, "
          f"test macro-F1 {test['macro_f1']:.4f}. Grad-TAG: m = {args.subsets} subsets of "
          f"{args.subset_size}, d = {args.proj_dim}, lam = {args.lam}, "
          f"{score_store.num_nodes} score nodes. Ground truth: n = {n} subsets "
          f"({_describe(anchors, base_exact)}), {args.ft_epochs} fine-tuning epoch(s) each, "
          f"Adam lr {args.ft_lr}.\n")
    print("| params | offset | scoring | rel. dist. | rel. dist. of Δ | Spearman Δ | "
          "within-task Spearman | est. FLOPs | true FLOPs (m subsets) | ratio | est. wall s | "
          "true wall s (extrap.) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for v, r in rows_out:
        c = v["cost"]
        ratio = f"{c.flops / c_true.flops:.2%}" if c_true.flops else "–"
        print(f"| {v['params']} | {v['offset']} | {v['scoring']} | {r['rel']:.4f} | "
              f"{r['rel_delta']:.3f} | {r['spearman']:.3f} | {r['within']:.3f} | "
              f"{_fmt_flops(c.flops)} | {_fmt_flops(c_true.flops)} | {ratio} | "
              f"{c.seconds:.1f} | {c_true.seconds:.0f} |")
    for name, r in ref_rows:
        print(f"| {name} | | | {r['rel']:.4f} | {r['rel_delta']:.3f} | "
              f"{r['spearman']:.3f} | {r['within']:.3f} | | | | | |")
    if fo_err:
        fo = np.asarray(fo_err)
        print(f"\nFirst-order error of the fine-tuned outputs (the paper's |f(θ*) + "
              f"<∇f(θ*), θ - θ*> - f(θ)| / max(|f(θ)|, |f(θ*)|), mean over {n} subsets x "
              f"their tasks x {nodes.numel()} score nodes): {fo[:, 0].mean():.2%} "
              f"(max over subsets {fo[:, 0].max():.2%}); predicting no change: "
              f"{fo[:, 1].mean():.2%}.")
    print("\n| component | FLOPs | wall s |\n|---|---|---|")
    print(f"| base training ({args.epochs} epochs, incl. per-epoch validation) | "
          f"{_fmt_flops(c_base.flops)} | {c_base.seconds:.1f} |")
    for name, c in costs:
        print(f"| {name} | {_fmt_flops(c.flops)} | {c.seconds:.2f} |")
    if c_base.flops:
        print(f"\nfine-tuning all m = {args.subsets} subsets (extrapolated) / base training: "
              f"{c_true.flops / c_base.flops:.1f}x FLOPs, "
              f"{c_true.seconds / c_base.seconds:.1f}x wall.")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()

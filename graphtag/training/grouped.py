"""Train one model (or one head) per task group and score all tasks together.

Two layouts, chosen by ``mode``:

``"models"``
    A separate network per group, trained only on that group's tasks (no parameter sharing
    across groups: what Grad-TAG's grouping is meant to decide). One group of all tasks is
    plain multitask learning (MTL); one group per task is single-task learning (STL).
``"heads"``
    One shared encoder with a :class:`~graphtag.models.GroupedHeads` head: groups share the
    graph encoder but not their last (MLP) layers. Cheaper; weaker separation.

Every group model is built from the same :class:`~graphtag.training.run.TrainConfig`, so all
groupings get the same splits, epochs, early stopping and seed.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Data
from tqdm.auto import tqdm

from graphtag.distributed import (
    all_gather_object,
    broadcast_object,
    get_world_size,
    is_main,
    on_main,
    shard,
)
from graphtag.models import GroupedHeads
from graphtag.models.sign import sign_propagate
from graphtag.training.losses import masked_bce_per_task
from graphtag.training.metrics import multitask_scores
from graphtag.training.run import TrainConfig, build_trainer

__all__ = ["GROUP_MODES", "check_groups", "train_groups"]

GROUP_MODES = ("models", "heads")


def check_groups(groups: Sequence[Sequence[int]], num_tasks: int) -> list[list[int]]:
    """Validate that ``groups`` partitions ``range(num_tasks)``; return it as lists of ints."""
    out = [[int(t) for t in g] for g in groups]
    flat = sorted(t for g in out for t in g)
    if not out or any(not g for g in out) or flat != list(range(num_tasks)):
        raise ValueError(
            f"groups must partition the {num_tasks} tasks: every task 0..{num_tasks - 1} in "
            f"exactly one non-empty group (got {len(out)} groups, {len(flat)} entries, "
            f"{len(set(flat))} distinct)."
        )
    return out


def _subset_data(data: Data, tasks: list[int]) -> Data:
    # shallow: shares graph, features and SIGN hops (a deep clone copied all of them, and all
    # T label columns, once per group: gigabytes at millions of nodes)
    sub = copy.copy(data)
    sub.y = data.y[:, tasks]
    if data.get("label_mask") is not None:
        sub.label_mask = data.label_mask[:, tasks]
    return sub


def train_groups(
    data: Data,
    groups: Sequence[Sequence[int]],
    config: TrainConfig,
    *,
    mode: str = "models",
    out_dir: str | os.PathLike | None = None,
    progress: bool = True,
    combiner: str | None = None,
    combiner_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train per-group models (or heads) and evaluate every task on validation and test.

    Parameters
    ----------
    data
        The multitask graph (``y`` of shape ``(N, T)``, split masks).
    groups
        Partition of ``range(T)``.
    config
        Model and training settings shared by all groups (see
        :class:`~graphtag.training.run.TrainConfig`; its data fields are not used here).
    mode
        ``"models"`` or ``"heads"`` (see the module docstring).
    out_dir
        Folder for checkpoints and per-group logits. A group whose ``logits.pt`` is there is
        not retrained, and an interrupted group resumes from its last epoch, so an
        interrupted call picks up where it stopped. None keeps everything in memory.
    progress
        Show a bar over groups (and the trainer's epoch bar for single-model modes).
    combiner
        Name of a :mod:`graphtag.optim` combiner (``"pcgrad"``, ``"fairgrad"``, ...) used by
        every model's trainer; None is the plain sum of task losses.
    combiner_options
        Keyword arguments of that combiner (e.g. ``{"rep_grad": True}``); each model gets
        its own instance.

    Notes
    -----
    Under a process group (``torchrun``) every rank calls this and gets the same result. In
    ``"models"`` mode with several groups, group ``i`` is trained by rank ``i % world`` on
    its own (so each group's model is exactly the one a single process trains) and its
    logits are sent to every rank; with one group, and in ``"heads"`` mode, all ranks train
    the one model data parallel (see :class:`~graphtag.training.Trainer`).

    Returns
    -------
    dict
        ``test_macro_f1``, ``test_micro_f1``, ``val_macro_f1``, ``test_per_task_f1`` (list in
        task order, ``nan`` for tasks without test positives), ``group_sizes``, ``seconds``
        (training time of all models: the sum of their epoch times, including epochs and
        groups done by an earlier, interrupted call), ``seconds_this_call`` (wall time spent
        training in this call; 0 when everything was loaded from ``out_dir``),
        ``num_parameters`` (all models together) and ``mode``.
    """
    if mode not in GROUP_MODES:
        raise ValueError(f"mode must be one of {GROUP_MODES} (got {mode!r}).")
    T = data.y.size(1)
    groups = check_groups(groups, T)
    out = Path(out_dir) if out_dir is not None else None

    def extra() -> dict[str, Any]:
        if combiner is None:
            return {}
        from graphtag.optim import make_combiner

        return {"combiner": make_combiner(combiner, **(combiner_options or {}))}

    extra()  # a bad combiner name or option fails here, before any training
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    if config.model == "sign" and data.get("xs") is None:
        # propagate once for all groups (each trainer would otherwise redo it)
        data = copy.copy(data)
        data.xs = sign_propagate(data.x, data.edge_index, config.num_layers, data.num_nodes)
    # only validation and test nodes are scored: keep just their logits
    rows = (data.val_mask | data.test_mask).nonzero().flatten()
    logits = torch.empty(rows.numel(), T)
    seconds, n_params, total = 0.0, 0, 0.0
    if mode == "heads":
        t0 = time.perf_counter()
        head = GroupedHeads(config.hidden_channels, groups, hidden_channels=config.hidden_channels)
        tr = build_trainer(config, data.num_features, T, head=head, progress=progress,
                           checkpoint_dir=None if out is None else out / "checkpoints", **extra())
        tr.fit(data, resume=out is not None)
        logits = tr.predict_logits(data, rows)
        seconds = time.perf_counter() - t0
        total = _epoch_seconds(tr)
        n_params = sum(p.numel() for p in tr.model.parameters())
    else:
        world = get_world_size()
        # Several groups under a process group: each rank trains its own groups (round robin)
        # alone. One group: all ranks train it together (data parallel, in the trainer).
        parallel = world > 1 and len(groups) > 1
        mine = shard(range(len(groups))) if parallel else list(range(len(groups)))
        trained: dict[int, tuple[torch.Tensor | None, int, float]] = {}
        bar = tqdm(mine, desc="groups", unit="group",
                   disable=not progress or len(groups) < 2 or not is_main())
        for i in bar:
            g = groups[i]
            gdir = out / f"group_{i:03d}" if out is not None else None
            done = gdir / "logits.pt" if gdir is not None else None
            # ranks that train one model together must agree on skipping it: rank 0 decides
            if done is not None and (done.exists() if parallel else on_main(done.exists)):
                saved = torch.load(done, weights_only=True)
                if saved["tasks"] != g:
                    raise RuntimeError(f"{done} was trained for other tasks; delete {out}.")
                if torch.equal(saved.get("nodes", torch.empty(0)), rows):
                    trained[i] = (saved["logits"], int(saved["num_parameters"]),
                                  float(saved.get("seconds", 0.0)))
                    if not parallel:  # into place now: holding every group's copy doubles it
                        logits[:, g] = trained[i][0]
                        trained[i] = (None, *trained[i][1:])
                    continue
                # other splits, or a file from before only evaluated rows were kept: the
                # finished checkpoint below is reloaded without retraining
            t0 = time.perf_counter()
            tr = build_trainer(config, data.num_features, len(g),
                               progress=progress and len(groups) == 1,
                               checkpoint_dir=None if gdir is None else gdir / "checkpoints",
                               distributed=False if parallel else None, **extra())
            tr.fit(_subset_data(data, g), resume=gdir is not None)
            lg = tr.predict_logits(data, rows)
            seconds += time.perf_counter() - t0
            n = sum(p.numel() for p in tr.model.parameters())
            trained[i] = (lg, n, _epoch_seconds(tr))
            if done is not None and (parallel or is_main()):
                tmp = done.with_name("logits.pt.tmp")
                torch.save({"tasks": g, "nodes": rows, "logits": lg, "num_parameters": n,
                            "seconds": trained[i][2]}, tmp)
                os.replace(tmp, done)
            if not parallel:
                logits[:, g] = lg
                trained[i] = (None, n, trained[i][2])
            del lg
        if parallel:
            # every rank gets every group's logits from the rank that trained it
            seconds = sum(all_gather_object(seconds))
            trained = {i: broadcast_object(trained.get(i), src=i % world)
                       for i in range(len(groups))}
        for i, g in enumerate(groups):
            if trained[i][0] is not None:
                logits[:, g] = trained[i][0]
            n_params += trained[i][1]
            total += trained[i][2]
    res = _scores(data, rows, logits, groups, mode, total, n_params)
    res["seconds_this_call"] = seconds
    return res


def _epoch_seconds(tr: Any) -> float:
    # the history survives a resume, so this counts epochs of interrupted calls too
    return float(sum(h["seconds"] for h in tr.history_))


def _scores(data: Data, rows: torch.Tensor, logits: torch.Tensor, groups: list[list[int]],
            mode: str, seconds: float, n_params: int) -> dict[str, Any]:
    """Scores from the logits of the evaluated nodes ``rows``."""
    lm = data.get("label_mask")
    res: dict[str, Any] = {"mode": mode}
    for split in ("val", "test"):
        sel = data[f"{split}_mask"][rows]
        m = rows[sel]
        logits_s = logits[sel]
        sc = multitask_scores(data.y[m], logits_s, None if lm is None else lm[m])
        res[f"{split}_macro_f1"] = sc["macro_f1"]
        if split == "test":
            res["test_micro_f1"] = sc["micro_f1"]
            res["test_per_task_f1"] = [float(v) for v in sc["per_task_f1"]]
            res["test_loss"] = float(masked_bce_per_task(
                logits_s, data.y[m].float(), None if lm is None else lm[m]).mean())
    res["group_sizes"] = [len(g) for g in groups]
    res["num_groups"] = len(groups)
    res["seconds"] = seconds
    res["num_parameters"] = n_params
    res["mean_group_size"] = float(np.mean(res["group_sizes"]))
    return res

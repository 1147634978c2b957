"""One training run from a config: load data, build, train, evaluate, write a run folder.

A run folder holds ``config.json``, ``checkpoints/`` (``last.pt``, ``best.pt``),
``history.json``, ``metrics.json`` and ``model.pt``. Rerunning with the same config resumes
(or, when finished, just reports); a different config in an existing folder is refused so no
earlier result is overwritten by accident.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import torch
from torch_geometric.data import Data

from graphtag._io import write_json as _write_json
from graphtag.config import TrainConfig
from graphtag.datasets import load_dataset
from graphtag.distributed import barrier, broadcast_object, is_main, main_first, on_main
from graphtag.models import build_model
from graphtag.training.metrics import constant_predictor_f1
from graphtag.training.trainer import Trainer, seed_everything

__all__ = ["TrainConfig", "build_trainer", "train_run"]


def build_trainer(
    config: TrainConfig,
    in_channels: int,
    num_tasks: int,
    *,
    head: torch.nn.Module | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: bool = True,
    **trainer_kwargs: Any,
) -> Trainer:
    """A freshly seeded model and its :class:`Trainer`, both as ``config`` says.

    Every model of a run (base, grouped, per-task) is built here so they share one budget.
    ``head`` replaces the default one-logit-per-task head (e.g. a
    :class:`~graphtag.models.GroupedHeads`); ``trainer_kwargs`` go to :class:`Trainer`
    (an explicit ``combiner`` there wins over ``config.combiner``).
    """
    if "combiner" not in trainer_kwargs and config.combiner != "equal":
        from graphtag.optim import make_combiner

        trainer_kwargs["combiner"] = make_combiner(config.combiner)
    seed_everything(config.seed)
    model = build_model(config.model, in_channels, num_tasks,
                        hidden_channels=config.hidden_channels, num_layers=config.num_layers,
                        dropout=config.dropout, head=head)
    return Trainer(
        model, lr=config.lr, weight_decay=config.weight_decay, epochs=config.epochs,
        batch_size=config.batch_size, num_neighbors=config.num_neighbors,
        patience=config.patience, pos_weight=config.pos_weight, full_batch=config.full_batch,
        device=config.device, seed=config.seed, checkpoint_dir=checkpoint_dir,
        progress=progress, **trainer_kwargs,
    )


def train_run(
    config: TrainConfig,
    out_dir: str | os.PathLike,
    *,
    progress: bool = True,
    overwrite: bool = False,
    data: Data | None = None,
) -> dict[str, Any]:
    """Train and evaluate as ``config`` says, writing the run folder ``out_dir``.

    ``data`` is the dataset ``config`` names, when the caller has it loaded already (the
    pipeline does: a second copy is gigabytes on million-node graphs).

    Returns the metrics dict (also in ``metrics.json``): test/val macro-F1, micro-F1, ROC-AUC,
    per-task F1, the constant-predictor macro-F1 on test, epochs run, and timings.

    Under a process group (``torchrun``), every rank calls this: the model trains data
    parallel (see :class:`~graphtag.training.Trainer`), rank 0 writes the run folder, and
    every rank returns the same metrics.

    Raises
    ------
    FileExistsError
        ``out_dir`` holds a run with a different config (pass ``overwrite=True`` or another
        folder).
    """
    out = Path(out_dir)
    cfg_path = out / "config.json"
    cfg = config.to_json()

    def prepare() -> None:
        out.mkdir(parents=True, exist_ok=True)
        if cfg_path.exists():
            old = json.loads(cfg_path.read_text())
            if old != cfg and not overwrite:
                diff = sorted(k for k in set(old) | set(cfg) if old.get(k) != cfg.get(k))
                raise FileExistsError(
                    f"{out} holds a run with a different config (differs in {diff}); choose "
                    "another --out folder or pass --overwrite to replace it."
                )
            if old != cfg:
                for f in ("metrics.json", "history.json", "model.pt"):
                    (out / f).unlink(missing_ok=True)
                for f in (out / "checkpoints").glob("*.pt"):
                    f.unlink()
        _write_json(cfg_path, cfg)

    on_main(prepare)  # one writer; under torchrun every rank trains (data parallel)
    t0 = time.perf_counter()
    if data is None:
        with main_first():  # rank 0 builds the processed-data cache, the others read it
            data = load_dataset(config.dataset, config.root, config.num_tasks,
                                log=progress and is_main(), **config.data_kwargs())
    t_data = time.perf_counter() - t0
    trainer = build_trainer(config, data.num_features, data.y.size(1),
                            checkpoint_dir=out / "checkpoints", progress=progress)
    model = trainer.model
    t1 = time.perf_counter()
    trainer.fit(data, resume=True)
    t_train = time.perf_counter() - t1
    if not is_main():  # the weights are the same on every rank: rank 0 reports them
        barrier()
        return broadcast_object(None)
    test = trainer.evaluate(data, "test")  # each predicts its split's nodes only
    val = trainer.evaluate(data, "val")
    metrics = {
        "dataset": config.dataset,
        "num_nodes": int(data.num_nodes),
        "num_edges": int(data.edge_index.size(1) // 2),
        "num_tasks": int(data.y.size(1)),
        "model": config.model,
        "test_macro_f1": test["macro_f1"],
        "test_micro_f1": test["micro_f1"],
        "test_roc_auc": test["roc_auc"],
        "val_macro_f1": val["macro_f1"],
        "constant_test_macro_f1": constant_predictor_f1(
            data.y[data.test_mask], None if data.get("label_mask") is None
            else data.label_mask[data.test_mask]),
        "best_epoch": trainer.best_epoch_,
        "epochs_run": len(trainer.history_),
        "seconds_data": t_data,
        "seconds_train": t_train,
        "test_per_task_f1": test["per_task_f1"],
    }
    if data.get("ogb_name") is not None:  # the benchmark's own metric, next to macro-F1
        from graphtag.datasets.benchmarks import ogb_rocauc

        rows = data.test_mask.nonzero().flatten()
        metrics["test_ogb_rocauc"] = ogb_rocauc(
            data.ogb_name, data.y[rows].numpy(), trainer.predict_logits(data, rows).numpy())
    trainer.save_history(out / "history.json")
    torch.save(model.state_dict(), out / "model.pt")
    _write_json(out / "metrics.json", metrics)
    barrier()  # model.pt is written before any rank goes on to read it
    return broadcast_object(metrics)

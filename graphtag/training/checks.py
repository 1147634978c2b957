"""Up-front checks of a training configuration, so a bad setting fails before any work.

Each ``*_problems`` function returns every problem found (not just the first), one sentence
each naming the setting, the value and what is allowed; :func:`raise_problems` joins them
into one ``ValueError``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["check_choice", "check_int", "check_number", "raise_problems", "train_problems"]


def check_int(problems: list[str], name: str, value: Any, lo: int = 1,
              optional: bool = False) -> None:
    """Append a problem unless ``value`` is an int ``>= lo`` (or None when ``optional``)."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        allowed = f"an integer >= {lo}" + (" or None" if optional else "")
        problems.append(f"{name} must be {allowed} (got {value!r})")


def check_number(problems: list[str], name: str, value: Any, test: Callable[[float], bool],
                 allowed: str) -> None:
    """Append a problem unless ``value`` is a finite number passing ``test``."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) and test(float(value))
    if not ok:
        problems.append(f"{name} must be {allowed} (got {value!r})")


def check_choice(problems: list[str], name: str, value: Any, choices: Sequence[Any]) -> None:
    """Append a problem unless ``value`` is one of ``choices``."""
    if value not in choices:
        problems.append(f"{name} must be one of {list(choices)} (got {value!r})")


def raise_problems(problems: list[str], what: str = "config") -> None:
    """Raise one ``ValueError`` listing every problem (nothing when there is none)."""
    if problems:
        raise ValueError(f"invalid {what}: " + "; ".join(problems) + ".")


def train_problems(cfg: Any) -> list[str]:
    """Problems of the :class:`~graphtag.training.run.TrainConfig` fields of ``cfg``."""
    from graphtag.datasets.features import FEATURE_KINDS
    from graphtag.datasets.files import (
        CONSTANT_TASK_POLICIES,
        LABEL_FORMATS,
        UNKNOWN_NODE_POLICIES,
    )
    from graphtag.models.factory import MODELS
    from graphtag.optim.registry import COMBINERS

    p: list[str] = []
    if not isinstance(cfg.dataset, str) or not cfg.dataset:
        p.append(f"dataset must be a dataset name or a path (got {cfg.dataset!r})")
    check_int(p, "num_tasks", cfg.num_tasks, optional=True)
    check_choice(p, "features", cfg.features, FEATURE_KINDS)
    check_int(p, "num_features", cfg.num_features)
    split = tuple(cfg.split) if isinstance(cfg.split, (list, tuple)) else ()
    if len(split) != 3 or not all(isinstance(f, (int, float)) and f >= 0 for f in split) \
            or sum(split) > 1 + 1e-9 or split[0] <= 0:
        p.append(f"split must be three fractions >= 0 summing to <= 1 with train > 0 "
                 f"(got {cfg.split!r})")
    check_choice(p, "model", cfg.model, MODELS)
    check_int(p, "hidden_channels", cfg.hidden_channels)
    check_int(p, "num_layers", cfg.num_layers)
    check_number(p, "dropout", cfg.dropout, lambda v: 0 <= v < 1, "in [0, 1)")
    check_int(p, "epochs", cfg.epochs)
    check_int(p, "batch_size", cfg.batch_size)
    fan = cfg.num_neighbors
    if not isinstance(fan, (list, tuple)) or not all(
            isinstance(k, int) and (k >= 1 or k == -1) for k in fan):
        p.append(f"num_neighbors must be positive integers (or -1: all) (got {fan!r})")
    elif cfg.model != "sign" and not cfg.full_batch and isinstance(cfg.num_layers, int) \
            and len(fan) != cfg.num_layers:
        p.append(f"num_neighbors has {len(fan)} fan-outs for num_layers={cfg.num_layers}; "
                 "give one per layer")
    check_number(p, "lr", cfg.lr, lambda v: v > 0, "a number > 0")
    check_number(p, "weight_decay", cfg.weight_decay, lambda v: v >= 0, "a number >= 0")
    check_int(p, "patience", cfg.patience, optional=True)
    pw = cfg.pos_weight
    if not (pw is None or pw == "auto" or (isinstance(pw, (int, float))
                                           and not isinstance(pw, bool) and math.isfinite(pw)
                                           and pw > 0)):
        p.append(f"pos_weight must be 'auto', None or a number > 0 (got {pw!r})")
    check_choice(p, "combiner", cfg.combiner, tuple(COMBINERS))
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or cfg.seed < 0:
        p.append(f"seed must be an integer >= 0 (got {cfg.seed!r})")
    try:
        import torch

        torch.device(cfg.device)
    except (RuntimeError, TypeError):
        p.append(f"device must be a torch device such as 'cpu', 'cuda' or 'cuda:1' "
                 f"(got {cfg.device!r})")
    if getattr(cfg, "labels", None) is not None and not isinstance(cfg.labels, str):
        p.append(f"labels must be a path or None (got {cfg.labels!r})")
    check_choice(p, "labels_format", getattr(cfg, "labels_format", "auto"), LABEL_FORMATS)
    check_choice(p, "unknown_nodes", getattr(cfg, "unknown_nodes", "error"),
                 UNKNOWN_NODE_POLICIES)
    check_choice(p, "constant_tasks", getattr(cfg, "constant_tasks", "error"),
                 CONSTANT_TASK_POLICIES)
    return p

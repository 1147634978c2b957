"""Every setting of a :class:`~graphtag.pipeline.RunConfig` checked at construction.

A bad value (a negative ridge weight, a subset larger than allowed, an unknown solver...)
otherwise surfaces only in the stage that reads it, after the base model has trained.
"""

from __future__ import annotations

from typing import Any

from graphtag.training.checks import (
    check_choice,
    check_int,
    check_number,
    raise_problems,
    train_problems,
)

__all__ = ["run_problems", "validate_run_config"]


def _choices(name: str) -> tuple[Any, ...]:
    """The allowed values of RunConfig field ``name``, as its declaration (or the registry
    it names) lists them: the one list the command line offers too."""
    from graphtag.config import RunConfig, choices_of

    choices = choices_of(RunConfig.__dataclass_fields__[name])
    assert choices is not None, name
    return choices


def run_problems(cfg: Any) -> list[str]:
    """Problems of every field of a RunConfig (its TrainConfig part included)."""
    p = train_problems(cfg)
    check_int(p, "proj_dim", cfg.proj_dim)
    check_int(p, "proj_nnz", cfg.proj_nnz)
    check_choice(p, "grad_params", cfg.grad_params, _choices("grad_params"))
    fan = cfg.grad_fanouts
    if fan is not None and (not isinstance(fan, (list, tuple)) or not all(
            isinstance(k, int) and (k >= 1 or k == -1) for k in fan)):
        p.append(f"grad_fanouts must be None or positive integers (got {fan!r})")
    check_int(p, "max_fit_nodes", cfg.max_fit_nodes, optional=True)
    check_int(p, "max_score_nodes", cfg.max_score_nodes, optional=True)
    check_int(p, "num_subsets", cfg.num_subsets, optional=True)
    check_int(p, "subset_size", cfg.subset_size, optional=True)
    if isinstance(cfg.subset_size, int) and isinstance(cfg.num_tasks, int) \
            and cfg.subset_size > cfg.num_tasks:
        p.append(f"subset_size={cfg.subset_size} exceeds num_tasks={cfg.num_tasks}")
    check_number(p, "lam", cfg.lam, lambda v: v >= 0, "a number >= 0")
    if hasattr(cfg, "fit_refine"):
        check_int(p, "fit_refine", cfg.fit_refine, lo=0)
    check_choice(p, "offset", cfg.offset, (True, False))
    check_choice(p, "metric", cfg.metric, _choices("metric"))
    check_choice(p, "scoring", cfg.scoring, _choices("scoring"))
    check_int(p, "num_groups", cfg.num_groups)
    check_choice(p, "solver", cfg.solver, _choices("solver"))
    methods = _choices("methods")
    bad = [m for m in cfg.methods if m not in methods]
    if bad:
        p.append(f"methods {bad} unknown; choose from {list(methods)}")
    check_choice(p, "group_mode", cfg.group_mode, _choices("group_mode"))
    check_int(p, "peer_epochs", cfg.peer_epochs, optional=True)
    check_int(p, "tag_lookaheads", cfg.tag_lookaheads, optional=True)
    check_choice(p, "rep_grad", cfg.rep_grad, (True, False))
    return p


def validate_run_config(cfg: Any) -> None:
    """Raise one ``ValueError`` naming every invalid setting of ``cfg``."""
    raise_problems(run_problems(cfg), "run config")

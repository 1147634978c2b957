"""Training and evaluation of multitask node classifiers."""

from graphtag.training.losses import masked_bce_per_task
from graphtag.training.metrics import constant_predictor_f1, multitask_scores
from graphtag.training.trainer import Trainer, seed_everything

__all__ = [
    "Trainer",
    "constant_predictor_f1",
    "masked_bce_per_task",
    "multitask_scores",
    "seed_everything",
]

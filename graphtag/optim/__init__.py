"""Gradient-combination methods for multitask training (plugged into the Trainer)."""

from graphtag.optim.base import EqualWeighting, LossCombiner

__all__ = ["EqualWeighting", "LossCombiner"]

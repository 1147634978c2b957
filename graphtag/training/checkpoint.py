"""Checkpoint files and RNG state of :class:`~graphtag.training.Trainer`.

``last.pt`` (written atomically after every epoch) holds everything a resume needs: model,
optimiser, early-stopping state, history, the global RNG state and the batching generator's
state; ``best.pt`` holds the best epoch's weights. In a multi-process run rank 0 writes and
reads them and sends what it read to the others, so no rank depends on seeing a file another
node wrote.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from graphtag import distributed as gdist

__all__ = ["atomic_save", "load_last", "rng_state", "seed_everything", "set_rng_state"]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) RNGs."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002  (user code may draw from the legacy global RNG)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The global Python, NumPy and torch (CPU) RNG states."""
    return {"python": random.getstate(), "numpy": np.random.get_state(),  # noqa: NPY002
            "torch": torch.get_rng_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(state["torch"])


def atomic_save(obj: object, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_last(last: Path, device: torch.device, *, shared: bool) -> dict[str, Any] | None:
    """The checkpoint ``last`` or None when there is none. ``shared`` (a multi-process run):
    rank 0 reads it and every rank gets rank 0's copy (on the CPU)."""
    if not shared:
        if not last.exists():
            return None
        return torch.load(last, weights_only=False, map_location=device)
    return gdist.on_main(lambda: torch.load(last, weights_only=False, map_location="cpu")
                         if last.exists() else None)

"""On-disk store of projected per-sample gradients, written in resumable chunks.

Layout of a store folder::

    manifest.json   what produced it (model hash, projector, sampling) and "complete"
    grads.npy       (N, T, d) projected gradients (float32 or float16), memory-mapped
    logits.npy      (N, T) float32 base-model logits on the same computation trees
    labels.npy      (N, T) int8 labels, -1 where unknown
    nodes.npy       (N,) int64 node ids
    progress.json   number of finished chunks (absent once complete)

Chunks are written in order and each chunk's trees are sampled from its own seed, so a run
resumed after an interruption writes exactly what an uninterrupted run writes. The manifest is
marked complete (atomically, by rename) only after every chunk is flushed; readers refuse an
incomplete store, and a store made by a different model or projector is refused with the keys
that differ.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from tqdm.auto import tqdm

from graphtag.gradients.persample import GradientModel
from graphtag.projection import KroneckerProjector

__all__ = ["GradientStore", "StoreMismatchError", "collect_gradients", "model_fingerprint"]

_DTYPES = {"float32": np.float32, "float16": np.float16}


class StoreMismatchError(RuntimeError):
    """An existing store was made with other settings than the ones asked for."""


def model_fingerprint(model: nn.Module) -> str:
    """SHA-256 of a model's parameters and buffers (names, shapes, values)."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _projector_config(p: Any) -> dict[str, Any]:
    """What identifies a projection matrix (the backend does not: all backends agree)."""
    cfg = {"type": type(p).__name__}
    for key in ("in_dim", "out_dim", "nnz", "seed", "kind"):
        if hasattr(p, key):
            cfg[key] = getattr(p, key)
    return cfg


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


class GradientStore:
    """Read access to a finished store (see the module docstring).

    Attributes
    ----------
    grads, logits, labels, nodes
        Memory-mapped arrays (nothing is loaded until sliced).
    manifest
        The settings that produced the store.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        mpath = self.path / "manifest.json"
        if not mpath.exists():
            raise FileNotFoundError(f"{self.path}: no gradient store here (manifest.json missing).")
        self.manifest = json.loads(mpath.read_text())
        if not self.manifest.get("complete"):
            raise RuntimeError(
                f"{self.path}: the store is incomplete (an interrupted collection); rerun "
                "collect_gradients with the same settings to finish it."
            )
        self.grads = np.load(self.path / "grads.npy", mmap_mode="r")
        self.logits = np.load(self.path / "logits.npy", mmap_mode="r")
        self.labels = np.load(self.path / "labels.npy", mmap_mode="r")
        self.nodes = np.load(self.path / "nodes.npy", mmap_mode="r")

    @property
    def num_nodes(self) -> int:
        return int(self.grads.shape[0])

    @property
    def num_tasks(self) -> int:
        return int(self.grads.shape[1])

    @property
    def dim(self) -> int:
        return int(self.grads.shape[2])

    def check(self, **expected: Any) -> None:
        """Raise :class:`StoreMismatchError` unless the manifest has these values."""
        bad = {k: (self.manifest.get(k), v) for k, v in expected.items()
               if self.manifest.get(k) != v}
        if bad:
            raise StoreMismatchError(
                f"{self.path}: store made with other settings: "
                + ", ".join(f"{k} is {a!r}, expected {b!r}" for k, (a, b) in bad.items())
                + ". Collect a new store (another folder) for these settings."
            )

    def __repr__(self) -> str:
        return (f"GradientStore({self.path}, nodes={self.num_nodes}, tasks={self.num_tasks}, "
                f"dim={self.dim})")


def collect_gradients(
    model: nn.Module,
    data: Data,
    nodes: Tensor | Sequence[int],
    projector: Any,
    out_dir: str | os.PathLike,
    *,
    fanouts: Sequence[int] | None = None,
    batch_size: int = 32,
    chunk_size: int = 512,
    seed: int = 0,
    strategy: str = "auto",
    dtype: str = "float32",
    progress: bool = True,
) -> GradientStore:
    """Compute and store projected gradients of every task's logit at ``nodes``.

    Parameters
    ----------
    model
        Trained :class:`~graphtag.models.MultitaskGNN` (``sage``) or :class:`~graphtag.models.SIGN`
        (put in eval mode).
    data
        The graph the model was trained on.
    nodes
        Node ids to collect (e.g. the training nodes, or a sample of them).
    projector
        A :class:`~graphtag.projection.SparseProjector` or
        :class:`~graphtag.projection.DenseProjector` with ``in_dim`` = number of trainable
        parameters.
    out_dir
        Store folder; an unfinished store with the same settings is resumed, a finished one
        returned as is.
    fanouts, batch_size, chunk_size, seed, strategy
        Tree fan-outs, nodes per vectorised batch, nodes per resumable chunk, sampling seed,
        and the Jacobian strategy (see :meth:`GradientModel.projected_gradients`).
    dtype
        ``"float32"`` or ``"float16"`` storage (half the disk; the regressions upcast).
    """
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)} (got {dtype!r}).")
    if batch_size < 1 or chunk_size < 1:
        raise ValueError("batch_size and chunk_size must be >= 1.")
    model.eval()
    gm = GradientModel(model, data, fanouts)
    shared_ok = isinstance(projector, KroneckerProjector) and projector.in_dim == \
        gm.num_shared_params
    if projector.in_dim != gm.num_params and not shared_ok:
        raise ValueError(
            f"projector.in_dim={projector.in_dim} but the model has {gm.num_params} trainable "
            f"parameters ({gm.num_shared_params} shared); build the projector with "
            "in_dim=sum(p.numel() for p in model.parameters()), or use "
            "kronecker_projector(model, ..., shared_only=True)."
        )
    nodes = torch.as_tensor(nodes, dtype=torch.long)
    N, T, d = nodes.numel(), model.num_tasks, projector.out_dim
    out = Path(out_dir)
    manifest = {
        "version": 1,
        "model_sha256": model_fingerprint(model),
        "model": type(model).__name__,
        "projector": _projector_config(projector),
        "num_nodes": N,
        "num_tasks": T,
        "dim": d,
        "dtype": dtype,
        "fanouts": list(gm.fanouts) if gm.kind == "sage" else None,
        "seed": seed,
        "chunk_size": chunk_size,
        "nodes_sha256": hashlib.sha256(nodes.numpy().tobytes()).hexdigest(),
    }
    mpath = out / "manifest.json"
    if mpath.exists():
        old = json.loads(mpath.read_text())
        diff = sorted(k for k in manifest if old.get(k) != manifest[k])
        if diff:
            raise StoreMismatchError(
                f"{out}: an existing gradient store was made with other settings ({diff}); "
                "use another folder, or delete this one to recollect."
            )
        if old.get("complete"):
            return GradientStore(out)
    out.mkdir(parents=True, exist_ok=True)
    ppath = out / "progress.json"
    done = json.loads(ppath.read_text())["chunks_done"] if ppath.exists() else 0
    if done == 0:
        _write_json(mpath, {**manifest, "complete": False})
        arrays = {
            "grads": np.lib.format.open_memmap(out / "grads.npy", "w+", _DTYPES[dtype], (N, T, d)),
            "logits": np.lib.format.open_memmap(out / "logits.npy", "w+", np.float32, (N, T)),
            "labels": np.lib.format.open_memmap(out / "labels.npy", "w+", np.int8, (N, T)),
        }
        np.save(out / "nodes.npy", nodes.numpy())
    else:
        arrays = {k: np.load(out / f"{k}.npy", mmap_mode="r+")
                  for k in ("grads", "logits", "labels")}
    labels = data.y[nodes].to(torch.int8)
    lm = data.get("label_mask")
    if lm is not None:
        labels[~lm[nodes]] = -1
    # the factored path needs no head columns (and a shared-only projector has none)
    slabs = None if isinstance(projector, KroneckerProjector) else gm.head_slabs(projector)
    n_chunks = (N + chunk_size - 1) // chunk_size
    bar = tqdm(total=N, initial=min(done * chunk_size, N), unit="node", desc="gradients",
               disable=not progress)
    for c in range(done, n_chunks):
        gen = torch.Generator().manual_seed(seed * 1_000_003 + c)
        lo, hi = c * chunk_size, min((c + 1) * chunk_size, N)
        for s in range(lo, hi, batch_size):
            e = min(s + batch_size, hi)
            inp = gm.inputs(nodes[s:e], gen)
            g = gm.projected_gradients(inp, projector, strategy, head_slabs=slabs)
            arrays["grads"][s:e] = g.detach().cpu().numpy().astype(_DTYPES[dtype])
            arrays["logits"][s:e] = gm.logits(inp).cpu().numpy()
            bar.update(e - s)
        arrays["labels"][lo:hi] = labels[lo:hi].numpy()
        for a in arrays.values():
            a.flush()
        _write_json(ppath, {"chunks_done": c + 1})
    bar.close()
    del arrays
    _write_json(mpath, {**manifest, "complete": True})
    ppath.unlink(missing_ok=True)
    return GradientStore(out)

"""On-disk store of projected per-sample gradients, written in resumable chunks.

Layout of a store folder::

    manifest.json   what produced it (model hash, projector, sampling) and "complete"
    grads.npy       (N, T, d) projected gradients (float32 or float16), memory-mapped
    logits.npy      (N, T) float32 base-model logits on the same computation trees
    labels.npy      (N, T) int8 labels, -1 where unknown
    nodes.npy       (N,) int64 node ids
    progress_rank<r>.json   chunks written by rank r (absent once complete)

Each chunk's trees are sampled from its own seed (``seed * 1_000_003 + chunk``), so what a
chunk holds does not depend on when or by which process it is computed: a run resumed after
an interruption, or one sharded over ``torchrun`` ranks, writes exactly the bytes of an
uninterrupted single-process run. Under a process group (:mod:`graphtag.distributed`), rank 0
creates the files, then rank ``r`` computes chunks ``c`` with ``c % world == r`` and writes
them in place into the shared files; each rank records its chunks in its own progress file,
so a resume may use any number of processes. The manifest is marked complete (atomically, by
rename) only after every chunk is on disk; readers refuse an incomplete store, and a store
made by a different model or projector is refused with the keys that differ.
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

from graphtag._io import write_json as _write_json
from graphtag.distributed import (
    all_gather_object,
    get_rank,
    get_world_size,
    is_main,
    on_main,
    shard,
)
from graphtag.gradients.persample import GradientModel
from graphtag.projection import KroneckerProjector

__all__ = ["GradientStore", "StoreMismatchError", "collect_gradients", "model_fingerprint"]

_DTYPES = {"float32": np.float32, "float16": np.float16}
_ARRAYS = ("grads", "logits", "labels")


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
        Trained model whose weights sit in linear layers: :class:`~graphtag.models.MultitaskGNN`
        (any conv), :class:`~graphtag.models.SIGN`, or a user model
        (see :class:`~graphtag.gradients.GradientModel`; put in eval mode).
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

    Notes
    -----
    Under an initialised process group (e.g. launched by ``torchrun``), every rank must call
    this with the same arguments and an ``out_dir`` on a filesystem they all share: the
    chunks are split round robin over the ranks (see the module docstring) and every rank
    returns the finished store. The bytes equal those of a single-process run given the same
    intra-op thread count (``torchrun`` sets ``OMP_NUM_THREADS=1``; BLAS kernels may round
    differently with other thread counts).
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
    N, d = nodes.numel(), projector.out_dim
    T = gm.num_tasks if gm.num_tasks is not None else gm._num_tasks(gm.inputs(nodes[:1]))
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
        "fanouts": list(gm.fanouts) if gm.uses_graph else None,
        "seed": seed,
        "chunk_size": chunk_size,
        "nodes_sha256": hashlib.sha256(nodes.numpy().tobytes()).hexdigest(),
    }
    mpath = out / "manifest.json"
    n_chunks = (N + chunk_size - 1) // chunk_size

    def prepare() -> list[int] | None:
        """Rank 0: check the manifest, create the arrays if needed; the chunks already done
        (None: the store is complete)."""
        if mpath.exists():
            old = json.loads(mpath.read_text())
            diff = sorted(k for k in manifest if old.get(k) != manifest[k])
            if diff:
                raise StoreMismatchError(
                    f"{out}: an existing gradient store was made with other settings ({diff}); "
                    "use another folder, or delete this one to recollect."
                )
            if old.get("complete"):
                return None
        out.mkdir(parents=True, exist_ok=True)
        done = _chunks_done(out)
        if not done or not all((out / f"{k}.npy").exists() for k in _ARRAYS):
            _write_json(mpath, {**manifest, "complete": False})
            np.lib.format.open_memmap(out / "grads.npy", "w+", _DTYPES[dtype], (N, T, d))
            np.lib.format.open_memmap(out / "logits.npy", "w+", np.float32, (N, T))
            np.lib.format.open_memmap(out / "labels.npy", "w+", np.int8, (N, T))
            np.save(out / "nodes.npy", nodes.numpy())
            for f in _progress_files(out):
                f.unlink()
            done = []
        return done

    # rank 0 creates the files before anyone writes into them (on_main is also the barrier)
    done = on_main(prepare)
    if done is None:
        return GradientStore(out)
    rank, world = get_rank(), get_world_size()
    # chunk c belongs to rank c % world; chunks done by an earlier run (of any world size)
    # are skipped, so a resume may use a different number of processes
    todo = [c for c in shard(range(n_chunks), rank, world) if c not in set(done)]
    ppath = out / f"progress_rank{rank}.json"
    mine = json.loads(ppath.read_text())["chunks"] if ppath.exists() else []
    labels = data.y[nodes].to(torch.int8)
    lm = data.get("label_mask")
    if lm is not None:
        labels[~lm[nodes]] = -1
    # the factored path needs no head columns (and a shared-only projector has none)
    slabs = None if isinstance(projector, KroneckerProjector) else gm.head_slabs(projector)
    todo_nodes = sum(min((c + 1) * chunk_size, N) - c * chunk_size for c in todo)
    bar = tqdm(total=todo_nodes, unit="node", disable=not (progress and is_main()),
               desc="gradients" if world == 1 else f"gradients (rank 0 of {world})")
    writer = _RowWriter(out, _ARRAYS)
    try:
        for c in todo:
            gen = torch.Generator().manual_seed(seed * 1_000_003 + c)
            lo, hi = c * chunk_size, min((c + 1) * chunk_size, N)
            for s in range(lo, hi, batch_size):
                e = min(s + batch_size, hi)
                inp = gm.inputs(nodes[s:e], gen)
                g = gm.projected_gradients(inp, projector, strategy, head_slabs=slabs)
                writer.write("grads", s, g.detach().cpu().numpy())
                writer.write("logits", s, gm.logits(inp).cpu().numpy())
                bar.update(e - s)
            writer.write("labels", lo, labels[lo:hi].numpy())
            writer.sync()  # the chunk is on disk before progress says so
            mine.append(c)
            _write_json(ppath, {"chunks": sorted(mine)})
    finally:
        writer.close()
        bar.close()

    # what every rank wrote, through the process group rather than a directory listing
    # (a network filesystem may serve another node's listing from a stale cache)
    written = {c for part in all_gather_object(mine) for c in part} | set(done)

    def finish() -> None:
        missing = sorted(set(range(n_chunks)) - written)
        if missing:
            raise RuntimeError(f"{out}: chunks {missing[:10]} were not written.")
        _write_json(mpath, {**manifest, "complete": True})
        stale = [out / f"progress_rank{r}.json" for r in range(world)] + _progress_files(out)
        for f in stale:
            f.unlink(missing_ok=True)

    on_main(finish)
    return GradientStore(out)


def _progress_files(out: Path) -> list[Path]:
    return sorted(out.glob("progress_rank*.json")) + [
        f for f in [out / "progress.json"] if f.exists()]


def _chunks_done(out: Path) -> list[int]:
    """Chunks recorded as written by any rank of any earlier run."""
    done: set[int] = set()
    for f in _progress_files(out):
        rec = json.loads(f.read_text())
        if "chunks" in rec:
            done.update(rec["chunks"])
        else:  # a store begun by a single-process version: the first chunks_done chunks
            done.update(range(rec["chunks_done"]))
    return sorted(done)


class _RowWriter:
    """Writes row ranges of existing ``.npy`` files in place, with positional writes.

    Not a writable memory map: on a network filesystem, maps on different nodes write back
    whole pages, and a page straddling two ranks' chunks would be written back stale by one
    of them. ``pwrite`` sends only the bytes written.
    """

    def __init__(self, folder: Path, names: Sequence[str]) -> None:
        self._files: dict[str, tuple[int, int, int, np.dtype]] = {}
        for name in names:
            path = folder / f"{name}.npy"
            m = np.load(path, mmap_mode="r")
            row = int(m.dtype.itemsize * np.prod(m.shape[1:], dtype=np.int64))
            self._files[name] = (os.open(path, os.O_RDWR), int(m.offset), row, m.dtype)
            del m

    def write(self, name: str, row: int, values: np.ndarray) -> None:
        """Write ``values`` (rows ``row, row + 1, ...``) into array ``name``."""
        fd, offset, row_bytes, dtype = self._files[name]
        buf = memoryview(np.ascontiguousarray(values, dtype=dtype)).cast("B")
        pos = offset + row * row_bytes
        while buf:  # pwrite may write less than asked (very large buffers)
            n = os.pwrite(fd, buf, pos)
            buf, pos = buf[n:], pos + n

    def sync(self) -> None:
        for fd, *_ in self._files.values():
            os.fsync(fd)

    def close(self) -> None:
        for fd, *_ in self._files.values():
            os.close(fd)
        self._files.clear()

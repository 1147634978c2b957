"""Thin helpers around :mod:`torch.distributed` for running graphtag on several processes.

Every function is safe to call in a plain single process (no process group initialised):
the rank is 0, the world size 1, :func:`barrier` does nothing and :func:`broadcast_object`
returns its argument. Library code can therefore call them unconditionally, and behaves
exactly as before when it is not launched by ``torchrun``.

A multi-process run is launched by ``torchrun``, which sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_from_env` reads them and
initialises the default process group (NCCL for GPU tensors when CUDA is available, gloo
for CPU tensors).
See ``docs/distributed.md`` for what is sharded and how to run on a cluster.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import torch
import torch.distributed as dist

__all__ = [
    "all_gather_object",
    "barrier",
    "broadcast_object",
    "destroy",
    "get_local_rank",
    "get_rank",
    "get_world_size",
    "init_from_env",
    "is_distributed",
    "is_main",
    "main_first",
    "on_main",
    "shard",
    "solo",
]

T = TypeVar("T")

#: Collective timeout in minutes (env ``GRAPHTAG_DIST_TIMEOUT_MIN``). Long because some steps
#: run on rank 0 alone (grouping, the report) while the other ranks wait in a barrier; a
#: crashed rank does not leave the others hanging that long: torchrun stops the whole group.
DEFAULT_TIMEOUT_MIN = 240


_solo_depth = 0  # > 0 inside solo(): this process acts as if it were alone


def _initialized() -> bool:
    return _solo_depth == 0 and dist.is_available() and dist.is_initialized()


def is_distributed() -> bool:
    """Whether a process group with more than one rank is initialised (and in use)."""
    return _initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    """This process's rank (0 without a process group, or inside :func:`solo`)."""
    return dist.get_rank() if _initialized() else 0


def get_world_size() -> int:
    """Number of processes (1 without a process group, or inside :func:`solo`)."""
    return dist.get_world_size() if _initialized() else 1


@contextlib.contextmanager
def solo() -> Iterator[None]:
    """Within the block, every helper here behaves as in a single process (rank 0 of 1).

    For work one rank does alone (see :func:`on_main`): code inside that calls
    :func:`barrier` or trains a model must not wait for ranks that are not there.
    """
    global _solo_depth
    _solo_depth += 1
    try:
        yield
    finally:
        _solo_depth -= 1


def get_local_rank() -> int:
    """Rank within this node (``LOCAL_RANK``, set by torchrun; 0 otherwise)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """True on rank 0 (and in a single process): the rank that writes shared files."""
    return get_rank() == 0


def init_from_env(backend: str | None = None, timeout_min: float | None = None) -> bool:
    """Initialise the default process group from torchrun's environment variables.

    A no-op (returning False) when ``WORLD_SIZE`` is unset or 1, or when torch.distributed is
    unavailable; returns True when a process group is (or already was) initialised.

    Parameters
    ----------
    backend
        Any :func:`torch.distributed.init_process_group` backend. Default: ``gloo`` without
        CUDA; with CUDA ``"cpu:gloo,cuda:nccl"``, i.e. NCCL for GPU tensors and gloo for
        CPU ones (a run with ``device="cpu"`` on a GPU node still works). When NCCL is used
        the current CUDA device is set to ``LOCAL_RANK`` (one GPU per process).
    timeout_min
        Collective timeout in minutes (default ``GRAPHTAG_DIST_TIMEOUT_MIN`` or
        :data:`DEFAULT_TIMEOUT_MIN`).
    """
    if not dist.is_available():
        return False
    if dist.is_initialized():
        return True
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return False
    for key in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        if key not in os.environ:
            raise RuntimeError(f"WORLD_SIZE={world} but {key} is not set; launch with torchrun "
                               "(see docs/distributed.md).")
    if backend is None:
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    if "nccl" in backend:
        torch.cuda.set_device(get_local_rank())
    minutes = timeout_min if timeout_min is not None else float(
        os.environ.get("GRAPHTAG_DIST_TIMEOUT_MIN", DEFAULT_TIMEOUT_MIN))
    dist.init_process_group(backend, init_method="env://",
                            timeout=datetime.timedelta(minutes=minutes))
    return True


def destroy() -> None:
    """Tear down the default process group, if any."""
    if _initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if is_distributed():
        dist.barrier()


def shard(items: Sequence[T], rank: int | None = None, world: int | None = None) -> list[T]:
    """This rank's share of ``items``: every ``world``-th item from position ``rank``.

    Deterministic round robin: item ``i`` goes to rank ``i % world``, so the shares partition
    ``items`` and do not depend on anything but the order of ``items`` and ``world``.
    ``rank`` and ``world`` default to this process's.
    """
    rank = get_rank() if rank is None else int(rank)
    world = get_world_size() if world is None else int(world)
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"need 0 <= rank < world (got rank={rank}, world={world}).")
    return list(items[rank::world])


def broadcast_object(obj: T, src: int = 0) -> T:
    """``obj`` as rank ``src`` has it, on every rank (picklable objects only)."""
    if not is_distributed():
        return obj
    box = [obj if get_rank() == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_object(obj: T) -> list[T]:
    """Every rank's ``obj``, in rank order (``[obj]`` in a single process)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * get_world_size()
    dist.all_gather_object(out, obj)
    return out


def _portable(err: BaseException) -> BaseException:
    """``err`` if it survives pickling (to send it to the other ranks), else a RuntimeError."""
    try:
        pickle.loads(pickle.dumps(err))
    except Exception:  # an exception type with a custom constructor
        return RuntimeError(f"rank 0 failed: {type(err).__name__}: {err}")
    return err


def on_main(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only and return its result on every rank.

    Used for decisions and file writes that must happen once (manifests, reports). If ``fn``
    raises on rank 0, every rank raises the same exception (or a RuntimeError naming it),
    instead of the others waiting for a result that never comes.
    """
    if not is_distributed():
        return fn()
    res: tuple[bool, Any] = (True, None)
    err: BaseException | None = None
    if is_main():
        try:
            with solo():  # fn runs on rank 0 alone: no collectives inside
                res = (True, fn())
        except BaseException as e:  # re-raised below, after telling the others
            err = e
            res = (False, _portable(e))
    ok, value = broadcast_object(res)
    if err is not None:
        raise err
    if not ok:
        raise value
    return value


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Let rank 0 run the block before the other ranks (e.g. to build a shared cache).

    ::

        with main_first():
            data = load_dataset(...)   # rank 0 processes and caches, the others then read
    """
    if is_distributed() and not is_main():
        dist.barrier()
    try:
        yield
    finally:
        if is_distributed() and is_main():
            dist.barrier()

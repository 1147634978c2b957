"""How gradients meet across ranks in data-parallel training (:class:`~graphtag.training.Trainer`).

Each rank back-propagates its part of the global batch's loss (see
:mod:`graphtag.training.batching`), so the global batch's gradient is the *sum* of the ranks'
gradients. With a combiner that is linear in the per-task losses (the default
:class:`~graphtag.optim.EqualWeighting`) the model is wrapped in
:class:`~torch.nn.parallel.DistributedDataParallel` with a summing communication hook.
Other combiners compute their own gradients from the rank's local mean losses, which DDP's
hooks would not see; their gradients are averaged over the ranks afterwards.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from graphtag import distributed as gdist
from graphtag.optim.base import EqualWeighting, LossCombiner

__all__ = ["average_gradients", "sync_mode", "wrap_ddp"]


def sync_mode(distributed: bool | None, combiner: LossCombiner) -> str | None:
    """None (one process, or ``distributed=False``), ``"ddp"`` (summed by
    DistributedDataParallel) or ``"allreduce"`` (a combiner's own gradients, averaged)."""
    if distributed is False or not gdist.is_distributed():
        return None
    return "ddp" if type(combiner) is EqualWeighting else "allreduce"


def _sum_hook(state, bucket):  # no annotations: DDP checks them, and they would be strings
    """DDP communication hook: all-reduce a bucket as a sum (the default one averages)."""
    fut = dist.all_reduce(bucket.buffer(), async_op=True).get_future()
    return fut.then(lambda f: f.value()[0])


def wrap_ddp(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in DistributedDataParallel whose gradients are the sum over the ranks."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None
           else torch.cuda.current_device()] if device.type == "cuda" else None
    net = DistributedDataParallel(model, device_ids=ids)
    net.register_comm_hook(None, _sum_hook)
    return net


def average_gradients(model: nn.Module) -> None:
    """Average ``.grad`` over the ranks (distributed training without DDP's hooks)."""
    params = list(model.parameters())
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                      for p in params])
    dist.all_reduce(flat)
    flat /= gdist.get_world_size()
    pos = 0
    for p in params:
        n = p.numel()
        p.grad = flat[pos : pos + n].view_as(p).clone()
        pos += n

"""Gather and scatter with vectorising rules of their own, and the context that routes the
gathers and sum/mean aggregations of PyG message-passing layers through them (see
:mod:`graphtag.gradients.hooks`)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class _Gather(torch.autograd.Function):
    """``src.index_select(dim, index)``, differentiable, with a vectorising rule of its own:
    under ``vmap`` (over cotangents) it is one ``index_select`` of the batched tensor, where
    the built-in rules gather with the index broadcast to the signal's full size (one more
    pass over it, and a copy of the index). Its backward is :class:`_Scatter`."""

    @staticmethod
    def forward(src: Tensor, index: Tensor, dim: int) -> Tensor:
        return src.index_select(dim, index)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        src, index, dim = inputs
        ctx.save_for_backward(index)
        ctx.dim, ctx.n, ctx.index = dim, src.shape[dim], index

    @staticmethod
    def jvp(ctx, tangent: Tensor, _index, _dim) -> Tensor:
        return tangent.index_select(ctx.dim, ctx.index)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (index,) = ctx.saved_tensors
        return _Scatter.apply(grad, index, ctx.dim, ctx.n), None, None

    @staticmethod
    def vmap(info, in_dims, src: Tensor, index: Tensor, dim: int):
        if in_dims[1] is not None:
            raise NotImplementedError("a batched gather index")
        if in_dims[0] is None:
            return src.index_select(dim, index), None
        return src.movedim(in_dims[0], 0).index_select(dim + 1, index), 0


class _Scatter(torch.autograd.Function):
    """``zeros(dim_size).index_add_(dim, index, src)`` (PyG's sum aggregation, and the
    backward of :class:`_Gather`), differentiable, with a vectorising rule of its own (one
    ``index_add_`` of the batched tensor). Its backward is :class:`_Gather`."""

    @staticmethod
    def forward(src: Tensor, index: Tensor, dim: int, dim_size: int) -> Tensor:
        shape = list(src.shape)
        shape[dim] = dim_size
        return src.new_zeros(shape).index_add_(dim, index, src)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        _src, index, dim, dim_size = inputs
        ctx.save_for_backward(index)
        ctx.dim, ctx.n, ctx.index = dim, dim_size, index

    @staticmethod
    def jvp(ctx, tangent: Tensor, _index, _dim, _size) -> Tensor:
        shape = list(tangent.shape)
        shape[ctx.dim] = ctx.n
        return tangent.new_zeros(shape).index_add_(ctx.dim, ctx.index, tangent)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (index,) = ctx.saved_tensors
        return _Gather.apply(grad, index, ctx.dim), None, None, None

    @staticmethod
    def vmap(info, in_dims, src: Tensor, index: Tensor, dim: int, dim_size: int):
        if in_dims[1] is not None:
            raise NotImplementedError("a batched scatter index")
        if in_dims[0] is None:
            return _Scatter.forward(src, index, dim, dim_size), None
        return _Scatter.forward(src.movedim(in_dims[0], 0), index, dim + 1, dim_size), 0


def _is_arange(index: Tensor, n: int) -> bool:
    """Whether ``index`` is ``0, 1, ..., n - 1`` (every source row gathered once, in order:
    a batch of trees without placeholder children)."""
    return index.numel() == n and (n == 0 or (int(index[0]) == 0 and int(index[-1]) == n - 1
                                              and bool((index.diff() == 1).all())))


class _FastGather:
    """Within this context the message-passing layers of ``model`` gather ``x_j`` with
    :class:`_Gather` (the same values, a backward that is vectorised over cotangents; no
    gather at all when every source row is gathered once, in order) and their sum and mean
    aggregations scatter with :class:`_Scatter`."""

    def __init__(self, model: nn.Module) -> None:
        try:
            from torch_geometric.nn.aggr import MeanAggregation, SumAggregation
            from torch_geometric.nn.conv import MessagePassing
        except ImportError:  # pragma: no cover
            MessagePassing, MeanAggregation, SumAggregation = (), (), ()
        self.layers = [m for m in model.modules() if isinstance(m, MessagePassing)
                       and hasattr(m, "_index_select") and "_index_select" not in vars(m)]
        self.aggrs = [a for m in self.layers
                      if type(a := getattr(m, "aggr_module", None)) in (SumAggregation,
                                                                        MeanAggregation)
                      and "reduce" not in vars(a)]

    def __enter__(self) -> _FastGather:
        for m in self.layers:
            def gather(src: Tensor, index: Tensor, m=m) -> Tensor:
                dim = m.node_dim % src.dim()
                if _is_arange(index, src.shape[dim]):
                    return src
                if not (src.requires_grad and torch.is_grad_enabled()):
                    return src.index_select(dim, index)  # a constant (raw features)
                return _Gather.apply(src, index, dim)
            m._index_select = gather
        for a in self.aggrs:
            a.reduce = _fast_reduce.__get__(a)
        return self

    def __exit__(self, *exc) -> None:
        for m in self.layers:
            vars(m).pop("_index_select", None)
        for a in self.aggrs:
            vars(a).pop("reduce", None)


def _fast_reduce(self, x: Tensor, index: Tensor | None = None, ptr: Tensor | None = None,
                 dim_size: int | None = None, dim: int = -2, reduce: str = "sum") -> Tensor:
    """``Aggregation.reduce`` for sums and means over an edge index with :class:`_Scatter`
    (anything else: PyG's own)."""
    if ptr is not None or index is None or reduce not in ("sum", "add", "mean") \
            or index.dim() != 1:
        return type(self).reduce(self, x, index, ptr, dim_size, dim, reduce)
    dim = dim % x.dim()
    if dim_size is None:
        dim_size = int(index.max()) + 1 if index.numel() else 0
    if x.requires_grad and torch.is_grad_enabled():
        out = _Scatter.apply(x, index, dim, dim_size)
    else:  # a constant (aggregated raw features)
        out = _Scatter.forward(x, index, dim, dim_size)
    if reduce == "mean":
        count = x.new_zeros(dim_size).index_add_(0, index, x.new_ones(index.numel()))
        shape = [1] * out.dim()
        shape[dim] = dim_size
        out = out / count.clamp(min=1).view(shape)
    return out

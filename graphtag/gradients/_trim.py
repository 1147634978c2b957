"""Trimming: message-passing layers of a graph model cut to the tree levels they still need
(used by :func:`graphtag.gradients.hooks.capture_factors` where the trimmed forward gives the
untrimmed logits)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from graphtag.gradients._layout import RowBatch, _prefix_sizes


def _message_passing_layers(model: nn.Module) -> list[nn.Module]:
    """Top-level PyG ``MessagePassing`` modules (not nested in another one)."""
    try:
        from torch_geometric.nn.conv import MessagePassing
    except ImportError:  # pragma: no cover
        return []
    out: list[nn.Module] = []

    def walk(m: nn.Module) -> None:
        for c in m.children():
            if isinstance(c, MessagePassing):
                out.append(c)
            else:
                walk(c)
    walk(model)
    return out


class _Trimmer:
    """Hooks cutting the ``k``-th message-passing call of an ``L``-layer model to the levels
    it still needs: edges into levels ``0..L-1-k``, output rows of levels ``0..L-1-k``.

    ``mode="pair"`` calls the layer bipartite, ``(x[:n_in], x[:n_out])`` (SAGE, GIN, ...:
    nothing is computed for the rows dropped); ``mode="slice"`` gives it ``x[:n_in]`` and
    slices its output (for layers that take one node set)."""

    def __init__(self, layers: Sequence[nn.Module], batch: RowBatch, mode: str = "pair"
                 ) -> None:
        self.layers, self.batch, self.mode = list(layers), batch, mode
        self.calls = 0
        self.handles: list = []

    def __enter__(self) -> _Trimmer:
        for m in self.layers:
            self.handles.append(m.register_forward_pre_hook(self._pre, with_kwargs=True))
            if self.mode == "slice":
                self.handles.append(m.register_forward_hook(self._post))
        return self

    def __exit__(self, *exc) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()

    def _keep(self, k: int) -> tuple[int, int]:
        sizes = self.batch.level_sizes
        L = len(sizes) - 1
        n_in = sum(sizes[: max(L - k, 0) + 1])
        n_out = sum(sizes[: max(L - 1 - k, 0) + 1])
        return n_in, n_out

    def _pre(self, module, args, kwargs):
        k = self.calls
        self.calls += 1
        if len(args) < 2 or not isinstance(args[0], Tensor) or not isinstance(args[1], Tensor):
            raise _TrimError("message-passing layer not called as (x, edge_index, ...)")
        x, ei = args[0], args[1]
        if x.shape[0] not in _prefix_sizes(self.batch):
            raise _TrimError("unexpected row count")
        if ei.shape[1] != self.batch.edge_level.numel():
            raise _TrimError("edge_index is not the batch's")
        n_in, n_out = self._keep(k)
        if x.shape[0] < n_in:
            raise _TrimError("fewer rows than the layer needs")
        L = len(self.batch.level_sizes) - 1
        ei = ei[:, self.batch.edge_level <= L - 1 - k]
        x_in = x if x.shape[0] == n_in else x[:n_in]  # (a no-op slice costs a backward copy)
        if self.mode == "pair":
            if n_out < n_in and ei.shape[1] and int(ei[0].min()) >= n_out:
                # sources and targets are disjoint row ranges: split, whose backward is one
                # concatenation (two slices would each pad to full size, then be added)
                x_dst, x_src = x_in.split([n_out, n_in - n_out])
                ei = torch.stack([ei[0] - n_out, ei[1]])
                return ((x_src, x_dst), ei, *args[2:]), kwargs
            return ((x_in, x[:n_out]), ei, *args[2:]), kwargs
        return (x_in, ei, *args[2:]), kwargs

    def _post(self, module, args, out):
        _, n_out = self._keep(self.calls - 1)
        if not isinstance(out, Tensor):
            raise _TrimError("message-passing layer returned no tensor")
        return out[:n_out]


class _TrimError(RuntimeError):
    pass

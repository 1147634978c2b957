"""Kronecker-factored sparse JL projection for parameter-shaped inputs.

A gradient lives in a list of parameter blocks (weight matrices, bias vectors). For a weight
block ``G`` of shape ``(o, i)`` this projector uses two independent sparse JL maps
``L: R^o -> R^d1`` and ``R: R^i -> R^d2`` (:class:`~graphtag.projection.SparseProjector`,
hashed, never stored) and maps ``G`` to ``vec(L G R^T)`` in ``R^(d1 d2)``, ``d1 d2 = d``; other
blocks get a plain sparse JL map into ``R^d``. The block sketches are summed. In matrix form this
is a sparse JL matrix whose weight-block columns are Kronecker products ``R_c (x) L_r``, with
``E ||P g||^2 = ||g||^2`` like any JL map, and the sketch of every block is a linear function
of its coordinates, so projections of blocks add up (the same contract as ``SparseProjector``).

Why: per-sample gradients of a linear layer are sums of outer products ``delta a^T`` over the
nodes of a computation tree. With this factorisation
``P vec(delta a^T) = vec((L delta)(R a)^T)`` costs ``O((o + i) s + d)`` instead of the
``O(o i s)`` of projecting the materialised ``o x i`` gradient (the same idea as LoGra's
Kronecker-structured gradient projection, Choe et al. 2024). That is what makes per-sample
gradients of hundreds of tasks cheap (:mod:`graphtag.gradients`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from graphtag.projection.sparse import SparseProjector

__all__ = ["KroneckerProjector", "split_dim"]


def split_dim(d: int) -> tuple[int, int]:
    """``(d1, d2)`` with ``d1 * d2 = d`` and ``d1 <= d2`` as close as possible."""
    d1 = max(k for k in range(1, math.isqrt(d) + 1) if d % k == 0)
    return d1, d // d1


def _seed(seed: int, block: int, part: int) -> int:
    return (seed * 1_000_003 + 7 * block + part) % (1 << 62)


class KroneckerProjector:
    """Sparse JL projection of parameter blocks with Kronecker-factored weight blocks.

    Parameters
    ----------
    shapes
        Shapes of the parameter blocks in flattening order (e.g.
        ``[p.shape for p in model.parameters()]``); ``in_dim`` is their total size.
    out_dim
        Sketch dimension ``d``; its most balanced factorisation ``d1 x d2`` must have
        ``d1 >= 4`` (use e.g. 256, 400, 512, 1024).
    nnz
        Nonzeros per column of each factor (capped at the factor's size).
    seed
        Defines the matrix.
    backend
        Passed to the underlying :class:`SparseProjector` maps.

    Attributes
    ----------
    in_dim, out_dim, nnz, seed
        As given.
    offsets
        Flattened offset of each block.
    """

    def __init__(self, shapes: Sequence[Sequence[int]], out_dim: int, nnz: int = 4,
                 seed: int = 0, backend: str = "auto") -> None:
        if out_dim < 1:
            raise ValueError(f"out_dim must be >= 1 (got {out_dim}).")
        self.shapes = [tuple(int(s) for s in sh) for sh in shapes]
        if not self.shapes:
            raise ValueError("shapes must list at least one parameter block.")
        self.out_dim, self.nnz, self.seed = int(out_dim), int(nnz), int(seed)
        self.d1, self.d2 = split_dim(self.out_dim)
        if self.d1 < 4:
            raise ValueError(
                f"out_dim={out_dim} factors as {self.d1} x {self.d2}; choose an out_dim with a "
                "balanced factorisation (e.g. 256 = 16 x 16, 400, 512, 1024)."
            )
        self.offsets, off = [], 0
        self._maps: list[tuple[SparseProjector, ...]] = []
        for b, sh in enumerate(self.shapes):
            numel = math.prod(sh)
            self.offsets.append(off)
            off += numel
            if len(sh) == 2 and min(sh) > 1:
                self._maps.append((
                    SparseProjector(sh[0], self.d1, min(nnz, self.d1), _seed(seed, b, 0), backend),
                    SparseProjector(sh[1], self.d2, min(nnz, self.d2), _seed(seed, b, 1), backend),
                ))
            else:
                self._maps.append((SparseProjector(numel, self.out_dim, min(nnz, self.out_dim),
                                                   _seed(seed, b, 2), backend),))
        self.in_dim = off

    def __repr__(self) -> str:
        return (f"KroneckerProjector(blocks={len(self.shapes)}, in_dim={self.in_dim}, "
                f"out_dim={self.out_dim} = {self.d1} x {self.d2}, nnz={self.nnz}, "
                f"seed={self.seed})")

    def is_factored(self, block: int) -> bool:
        return len(self._maps[block]) == 2

    # ------------------------------------------------------------ structured
    def project_outer(self, block: int, delta: Tensor, act: Tensor) -> Tensor:
        """Sketch of ``sum_n delta[b, r, n, :] (x) act[b, n, :]`` for weight block ``block``.

        Parameters
        ----------
        delta
            ``(B, R, n, o)``: for ``B`` samples and ``R`` outputs each, the back-propagated
            signal at the layer's output for ``n`` applications of the layer (tree nodes).
        act
            ``(B, n, i)``: the layer's inputs at those applications.

        Returns
        -------
        torch.Tensor
            ``(B, R, d)``, equal to projecting the materialised ``(o, i)`` gradients
            ``sum_n delta_n act_n^T``, at ``O(n ((o + i) s + d))`` per output instead of
            ``O(o i s)``.
        """
        if not self.is_factored(block):
            raise ValueError(f"block {block} of shape {self.shapes[block]} is not a matrix.")
        left, right = self._maps[block]
        B, R, n, o = delta.shape
        ld = left.project(delta.reshape(B * R * n, o)).reshape(B, R, n, self.d1)
        ra = right.project(act.reshape(B * n, act.shape[-1])).reshape(B, n, self.d2)
        return torch.einsum("brna,bnc->brac", ld, ra).reshape(B, R, self.out_dim)

    def project_outer_rows(self, block: int, delta: Tensor, act: Tensor,
                           sizes: Sequence[int]) -> Tensor:
        """:meth:`project_outer` for signals laid out as a reverse pass over a batch gives them.

        Parameters
        ----------
        delta
            ``(R, N, o)``: for ``R`` outputs, the back-propagated signal at the layer's output
            rows. Consecutive groups of rows hold ``sizes[g]`` rows of each of ``B`` samples,
            sample-major (``B * sizes[g]`` rows; ``N = B * sum(sizes)``). A contiguous
            ``delta`` is projected in place, without the copy that transposing it to
            :meth:`project_outer`'s ``(B, R, n, o)`` would take.
        act
            ``(N, i)``: the layer's inputs at those rows.
        sizes
            Rows per sample in each group.

        Returns
        -------
        torch.Tensor
            ``(B, R, d)``, the sketch of ``sum_rows delta_row act_row^T`` over each sample's
            rows: :meth:`project_outer` of each group, summed.
        """
        if not self.is_factored(block):
            raise ValueError(f"block {block} of shape {self.shapes[block]} is not a matrix.")
        R, N, o = delta.shape
        per = sum(sizes)
        if per < 1 or N % per or act.shape[0] != N:
            raise ValueError(f"{N} rows of delta and {act.shape[0]} of act do not split into "
                             f"samples of {list(sizes)} rows per group.")
        B = N // per
        left, right = self._maps[block]
        ld = left.project(delta.reshape(R * N, o)).view(R, N, self.d1)
        ra = right.project(act.reshape(N, act.shape[-1])).view(N, self.d2)
        out, s = None, 0
        for n in sizes:
            e = s + B * n
            part = torch.einsum("rbna,bnc->brac", ld[:, s:e].view(R, B, n, self.d1),
                                ra[s:e].view(B, n, self.d2))
            out = part if out is None else out.add_(part)
            s = e
        return out.reshape(B, R, self.out_dim)

    def project_block(self, block: int, x: Tensor) -> Tensor:
        """Sketch ``(N, d)`` of ``N`` whole values ``(N, *shape)`` of block ``block``."""
        sh = self.shapes[block]
        N = x.shape[0]
        maps = self._maps[block]
        if len(maps) == 1:
            return maps[0].project(x.reshape(N, -1))
        left, right = maps
        o, i = sh
        y = left.project(x.reshape(N, o, i).transpose(1, 2).reshape(N * i, o))  # (N i, d1)
        y = y.reshape(N, i, self.d1).transpose(1, 2).reshape(N * self.d1, i)
        return right.project(y).reshape(N, self.out_dim)

    def transpose_block(self, block: int, y: Tensor) -> Tensor:
        """Adjoint of :meth:`project_block`: ``(N, d) -> (N, *shape)``."""
        N = y.shape[0]
        maps = self._maps[block]
        if len(maps) == 1:
            return maps[0].transpose(y).reshape(N, *self.shapes[block])
        left, right = maps
        o, i = self.shapes[block]
        z = right.transpose(y.reshape(N * self.d1, self.d2))  # (N d1, i)
        z = z.reshape(N, self.d1, i).transpose(1, 2).reshape(N * i, self.d1)
        return left.transpose(z).reshape(N, i, o).transpose(1, 2)

    # -------------------------------------------- flat interface (any chunk)
    def _check(self, t: Tensor, name: str) -> tuple[Tensor, bool]:
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"{name} must be float32 or float64, got {t.dtype}")
        if t.dim() == 1:
            return t.unsqueeze(0), True
        if t.dim() != 2:
            raise ValueError(f"{name} must be 1-D or 2-D, got shape {tuple(t.shape)}")
        return t, False

    def project(self, x: Tensor, offset: int = 0) -> Tensor:
        """Project coordinates ``offset .. offset + c - 1`` of flattened parameters.

        Chunks that cut a weight block are zero-padded to the whole block (projections of
        chunks still add up to the projection of the whole vector).
        """
        x2, squeeze = self._check(x, "x")
        N, c = x2.shape
        if offset < 0 or offset + c > self.in_dim:
            raise ValueError(f"chunk [{offset}, {offset + c}) exceeds in_dim={self.in_dim}")
        out = x2.new_zeros(N, self.out_dim)
        for b, sh in enumerate(self.shapes):
            lo, n = self.offsets[b], math.prod(sh)
            a, z = max(lo, offset), min(lo + n, offset + c)
            if a >= z:
                continue
            part = x2[:, a - offset : z - offset]
            if z - a < n:
                full = x2.new_zeros(N, n)
                full[:, a - lo : z - lo] = part
                part = full
            out += self.project_block(b, part)
        return out.squeeze(0) if squeeze else out

    def transpose(self, y: Tensor, offset: int = 0, length: int | None = None) -> Tensor:
        """Adjoint ``P^T`` restricted to coordinates ``offset .. offset + length - 1``."""
        y2, squeeze = self._check(y, "y")
        if y2.shape[1] != self.out_dim:
            raise ValueError(f"y must have out_dim={self.out_dim} columns, got {y2.shape[1]}")
        length = self.in_dim - offset if length is None else length
        if offset < 0 or length < 0 or offset + length > self.in_dim:
            raise ValueError(f"chunk [{offset}, {offset + length}) exceeds in_dim={self.in_dim}")
        N = y2.shape[0]
        out = y2.new_zeros(N, length)
        for b, sh in enumerate(self.shapes):
            lo, n = self.offsets[b], math.prod(sh)
            a, z = max(lo, offset), min(lo + n, offset + length)
            if a >= z:
                continue
            full = self.transpose_block(b, y2).reshape(N, n)
            out[:, a - offset : z - offset] = full[:, a - lo : z - lo]
        return out.squeeze(0) if squeeze else out

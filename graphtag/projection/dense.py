"""Dense random projection: the baseline the sparse projector is measured against.

The ``in_dim x out_dim`` matrix is generated block by block of coordinates, each block from its
own ``torch.Generator`` seeded by ``(seed, block index)``, so a coordinate chunk can be
projected without building the whole matrix, and every chunk sees the same entries however the
input is split.
"""

from __future__ import annotations

import math

import torch

from graphtag.projection import reference
from graphtag.projection.sparse import _check_int, _ChunkedProjector

__all__ = ["DenseProjector"]

KINDS = ("rademacher", "gaussian")


class DenseProjector(_ChunkedProjector):
    """Dense JL projection with i.i.d. ``±1/sqrt(d)`` (Rademacher) or ``N(0, 1/d)`` entries.

    Parameters
    ----------
    in_dim : int
        Number of input coordinates ``p``.
    out_dim : int
        Sketch dimension ``d``.
    kind : {"rademacher", "gaussian"}, default "rademacher"
        Entry distribution.
    seed : int, default 0
        Defines the matrix.
    block : int, default 4096
        Coordinates per generator block. Part of the matrix definition: the same seed with a
        different ``block`` gives a different matrix.

    Notes
    -----
    Entries are drawn in float32 on the CPU (so every device and dtype sees the same matrix)
    and cast to the input's dtype and device. Cost per call is ``O(c d)`` generation plus the
    ``O(n c d)`` matmul; memory ``O(block d + n d)``.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        kind: str = "rademacher",
        seed: int = 0,
        block: int = 4096,
    ) -> None:
        self.in_dim = _check_int("in_dim", in_dim, 1)
        self.out_dim = _check_int("out_dim", out_dim, 1)
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        self.seed = seed
        self.block = _check_int("block", block, 1)
        self.key_a, self.key_b = reference.seed_keys(seed)
        self.backend = "dense"

    def __repr__(self) -> str:
        return (
            f"DenseProjector(in_dim={self.in_dim}, out_dim={self.out_dim}, kind={self.kind!r}, "
            f"seed={self.seed}, block={self.block})"
        )

    def _block_seed(self, b: int) -> int:
        # Hash (seed, block) so neighbouring blocks and seeds get unrelated generator streams.
        lo = reference.mix32_int(self.key_a ^ reference.mix32_int(b & reference.MASK32))
        hi = reference.mix32_int(self.key_b ^ reference.mix32_int((b >> 32) ^ lo))
        return (hi << 32 | lo) & ((1 << 63) - 1)

    def block_matrix(self, b: int) -> torch.Tensor:
        """Rows of coordinates ``b * block .. (b + 1) * block - 1`` (fewer for the last block).

        Parameters
        ----------
        b : int
            Block index, ``0 <= b < ceil(in_dim / block)``.

        Returns
        -------
        torch.Tensor
            float32 CPU tensor of shape ``(rows, out_dim)``.
        """
        rows = min(self.block, self.in_dim - b * self.block)
        if rows <= 0 or b < 0:
            raise ValueError(f"block index {b} is out of range for in_dim {self.in_dim}")
        gen = torch.Generator().manual_seed(self._block_seed(b))
        scale = 1.0 / math.sqrt(self.out_dim)
        if self.kind == "gaussian":
            return torch.randn((rows, self.out_dim), generator=gen).mul_(scale)
        bits = torch.randint(0, 2, (rows, self.out_dim), generator=gen, dtype=torch.int8)
        return bits.to(torch.float32).mul_(2 * scale).sub_(scale)

    def _pieces(self, offset: int, length: int):
        """Yield ``(start_in_chunk, rows_of_R)`` covering coordinates offset..offset+length-1."""
        pos = offset
        end = offset + length
        while pos < end:
            b = pos // self.block
            first = b * self.block
            stop = min(end, first + self.block)
            yield pos - offset, self.block_matrix(b)[pos - first : stop - first]
            pos = stop

    def project(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """Project coordinates ``offset .. offset + c - 1`` of each sample: ``x @ R[chunk]``.

        Parameters
        ----------
        x : torch.Tensor
            ``(n, c)`` or ``(c,)``, float32 or float64.
        offset : int, default 0
            Global index of ``x``'s first coordinate.

        Returns
        -------
        torch.Tensor
            ``(n, out_dim)`` (or ``(out_dim,)``), same dtype and device as ``x``.
        """
        x2, squeeze, off = self._check_project(x, offset)
        out = torch.zeros((x2.shape[0], self.out_dim), dtype=x2.dtype, device=x2.device)
        for start, r in self._pieces(off, x2.shape[1]):
            r = r.to(dtype=x2.dtype, device=x2.device)
            out.addmm_(x2[:, start : start + r.shape[0]], r)
        return out.squeeze(0) if squeeze else out

    def transpose(
        self, y: torch.Tensor, offset: int = 0, length: int | None = None
    ) -> torch.Tensor:
        """Adjoint restricted to coordinates ``offset .. offset + length - 1``: ``y @ R[chunk].T``.

        Parameters
        ----------
        y : torch.Tensor
            ``(n, out_dim)`` or ``(out_dim,)``, float32 or float64.
        offset : int, default 0
            First coordinate of the chunk.
        length : int, optional
            Chunk length; default ``in_dim - offset``.

        Returns
        -------
        torch.Tensor
            ``(n, length)`` (or ``(length,)``), same dtype and device as ``y``.
        """
        y2, squeeze, off, n_coords = self._check_transpose(y, offset, length)
        parts = [
            y2 @ r.to(dtype=y2.dtype, device=y2.device).T for _, r in self._pieces(off, n_coords)
        ]
        if parts:
            out = torch.cat(parts, dim=1)
        else:
            out = y2.new_zeros((y2.shape[0], 0))
        return out.squeeze(0) if squeeze else out

    def materialize(
        self, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """The whole ``(in_dim, out_dim)`` matrix (``in_dim * out_dim`` elements of memory).

        Parameters
        ----------
        dtype : torch.dtype, default torch.float32
            Result dtype.
        device : torch.device or str, optional
            Result device (default CPU).

        Returns
        -------
        torch.Tensor
            ``R`` such that ``project(x) == x @ R``.
        """
        out = torch.empty((self.in_dim, self.out_dim), dtype=dtype, device=device)
        for start, r in self._pieces(0, self.in_dim):
            out[start : start + r.shape[0]] = r
        return out

"""Pure-torch reference of the sparse JL projection and the hash that defines its matrix.

This is the ground truth the compiled backends (``csrc/sjlt_cpu.cpp``, ``csrc/sjlt_cuda_kernel.cu``)
are tested against, and the fallback when neither is available. The hash is mirrored from
``csrc/sjlt_hash.h`` in torch int64 arithmetic: every value is kept below 2**32 and every
multiplier below 2**31, so no product reaches 2**63 and masking with ``0xFFFFFFFF`` reproduces
the uint32 wrap-around of C++/CUDA exactly (torch has no usable uint64 arithmetic, and int64
overflow in torch is undefined behaviour we must not rely on).

Matrix definition (``d = out_dim``, ``s = nnz``): the rows are split into ``s`` contiguous blocks,
block ``k`` covering ``[k d // s, (k + 1) d // s)``. Coordinate ``j`` gets one row in each block,
chosen by ``h_k = entry_hash(j, k)``, with value ``±1/sqrt(s)`` (minus when ``h_k`` is odd).
"""

from __future__ import annotations

import itertools
import math

import torch

MASK32 = 0xFFFFFFFF
MUL1 = 0x21F0AAAD
MUL2 = 0x735A2D97
GAMMA = 0x9E3779B9
HI_MUL = 0x2545F491
# Salts that separate the two key lanes derived from the seed.
SALT_A = 0x243F6A88
SALT_B = 0x85A308D3


def mix32(x: torch.Tensor) -> torch.Tensor:
    """Apply the 32-bit finaliser elementwise (a bijection of ``[0, 2**32)``).

    Parameters
    ----------
    x : torch.Tensor
        int64 tensor with values in ``[0, 2**32)``.

    Returns
    -------
    torch.Tensor
        int64 tensor with values in ``[0, 2**32)``.
    """
    x = x ^ (x >> 16)
    x = (x * MUL1) & MASK32
    x = x ^ (x >> 15)
    x = (x * MUL2) & MASK32
    return x ^ (x >> 15)


def mix32_int(x: int) -> int:
    """Python-int version of :func:`mix32` (used to derive the keys from the seed)."""
    x &= MASK32
    x ^= x >> 16
    x = (x * MUL1) & MASK32
    x ^= x >> 15
    x = (x * MUL2) & MASK32
    return x ^ (x >> 15)


def seed_keys(seed: int) -> tuple[int, int]:
    """Derive the two 32-bit key lanes from a seed.

    The map from ``seed mod 2**64`` to ``(key_a, key_b)`` is a bijection, so distinct seeds in
    ``[0, 2**64)`` always give distinct matrices' keys.

    Parameters
    ----------
    seed : int
        Any Python int; only its value modulo ``2**64`` matters.

    Returns
    -------
    tuple of int
        ``(key_a, key_b)``, each in ``[0, 2**32)``.
    """
    seed &= (1 << 64) - 1
    lo, hi = seed & MASK32, seed >> 32
    key_a = mix32_int(lo ^ SALT_A)
    key_b = mix32_int(mix32_int(lo ^ SALT_B) ^ hi)
    return key_a, key_b


def block_bounds(out_dim: int, nnz: int) -> tuple[list[int], list[int]]:
    """First row and size of each of the ``nnz`` row blocks.

    Parameters
    ----------
    out_dim, nnz : int
        Output dimension ``d`` and nonzeros per column ``s`` (``1 <= s <= d``).

    Returns
    -------
    tuple of list of int
        ``(starts, sizes)``, each of length ``nnz``; every size is ``d // s`` or ``d // s + 1``.
    """
    starts = [k * out_dim // nnz for k in range(nnz + 1)]
    return starts[:-1], [b - a for a, b in itertools.pairwise(starts)]


def rows_and_signs(
    offset: int, count: int, out_dim: int, nnz: int, key_a: int, key_b: int, device=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows and signs of coordinates ``offset .. offset + count - 1``.

    Parameters
    ----------
    offset, count : int
        First global coordinate index and number of coordinates.
    out_dim, nnz : int
        Output dimension and nonzeros per column.
    key_a, key_b : int
        Key lanes from :func:`seed_keys`.
    device : torch.device or str, optional
        Where to build the result (default CPU).

    Returns
    -------
    rows : torch.Tensor
        int64, shape ``(count, nnz)``; ``rows[j, k]`` lies in block ``k``.
    signs : torch.Tensor
        int8, shape ``(count, nnz)``, entries ``±1``.
    """
    j = torch.arange(offset, offset + count, dtype=torch.int64, device=device)
    lo = j & MASK32
    hi = j >> 32  # j < 2**63, so hi < 2**31 and hi * HI_MUL < 2**62
    c1 = mix32(lo ^ key_a)
    c2 = mix32(lo ^ key_b ^ ((hi * HI_MUL) & MASK32))
    starts, sizes = block_bounds(out_dim, nnz)
    rows = torch.empty((count, nnz), dtype=torch.int64, device=device)
    signs = torch.empty((count, nnz), dtype=torch.int8, device=device)
    for k in range(nnz):
        gamma_k = ((k + 1) * GAMMA) & MASK32
        h = mix32(c1 ^ ((c2 + gamma_k) & MASK32))
        # Multiply-shift: h < 2**32 and sizes[k] < 2**31, so the product fits in int64.
        rows[:, k] = starts[k] + ((h * sizes[k]) >> 32)
        signs[:, k] = (1 - 2 * (h & 1)).to(torch.int8)
    return rows, signs


# Coordinates per step of the reference kernels: bounds the (n, chunk, nnz) temporaries.
_CHUNK = 1 << 14


def project(
    x: torch.Tensor, offset: int, out_dim: int, nnz: int, key_a: int, key_b: int
) -> torch.Tensor:
    """Project a coordinate chunk: ``out[i, rows[j, k]] += signs[j, k] / sqrt(nnz) * x[i, j]``.

    Parameters
    ----------
    x : torch.Tensor
        Shape ``(n, c)``, floating, holding coordinates ``offset .. offset + c - 1``.
    offset, out_dim, nnz, key_a, key_b : int
        As in :func:`rows_and_signs`.

    Returns
    -------
    torch.Tensor
        Shape ``(n, out_dim)``, same dtype and device as ``x``.
    """
    n, c = x.shape
    out = torch.zeros((n, out_dim), dtype=x.dtype, device=x.device)
    scale = 1.0 / math.sqrt(nnz)
    for j0 in range(0, c, _CHUNK):
        m = min(_CHUNK, c - j0)
        rows, signs = rows_and_signs(offset + j0, m, out_dim, nnz, key_a, key_b, x.device)
        vals = signs.to(x.dtype) * scale
        contrib = x[:, j0 : j0 + m, None] * vals  # (n, m, nnz)
        out.index_add_(1, rows.reshape(-1), contrib.reshape(n, m * nnz))
    return out


def transpose(
    y: torch.Tensor, offset: int, length: int, nnz: int, key_a: int, key_b: int
) -> torch.Tensor:
    """Adjoint on a chunk: ``out[i, j] = sum_k signs[j, k] / sqrt(nnz) * y[i, rows[j, k]]``.

    Parameters
    ----------
    y : torch.Tensor
        Shape ``(n, out_dim)``, floating.
    offset, length : int
        The chunk is coordinates ``offset .. offset + length - 1``.
    nnz, key_a, key_b : int
        As in :func:`rows_and_signs`.

    Returns
    -------
    torch.Tensor
        Shape ``(n, length)``, same dtype and device as ``y``.
    """
    n, out_dim = y.shape
    out = torch.empty((n, length), dtype=y.dtype, device=y.device)
    scale = 1.0 / math.sqrt(nnz)
    for j0 in range(0, length, _CHUNK):
        m = min(_CHUNK, length - j0)
        rows, signs = rows_and_signs(offset + j0, m, out_dim, nnz, key_a, key_b, y.device)
        vals = signs.to(y.dtype) * scale
        gathered = y[:, rows.reshape(-1)].reshape(n, m, nnz)
        out[:, j0 : j0 + m] = (gathered * vals).sum(dim=2)
    return out

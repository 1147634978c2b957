"""Sparse Johnson–Lindenstrauss projector (block CountSketch) and its backend selection.

The ``in_dim x out_dim`` matrix is never stored: the ``nnz`` rows and signs of every coordinate
come from a hash of ``(seed, coordinate, k)`` (see :mod:`graphtag.projection.reference` and
``csrc/sjlt_hash.h``), so any chunk of coordinates can be projected on its own. That is what
lets per-sample gradients be compressed one parameter tensor at a time::

    P = SparseProjector(num_params, 512, nnz=4, seed=0)
    sketch = sum(P.project(g.reshape(n, -1), offset) for g, offset in per_parameter_grads)

Backends, all computing bit-identical rows and signs:

* ``"cpp"`` – compiled C++/OpenMP extension ``graphtag.projection._sjlt_cpu`` (CPU tensors);
* ``"cuda"`` – compiled CUDA extension ``graphtag.projection._sjlt_cuda`` (CUDA tensors);
* ``"reference"`` – pure torch (any device), slow but dependency-free.

When an extension is not importable it is JIT-compiled once into a cache directory if a compiler
is available (``GRAPHTAG_NO_JIT=1`` disables this), otherwise ``backend="auto"`` falls back to
the reference with a warning.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import shutil
import sys
import warnings
from pathlib import Path
from types import ModuleType

import torch

from graphtag.projection import reference

__all__ = ["BACKENDS", "SparseProjector", "available_backends"]

BACKENDS = ("auto", "cpp", "cuda", "reference")
# The C++ kernels pre-multiply row indices by a 16-wide tile inside int32.
MAX_OUT_DIM = 1 << 26
# Coordinates are hashed as int64 and split into two 32-bit words; keep them non-negative.
MAX_IN_DIM = 1 << 62

_CSRC = Path(__file__).resolve().parent / "csrc"
_FIX_HINT = (
    "build it with `python setup.py build_ext --inplace` or `pip install --no-build-isolation .` "
    "(needs torch and a C++ compiler at build time)"
)
_log = logging.getLogger(__name__)


def _cache_dir() -> Path:
    """Where JIT-compiled extensions live (one directory per torch/Python version)."""
    root = os.environ.get("GRAPHTAG_EXTENSIONS_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "graphtag" / "extensions"
    tag = f"torch{torch.__version__.replace('+', '_')}-py{sys.version_info[0]}{sys.version_info[1]}"
    return base / tag


def _jit_compile(kind: str) -> ModuleType:
    """Compile ``csrc`` for ``kind`` ("cpu" or "cuda") with torch's JIT loader."""
    from torch.utils.cpp_extension import load

    build_dir = _cache_dir() / kind
    build_dir.mkdir(parents=True, exist_ok=True)
    _log.warning("graphtag.projection: compiling the %s extension into %s (once)", kind, build_dir)
    if kind == "cpu":
        return load(
            name="graphtag_sjlt_cpu",
            sources=[str(_CSRC / "sjlt_cpu.cpp")],
            extra_include_paths=[str(_CSRC)],
            extra_cflags=["-O3", "-fopenmp"],
            extra_ldflags=["-fopenmp"],
            build_directory=str(build_dir),
            verbose=False,
        )
    return load(
        name="graphtag_sjlt_cuda",
        sources=[str(_CSRC / "sjlt_cuda.cpp"), str(_CSRC / "sjlt_cuda_kernel.cu")],
        extra_include_paths=[str(_CSRC)],
        extra_cflags=["-O3"],
        extra_cuda_cflags=["-O3"],
        build_directory=str(build_dir),
        verbose=False,
    )


def _jit_blocker(kind: str) -> str:
    """Why the JIT fallback cannot run for ``kind``, or "" when it can."""
    if os.environ.get("GRAPHTAG_NO_JIT", "").lower() in ("1", "true", "yes"):
        return "JIT compilation disabled by GRAPHTAG_NO_JIT"
    if not (_CSRC / "sjlt_cpu.cpp").is_file():
        return f"C++ sources not found in {_CSRC}"
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None and shutil.which("g++") is None:
        return "no C++ compiler on PATH for JIT compilation"
    from torch.utils.cpp_extension import CUDA_HOME, is_ninja_available

    if not is_ninja_available():
        return "ninja (needed for JIT compilation) is not installed; pip install ninja"
    if kind == "cuda" and (CUDA_HOME is None or not torch.cuda.is_available()):
        return "no CUDA toolkit/device for JIT compilation"
    return ""


@functools.cache
def _load_extension(kind: str) -> tuple[ModuleType | None, str]:
    """Import (or JIT-compile) the ``kind`` extension, ``"cpu"`` or ``"cuda"``.

    Parameters
    ----------
    kind : str
        ``"cpu"`` or ``"cuda"``.

    Returns
    -------
    tuple
        ``(module, "")`` on success, ``(None, reason)`` otherwise. Cached per process.
    """
    if kind == "cuda" and not torch.cuda.is_available():
        return None, "torch has no usable CUDA device"
    name = f"graphtag.projection._sjlt_{kind}"
    try:
        return importlib.import_module(name), ""
    except ImportError as exc:
        why = f"{name} is not importable ({exc})"
    blocker = _jit_blocker(kind)
    if blocker:
        return None, f"{why}; {blocker}"
    try:
        return _jit_compile(kind), ""
    except Exception as exc:  # a failed JIT build must not break the reference fallback
        return None, f"{why}; JIT compilation failed ({type(exc).__name__}: {exc})"


def available_backends() -> dict[str, bool]:
    """Which backends can run in this process.

    Loading may JIT-compile an extension the first time (see module docstring).

    Returns
    -------
    dict of str to bool
        Keys ``"cpp"``, ``"cuda"``, ``"reference"``.
    """
    return {
        "cpp": _load_extension("cpu")[0] is not None,
        "cuda": _load_extension("cuda")[0] is not None,
        "reference": True,
    }


def _check_int(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum or (maximum is not None and value > maximum):
        upper = "" if maximum is None else f" and <= {maximum}"
        raise ValueError(f"{name} must be >= {minimum}{upper}, got {value}")
    return value


def _as_batch(t: object, name: str) -> tuple[torch.Tensor, bool]:
    """Validate dtype/ndim; return the tensor as 2-D and whether it was 1-D."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(
            f"{name} must be a floating tensor (float32 or float64), got {t.dtype}; "
            f"convert it with {name}.float()"
        )
    if t.dtype not in (torch.float32, torch.float64):
        raise TypeError(
            f"{name} has dtype {t.dtype}; only float32 and float64 are supported, "
            f"convert it with {name}.float()"
        )
    if t.dim() == 1:
        return t.unsqueeze(0), True
    if t.dim() != 2:
        raise ValueError(
            f"{name} must be 1-D (one sample) or 2-D (samples, coordinates), got shape "
            f"{tuple(t.shape)}; flatten it with {name}.reshape({name}.shape[0], -1)"
        )
    return t, False


class _ChunkedProjector:
    """Shared argument checks of the sparse and dense projectors."""

    in_dim: int
    out_dim: int

    def _check_chunk(self, offset: object, length: int, what: str) -> int:
        offset = _check_int("offset", offset, 0)
        if offset + length > self.in_dim:
            raise ValueError(
                f"chunk exceeds in_dim: offset ({offset}) + {what} ({length}) = "
                f"{offset + length} > in_dim ({self.in_dim}); pass the chunk's global offset "
                "and make sure in_dim counts every coordinate"
            )
        return offset

    def _check_project(self, x: object, offset: object) -> tuple[torch.Tensor, bool, int]:
        x2, squeeze = _as_batch(x, "x")
        off = self._check_chunk(offset, x2.shape[1], "x.shape[-1]")
        return x2, squeeze, off

    def _check_transpose(
        self, y: object, offset: object, length: object
    ) -> tuple[torch.Tensor, bool, int, int]:
        y2, squeeze = _as_batch(y, "y")
        if y2.shape[1] != self.out_dim:
            raise ValueError(
                f"y.shape[-1] must equal out_dim ({self.out_dim}), got {y2.shape[1]}; "
                "transpose() maps sketches produced by project() back to coordinates"
            )
        off = _check_int("offset", offset, 0)
        if length is None:
            length = self.in_dim - off
        n_coords = _check_int("length", length, 0)
        self._check_chunk(off, n_coords, "length")
        return y2, squeeze, off, n_coords


class _ProjectFn(torch.autograd.Function):
    """Makes ``project`` differentiable: its adjoint is ``transpose``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, proj: SparseProjector, offset: int) -> torch.Tensor:
        ctx.proj, ctx.offset, ctx.length = proj, offset, x.shape[1]
        return proj._project(x, offset)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return ctx.proj._transpose(grad.contiguous(), ctx.offset, ctx.length), None, None


class SparseProjector(_ChunkedProjector):
    """Sparse JL projection ``R^in_dim -> R^out_dim`` with ``nnz`` nonzeros per column.

    Coordinate ``j`` is sent to one row in each of ``nnz`` contiguous blocks of the output (so
    its rows are distinct) with value ``±1/sqrt(nnz)``; squared norms are preserved in
    expectation with variance at most ``2/out_dim`` (times ``||x||^4``).

    Parameters
    ----------
    in_dim : int
        Number of input coordinates ``p`` (e.g. model parameters).
    out_dim : int
        Sketch dimension ``d``.
    nnz : int, default 4
        Nonzeros per column ``s``, ``1 <= s <= d``. Cost is linear in ``s``; 4–8 is plenty for
        gradient sketches.
    seed : int, default 0
        Defines the matrix (only ``seed mod 2**64`` matters).
    backend : {"auto", "cpp", "cuda", "reference"}, default "auto"
        ``"auto"`` uses the CUDA kernel for CUDA tensors and the C++ kernel for CPU tensors
        when they are built, the torch reference otherwise (with a warning).

    Attributes
    ----------
    backend : str
        Backend used for CPU tensors (``"cpp"`` or ``"reference"``), or ``"cuda"``.
    """

    def __init__(
        self, in_dim: int, out_dim: int, nnz: int = 4, seed: int = 0, backend: str = "auto"
    ) -> None:
        self.in_dim = _check_int("in_dim", in_dim, 1, MAX_IN_DIM)
        self.out_dim = _check_int("out_dim", out_dim, 1, MAX_OUT_DIM)
        if isinstance(nnz, bool) or not isinstance(nnz, int):
            raise TypeError(f"nnz must be an int, got {type(nnz).__name__}")
        if not 1 <= nnz <= out_dim:
            raise ValueError(f"nnz must satisfy 1 <= nnz <= out_dim ({out_dim}), got {nnz}")
        self.nnz = nnz
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        self.seed = seed
        self.key_a, self.key_b = reference.seed_keys(seed)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.requested_backend = backend
        self._cpu_ext: ModuleType | None = None
        self._cuda_ext: ModuleType | None = None
        self._warned_cuda_fallback = False

        if backend == "reference":
            self.backend = "reference"
        elif backend == "cuda":
            self._cuda_ext, why = _load_extension("cuda")
            if self._cuda_ext is None:
                raise ValueError(
                    f"backend='cuda' requested but the CUDA extension is unavailable: {why}. "
                    "Build it on a machine with CUDA (FORCE_CUDA=1 python setup.py build_ext "
                    "--inplace) or use backend='auto'"
                )
            self.backend = "cuda"
        else:
            self._cpu_ext, why = _load_extension("cpu")
            if self._cpu_ext is None:
                if backend == "cpp":
                    raise ValueError(
                        f"backend='cpp' requested but the C++ extension is unavailable: {why}. "
                        f"Fix: {_FIX_HINT}, or use backend='auto'/'reference'"
                    )
                warnings.warn(
                    f"graphtag.projection: C++ backend unavailable ({why}); falling back to the "
                    f"slow pure-torch reference. Fix: {_FIX_HINT}",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self.backend = "reference"
            else:
                self.backend = "cpp"
            if backend == "auto" and torch.cuda.is_available():
                self._cuda_ext = _load_extension("cuda")[0]

    def __repr__(self) -> str:
        return (
            f"SparseProjector(in_dim={self.in_dim}, out_dim={self.out_dim}, nnz={self.nnz}, "
            f"seed={self.seed}, backend={self.backend!r})"
        )

    def _kernel(self, t: torch.Tensor) -> ModuleType | None:
        """Compiled module for ``t``'s device, or None for the torch reference."""
        req = self.requested_backend
        if t.device.type == "cuda":
            if req == "cpp":
                raise ValueError(
                    "backend='cpp' handles CPU tensors only; move the tensor to the CPU or use "
                    "backend='auto'/'cuda'"
                )
            if req == "auto" and self._cuda_ext is None and not self._warned_cuda_fallback:
                self._warned_cuda_fallback = True
                warnings.warn(
                    "graphtag.projection: CUDA extension unavailable "
                    f"({_load_extension('cuda')[1]}); using the torch reference on the GPU. "
                    "Fix: build with FORCE_CUDA=1 on a CUDA machine",
                    RuntimeWarning,
                    stacklevel=3,
                )
            return self._cuda_ext if req != "reference" else None
        if req == "cuda":
            raise ValueError(
                f"backend='cuda' needs CUDA tensors, got a {t.device.type} tensor; move it with "
                ".cuda() or use backend='auto'"
            )
        if t.device.type == "cpu" and req != "reference":
            return self._cpu_ext
        return None

    def _project(self, x: torch.Tensor, offset: int) -> torch.Tensor:
        ext = self._kernel(x)
        if ext is None:
            return reference.project(x, offset, self.out_dim, self.nnz, self.key_a, self.key_b)
        out = torch.zeros((x.shape[0], self.out_dim), dtype=x.dtype, device=x.device)
        ext.project(x.contiguous(), out, offset, self.nnz, self.key_a, self.key_b)
        return out

    def _transpose(self, y: torch.Tensor, offset: int, length: int) -> torch.Tensor:
        ext = self._kernel(y)
        if ext is None:
            return reference.transpose(y, offset, length, self.nnz, self.key_a, self.key_b)
        out = torch.empty((y.shape[0], length), dtype=y.dtype, device=y.device)
        ext.transpose(y.contiguous(), out, offset, self.nnz, self.key_a, self.key_b)
        return out

    def project(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """Project coordinates ``offset .. offset + c - 1`` of each sample.

        Projections of column chunks (with their offsets) add up to the projection of the
        whole vector. Differentiable with respect to ``x``.

        Parameters
        ----------
        x : torch.Tensor
            ``(n, c)`` or ``(c,)``, float32 or float64, CPU or CUDA.
        offset : int, default 0
            Global index of ``x``'s first coordinate; ``offset + c <= in_dim``.

        Returns
        -------
        torch.Tensor
            ``(n, out_dim)`` (or ``(out_dim,)`` for 1-D ``x``), same dtype and device as ``x``.
        """
        x2, squeeze, off = self._check_project(x, offset)
        if x2.requires_grad and torch.is_grad_enabled():
            out = _ProjectFn.apply(x2, self, off)
        else:
            out = self._project(x2.detach(), off)
        return out.squeeze(0) if squeeze else out

    def transpose(
        self, y: torch.Tensor, offset: int = 0, length: int | None = None
    ) -> torch.Tensor:
        """Apply the adjoint ``P^T`` restricted to coordinates ``offset .. offset + length - 1``.

        Parameters
        ----------
        y : torch.Tensor
            ``(n, out_dim)`` or ``(out_dim,)``, float32 or float64, CPU or CUDA.
        offset : int, default 0
            First coordinate of the chunk.
        length : int, optional
            Chunk length; default ``in_dim - offset`` (the rest of the input).

        Returns
        -------
        torch.Tensor
            ``(n, length)`` (or ``(length,)`` for 1-D ``y``), same dtype and device as ``y``.
        """
        y2, squeeze, off, n_coords = self._check_transpose(y, offset, length)
        out = self._transpose(y2.detach(), off, n_coords)
        return out.squeeze(0) if squeeze else out

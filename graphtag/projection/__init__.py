"""Random projections that compress per-sample gradients (``p`` parameters -> ``d`` dims).

* :class:`SparseProjector` – sparse JL / block CountSketch with hashed (never stored) entries
  and C++/OpenMP, CUDA and pure-torch backends; the one to use.
* :class:`KroneckerProjector` – the same hashed sparse JL maps, Kronecker-factored on weight
  matrices, so sketches of outer products (per-sample linear-layer gradients) cost
  ``O(o + i)`` instead of ``O(o i)``; used by the factored per-sample gradient path.
* :class:`DenseProjector` – dense Rademacher/Gaussian baseline generated block by block.
* :func:`available_backends` – which compiled backends load in this process.

Both projectors accept coordinate chunks with their global offset, so gradients can be
projected one parameter tensor at a time and the results summed.
"""

from graphtag.projection.dense import DenseProjector
from graphtag.projection.kronecker import KroneckerProjector
from graphtag.projection.sparse import SparseProjector, available_backends

__all__ = ["DenseProjector", "KroneckerProjector", "SparseProjector", "available_backends"]

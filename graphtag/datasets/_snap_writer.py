"""Writers for SNAP-style community graphs (the formats :mod:`graphtag.datasets.io` reads).

Integers are formatted with numpy digit arithmetic (about 2.5x faster than
``DataFrame.to_csv``), chunk by chunk, into a temporary file that is then renamed.
"""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

__all__ = ["format_int_rows", "write_communities", "write_edge_list"]


def _open_write(path: Path, gz: bool, compresslevel: int = 6) -> io.BufferedIOBase:
    """Binary writer; gzip with ``mtime=0`` so the bytes are reproducible.

    Level 6 is ~3x faster than 9 for ~2 % size; level 1 is another ~6x faster on edge lists
    for ~7 % size (the choice for generated graphs of tens of millions of edges).
    """
    if not 1 <= compresslevel <= 9:
        raise ValueError(f"compresslevel must lie in [1, 9] (got {compresslevel}).")
    if gz:
        return gzip.GzipFile(path, "wb", compresslevel=compresslevel, mtime=0)
    return open(path, "wb")


def format_int_rows(values: np.ndarray, seps: np.ndarray | bytes) -> bytes:
    """Decimal text of non-negative integers, each followed by a separator byte.

    Vectorised: digits come from integer division on ``uint32`` (``uint64`` above 2**32 - 1)
    and leading zeros are dropped by one boolean gather, so the cost is a few passes over the
    values, with no Python-level loop per value.

    Parameters
    ----------
    values
        1-D array of non-negative integers.
    seps
        One separator byte per value (``uint8`` array or ``bytes`` of the same length), or a
        ``bytes`` pattern whose length divides ``len(values)``, repeated: ``b"\\t\\n"``
        turns a row-major ``(E, 2)`` array into ``u<TAB>v`` lines.

    Returns
    -------
    bytes
        ``str(values[0]) + seps[0] + str(values[1]) + seps[1] + ...``.

    Raises
    ------
    ValueError
        On negative values or a separator pattern that does not fit.
    """
    v = np.asarray(values).ravel()
    n = v.size
    if n == 0:
        return b""
    if isinstance(seps, bytes | bytearray):
        pat = np.frombuffer(bytes(seps), dtype=np.uint8)
        if pat.size == 0 or n % pat.size:
            raise ValueError(f"separator pattern of length {pat.size} does not divide {n}.")
        sep = np.tile(pat, n // pat.size)
    else:
        sep = np.asarray(seps, dtype=np.uint8).ravel()
        if sep.size != n:
            raise ValueError(f"need one separator per value ({n}), got {sep.size}.")
    if int(v.min()) < 0:
        raise ValueError("format_int_rows writes non-negative integers only.")
    hi = int(v.max())
    width = len(str(hi))
    w = v.astype(np.uint32 if hi < 2**32 else np.uint64)
    text = np.empty((n, width + 1), dtype=np.uint8)
    for k in range(width - 1, -1, -1):
        q = w // 10
        np.subtract(w, q * 10, out=text[:, k], casting="unsafe")
        w = q
    text[:, :width] += ord("0")
    text[:, width] = sep
    keep = np.ones((n, width + 1), dtype=bool)
    for k in range(width - 1):  # column k is a leading zero when v < 10 ** (width - 1 - k)
        np.greater_equal(v, 10 ** (width - 1 - k), out=keep[:, k])
    return text[keep].tobytes()


def write_edge_list(
    path: str | os.PathLike,
    edges: np.ndarray,
    *,
    header: Sequence[str] = (),
    chunk: int = 1 << 22,
    compresslevel: int = 6,
) -> None:
    """Write a ``(2, E)`` edge array in SNAP format (gzip if ``path`` ends in ``.gz``).

    Written ``chunk`` edges at a time (a chunk's text is the only copy held) to a temporary
    file then renamed, so a reader never sees half a file.

    Parameters
    ----------
    path
        Output file; ``.gz`` means gzip.
    edges
        ``(2, E)`` non-negative integer node ids.
    header
        Comment lines written first, each prefixed with ``"# "``.
    chunk
        Edges formatted per step.
    compresslevel
        gzip level (1 fastest, 9 smallest).
    """
    path = Path(path)
    edges = np.asarray(edges)
    if edges.ndim != 2 or edges.shape[0] != 2:
        raise ValueError(f"edges must have shape (2, E), got {edges.shape}.")
    tmp = path.with_name(path.name + ".tmp")
    with _open_write(tmp, path.suffix == ".gz", compresslevel) as f:
        for h in header:
            f.write(f"# {h}\n".encode())
        for s in range(0, edges.shape[1], chunk):
            f.write(format_int_rows(edges[:, s : s + chunk].T, b"\t\n"))
    os.replace(tmp, path)


def write_communities(
    path: str | os.PathLike,
    communities: Iterable[np.ndarray],
    *,
    chunk: int = 1 << 22,
    compresslevel: int = 6,
) -> None:
    """Write communities one a line, tab-separated (gzip if ``path`` ends in ``.gz``).

    Consecutive communities are formatted together until about ``chunk`` ids are pending.
    Empty communities are written as empty lines (which :func:`read_communities` skips).
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with _open_write(tmp, path.suffix == ".gz", compresslevel) as f:
        pending: list[np.ndarray] = []
        count = 0

        def flush() -> None:
            nonlocal count
            if pending:
                vals = np.concatenate(pending)
                sep = np.full(vals.size, ord("\t"), dtype=np.uint8)
                sep[np.cumsum([c.size for c in pending]) - 1] = ord("\n")
                f.write(format_int_rows(vals, sep))
            pending.clear()
            count = 0

        for c in communities:
            c = np.asarray(c).ravel()
            if c.size == 0:
                flush()
                f.write(b"\n")
                continue
            pending.append(c)
            count += c.size
            if count >= chunk:
                flush()
        flush()
    os.replace(tmp, path)

"""Benchmark the gradient projectors: sparse JL (C++, CUDA, torch reference) against a dense
torch matmul and the memory-streaming limit.

For each input dimension ``p`` a batch ``x`` of ``n`` float32 vectors is projected to ``d`` dims.
Rows of the table:

* ``stream`` – ``x.sum()``: reads the input once, the floor for any projection;
* ``dense`` – ``x @ R`` with a pre-built ``p x d`` Rademacher matrix (``DenseProjector``);
* ``sparse-ref`` / ``sparse-cpp`` / ``sparse-cuda`` – ``SparseProjector.project``.

Times are medians over ``--repeats`` calls after one warm-up call. Prints markdown.

    python bench/projector.py            # full run (~2-3 min on 2 cores)
    python bench/projector.py --quick    # seconds
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch

from graphtag.projection import DenseProjector, SparseProjector, available_backends
from graphtag.projection import sparse as sparse_mod

GIB = 1024**3


def timeit(fn: Callable[[], object], repeats: int, cuda: bool = False) -> float:
    """Median wall time of ``fn`` in seconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def print_row(
    p: int, n: int, gbytes: float, method: str, nnz: str, seconds: float | None, note: str
) -> None:
    """One markdown row; ``note`` replaces the figures when ``seconds`` is None."""
    if seconds is None:
        print(f"| {p:.0e} | {n} | {method} | {nnz} | {note} | – | – |")
    else:
        print(
            f"| {p:.0e} | {n} | {method} | {nnz} | {seconds * 1e3:.2f} ms | "
            f"{gbytes / seconds:.1f} | {n / seconds:,.0f} |"
        )


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dims", default="1e5,1e6,1e7", help="comma-separated input dims p")
    ap.add_argument("--out-dim", type=int, default=512, help="sketch dimension d")
    ap.add_argument("--nnz", default="4,8", help="comma-separated nonzeros per column s")
    ap.add_argument("--samples", type=int, default=64, help="batch size n (upper bound)")
    ap.add_argument(
        "--max-input-mb",
        type=float,
        default=640,
        help="shrink n for large p so the input stays below this size",
    )
    ap.add_argument(
        "--max-dense-gib",
        type=float,
        default=None,
        help="largest dense matrix to build (default: 40%% of physical memory)",
    )
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    args = ap.parse_args()
    if args.quick:
        args.dims, args.samples, args.repeats = "1e4,1e5", 16, 2
    return args


def physical_memory_gib() -> float:
    try:
        import os

        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB
    except (ValueError, OSError, AttributeError):
        return 8.0


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dims = [int(float(v)) for v in args.dims.split(",")]
    nnzs = [int(v) for v in args.nnz.split(",")]
    d = args.out_dim
    max_dense = args.max_dense_gib or 0.4 * physical_memory_gib()
    backends = available_backends()
    has_cuda = backends["cuda"] and torch.cuda.is_available()
    ext = sparse_mod._load_extension("cpu")[0]
    isa = ext.get_isa() if ext is not None else "n/a"

    print(f"# Projector benchmark (d={d}, float32)\n")
    print(
        f"{cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"C++ kernel variant: {isa}, CUDA: {'yes' if has_cuda else 'no'}\n"
    )
    header = "| p | n | method | nnz | time / call | input GB/s | samples/s |"
    print(header)
    print("|---:|---:|---|---:|---:|---:|---:|")
    summary = []
    for p in dims:
        n = max(1, min(args.samples, int(args.max_input_mb * 1e6 / (4 * p))))
        x = torch.randn(n, p, generator=torch.Generator().manual_seed(0))

        gbytes = x.numel() * 4 / 1e9

        def row(method, nnz, seconds, note="", p=p, n=n, gbytes=gbytes) -> None:
            print_row(p, n, gbytes, method, nnz, seconds, note)

        # Memory bandwidth on a shared VM drifts: many repeats for the baseline.
        t_stream = timeit(lambda x=x: x.sum(), max(3 * args.repeats, 9))
        row("stream (x.sum)", "–", t_stream)

        dense_gib = p * d * 4 / GIB
        t_dense = None
        if dense_gib <= max_dense:
            mat = DenseProjector(p, d, kind="rademacher", seed=0).materialize()
            t_dense = timeit(lambda x=x, mat=mat: x @ mat, min(args.repeats, 3))
            row("dense matmul", "–", t_dense)
            del mat
        else:
            row("dense matmul", "–", None, f"does not fit ({dense_gib:.1f} GiB)")

        for s in nnzs:
            ref = SparseProjector(p, d, nnz=s, seed=0, backend="reference")
            row("sparse-ref", str(s), timeit(lambda x=x, ref=ref: ref.project(x), 2))
            t_cpp = None
            if backends["cpp"]:
                cpp = SparseProjector(p, d, nnz=s, seed=0, backend="cpp")
                t_cpp = timeit(lambda x=x, cpp=cpp: cpp.project(x), args.repeats)
                row("sparse-cpp", str(s), t_cpp)
            if has_cuda:
                xc = x.cuda()
                gpu = SparseProjector(p, d, nnz=s, seed=0, backend="cuda")
                t_gpu = timeit(lambda xc=xc, gpu=gpu: gpu.project(xc), args.repeats, cuda=True)
                row("sparse-cuda", str(s), t_gpu)
                del xc
            summary.append((p, n, s, t_stream, t_dense, t_cpp, dense_gib))
        del x

    print("\n| p | n | nnz | C++ speed-up vs dense | C++ throughput / streaming limit |")
    print("|---:|---:|---:|---:|---:|")
    for p, n, s, t_stream, t_dense, t_cpp, dense_gib in summary:
        speed = (
            f"{t_dense / t_cpp:.0f}x"
            if t_dense and t_cpp
            else f"dense does not fit ({dense_gib:.1f} GiB)"
        )
        frac = f"{t_stream / t_cpp:.0%}" if t_cpp else "n/a"
        print(f"| {p:.0e} | {n} | {s} | {speed} | {frac} |")

    print(
        "\nMemory: the sparse projector never stores its matrix. Besides the input and the (n, d) "
        "output, each thread uses O(s * 1024) hash entries and a 256 KiB chunk of accumulator "
        "tiles (small batches: a private n x d copy, only while n * d * 4 <= 1 MiB), i.e. "
        f"O(p + n d) overall. The dense baseline needs the p x d matrix: {d * 4} bytes per "
        f"input coordinate, {1e6 * d * 4 / GIB:.1f} GiB at p=1e6."
    )


if __name__ == "__main__":
    main()

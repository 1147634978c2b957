"""Tests of graphtag.projection: sparse JL backends against the torch reference, matrix
structure, adjoint, chunking, determinism, JL statistics, input validation and fallback."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from graphtag.projection import (
    DenseProjector,
    SparseProjector,
    available_backends,
    reference,
    sparse,
)

HAS_CPP = available_backends()["cpp"]
HAS_CUDA = torch.cuda.is_available() and available_backends()["cuda"]
needs_cpp = pytest.mark.skipif(not HAS_CPP, reason="C++ extension not built")
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device and the CUDA extension")

TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-12, atol=1e-12)}


def _cpu_ext():
    return sparse._load_extension("cpu")[0]


def _isas() -> list[str]:
    return _cpu_ext().supported_isas() if HAS_CPP else []


@pytest.fixture
def all_isas():
    """Run a test body once per compiled kernel variant, restoring the default after."""
    ext = _cpu_ext()
    default = ext.get_isa()
    yield ext, _isas()
    ext.set_isa(default)


def _explicit_matrix(proj, in_dim: int) -> torch.Tensor:
    """(in_dim, out_dim) matrix of a projector, by projecting the identity."""
    return proj.project(torch.eye(in_dim, dtype=torch.float64))


# ---- the hash and the matrix it defines ------------------------------------------------------


@needs_cpp
@pytest.mark.parametrize(
    "offset,count,out_dim,nnz,seed",
    [
        (0, 5000, 512, 8, 0),
        (123, 3000, 100, 7, 1),
        (2**32 - 50, 100, 64, 4, 2),  # crosses the 32-bit word boundary of the index
        (2**40 + 3, 2049, 1000, 1, 3),
        (7, 10, 3, 3, -5),
        (0, 1, 1, 1, 2**64 + 9),
    ],
)
def test_cpp_rows_and_signs_bit_identical_to_reference(offset, count, out_dim, nnz, seed):
    ka, kb = reference.seed_keys(seed)
    r_ref, s_ref = reference.rows_and_signs(offset, count, out_dim, nnz, ka, kb)
    r_cpp, s_cpp = _cpu_ext().rows(offset, count, out_dim, nnz, ka, kb)
    assert torch.equal(r_cpp, r_ref)
    assert torch.equal(s_cpp, s_ref)


@pytest.mark.parametrize("out_dim,nnz", [(64, 4), (100, 7), (5, 5), (17, 1)])
def test_rows_lie_in_their_block_and_are_distinct(out_dim, nnz):
    rows, signs = reference.rows_and_signs(10, 3000, out_dim, nnz, *reference.seed_keys(4))
    starts, sizes = reference.block_bounds(out_dim, nnz)
    assert sum(sizes) == out_dim and min(sizes) >= out_dim // nnz
    for k in range(nnz):
        assert rows[:, k].min() >= starts[k]
        assert rows[:, k].max() < starts[k] + sizes[k]
    assert (rows.sort(dim=1).values.diff(dim=1) > 0).all()
    assert set(signs.unique().tolist()) == {-1, 1}
    # Every row of a block is used and both signs are balanced (the hash is not degenerate).
    assert rows.unique().numel() == out_dim
    assert abs(signs.float().mean().item()) < 0.05


def test_seed_keys_are_distinct_and_in_range():
    keys = {reference.seed_keys(s) for s in [*range(200), 2**32, 2**32 + 1, 2**63, -1]}
    assert len(keys) == 204
    assert all(0 <= a < 2**32 and 0 <= b < 2**32 for a, b in keys)
    assert reference.seed_keys(-1) == reference.seed_keys(2**64 - 1)


def test_mix32_is_a_bijection_on_a_sample_and_mixes_low_bits():
    x = torch.arange(0, 1 << 16, dtype=torch.int64)
    h = reference.mix32(x)
    assert h.unique().numel() == x.numel()
    assert int(h.min()) >= 0 and int(h.max()) < 2**32
    # Avalanche: flipping input bit 0 flips about half of the output bits.
    flipped = reference.mix32(x ^ 1) ^ h
    bits = sum(((flipped >> b) & 1).sum().item() for b in range(32))
    assert abs(bits / (32 * x.numel()) - 0.5) < 0.02


@pytest.mark.parametrize("backend", ["reference", pytest.param("cpp", marks=needs_cpp)])
@pytest.mark.parametrize("nnz", [1, 3, 8])
def test_explicit_matrix_has_nnz_entries_of_right_magnitude(backend, nnz):
    in_dim, out_dim = 60, 24
    mat = _explicit_matrix(
        SparseProjector(in_dim, out_dim, nnz=nnz, seed=3, backend=backend), in_dim
    )
    assert mat.shape == (in_dim, out_dim)
    nonzero = mat != 0
    assert (nonzero.sum(dim=1) == nnz).all()
    assert torch.allclose(mat[nonzero].abs(), torch.full_like(mat[nonzero], 1 / math.sqrt(nnz)))
    starts, sizes = reference.block_bounds(out_dim, nnz)
    for k in range(nnz):  # exactly one nonzero per block
        assert (nonzero[:, starts[k] : starts[k] + sizes[k]].sum(dim=1) == 1).all()


# ---- compiled backends against the reference --------------------------------------------------

SHAPES = [  # (n, c, offset, in_dim, out_dim, nnz)
    (1, 3000, 0, 3000, 100, 4),
    (3, 2500, 9, 3000, 64, 2),
    (16, 1024, 0, 1024, 512, 8),
    (37, 4100, 2**33, 2**33 + 5000, 33, 5),
    (70, 2049, 11, 4000, 512, 8),
    (5, 7, 3, 10, 1000, 1),
    (2, 0, 4, 10, 16, 2),
]


@needs_cpp
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n,c,offset,in_dim,out_dim,nnz", SHAPES)
def test_cpp_project_and_transpose_match_reference(
    all_isas, dtype, n, c, offset, in_dim, out_dim, nnz
):
    ext, isas = all_isas
    gen = torch.Generator().manual_seed(n * 1000 + c)
    x = torch.randn(n, c, generator=gen, dtype=dtype)
    y = torch.randn(n, out_dim, generator=gen, dtype=dtype)
    for seed in (0, 12345):
        ref = SparseProjector(in_dim, out_dim, nnz=nnz, seed=seed, backend="reference")
        cpp = SparseProjector(in_dim, out_dim, nnz=nnz, seed=seed, backend="cpp")
        want_p, want_t = ref.project(x, offset), ref.transpose(y, offset, c)
        for isa in isas:
            ext.set_isa(isa)
            got_p, got_t = cpp.project(x, offset), cpp.transpose(y, offset, c)
            assert got_p.dtype == dtype and got_p.shape == (n, out_dim)
            torch.testing.assert_close(got_p, want_p, **TOL[dtype], msg=f"project isa={isa}")
            torch.testing.assert_close(got_t, want_t, **TOL[dtype], msg=f"transpose isa={isa}")


@needs_cpp
@pytest.mark.parametrize(
    "n,c,out_dim",
    [
        (600, 3000, 512),  # accumulators too big for private copies: threads split samples
        (64, 2048, 64),  # few blocks and groups: threads split both
        (100000 // 50, 64, 16),  # one block, many groups (Kronecker-style small chunks)
    ],
)
def test_cpp_thread_partitions_match_reference(n, c, out_dim):
    gen = torch.Generator().manual_seed(n)
    x = torch.randn(n, c, generator=gen)
    y = torch.randn(n, out_dim, generator=gen)
    ref = SparseProjector(c, out_dim, nnz=4, seed=1, backend="reference")
    want_p, want_t = ref.project(x), ref.transpose(y)
    cpp = SparseProjector(c, out_dim, nnz=4, seed=1, backend="cpp")
    threads = torch.get_num_threads()
    try:
        for nt in (1, 2, 3, 8):
            torch.set_num_threads(nt)
            torch.testing.assert_close(cpp.project(x), want_p, **TOL[torch.float32])
            torch.testing.assert_close(cpp.transpose(y), want_t, **TOL[torch.float32])
    finally:
        torch.set_num_threads(threads)


@needs_cpp
def test_cpp_accepts_noncontiguous_and_1d_input():
    proj = SparseProjector(500, 32, nnz=4, seed=2, backend="cpp")
    base = torch.randn(500, 6, dtype=torch.float64)
    x = base.t()  # (6, 500), not contiguous
    want = SparseProjector(500, 32, nnz=4, seed=2, backend="reference").project(x.contiguous())
    torch.testing.assert_close(proj.project(x), want, **TOL[torch.float64])
    one = proj.project(x[2])
    assert one.shape == (32,)
    torch.testing.assert_close(one, want[2], **TOL[torch.float64])
    back = proj.transpose(one)
    assert back.shape == (500,)


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n,c,offset,in_dim,out_dim,nnz", [*SHAPES, (9, 3000, 0, 3000, 20000, 4)])
def test_cuda_matches_reference(dtype, n, c, offset, in_dim, out_dim, nnz):
    x = torch.randn(n, c, dtype=dtype)
    y = torch.randn(n, out_dim, dtype=dtype)
    ref = SparseProjector(in_dim, out_dim, nnz=nnz, seed=5, backend="reference")
    cuda = SparseProjector(in_dim, out_dim, nnz=nnz, seed=5, backend="cuda")
    assert cuda.backend == "cuda"
    got_p = cuda.project(x.cuda(), offset)
    got_t = cuda.transpose(y.cuda(), offset, c)
    assert got_p.is_cuda and got_t.is_cuda
    tol = TOL[dtype] if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got_p.cpu(), ref.project(x, offset), **tol)
    torch.testing.assert_close(got_t.cpu(), ref.transpose(y, offset, c), **tol)


@needs_cuda
def test_cuda_rows_bit_identical_to_reference():
    ka, kb = reference.seed_keys(9)
    ext = sparse._load_extension("cuda")[0]
    for offset in (0, 2**32 - 10, 2**40):
        rows, signs = ext.rows(offset, 5000, 300, 6, ka, kb)
        r_ref, s_ref = reference.rows_and_signs(offset, 5000, 300, 6, ka, kb)
        assert torch.equal(rows.cpu(), r_ref) and torch.equal(signs.cpu(), s_ref)


# ---- linear-algebra properties ---------------------------------------------------------------

PROJECTORS = [
    pytest.param(
        lambda p, d, seed: SparseProjector(p, d, nnz=4, seed=seed, backend="reference"),
        id="sparse-ref",
    ),
    pytest.param(
        lambda p, d, seed: SparseProjector(p, d, nnz=4, seed=seed, backend="cpp"),
        id="sparse-cpp",
        marks=needs_cpp,
    ),
    pytest.param(
        lambda p, d, seed: DenseProjector(p, d, kind="rademacher", seed=seed, block=300),
        id="rademacher",
    ),
    pytest.param(
        lambda p, d, seed: DenseProjector(p, d, kind="gaussian", seed=seed, block=256),
        id="gaussian",
    ),
]


@pytest.mark.parametrize("make", PROJECTORS)
def test_adjoint_identity(make):
    proj = make(2000, 64, 7)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(5, 2000, generator=gen, dtype=torch.float64)
    y = torch.randn(5, 64, generator=gen, dtype=torch.float64)
    lhs = (proj.project(x) * y).sum(dim=1)
    rhs = (x * proj.transpose(y)).sum(dim=1)
    torch.testing.assert_close(lhs, rhs, rtol=1e-10, atol=1e-10)
    # Chunked transpose is the matching slice of the full one.
    torch.testing.assert_close(proj.transpose(y, 700, 555), proj.transpose(y)[:, 700:1255])


@pytest.mark.parametrize("make", PROJECTORS)
def test_chunked_projection_equals_whole(make):
    p = 3001
    proj = make(p, 48, 11)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(4, p, generator=gen, dtype=torch.float64)
    whole = proj.project(x)
    for trial in range(3):
        cuts = sorted(torch.randint(1, p, (5 + trial,), generator=gen).tolist())
        bounds = [0, *cuts, p]
        parts = sum(proj.project(x[:, a:b], offset=a) for a, b in itertools.pairwise(bounds))
        torch.testing.assert_close(parts, whole, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("make", PROJECTORS)
def test_determinism_and_seed_dependence(make):
    x = torch.randn(3, 1500, generator=torch.Generator().manual_seed(3))
    a = make(1500, 40, 0).project(x)
    assert torch.equal(a, make(1500, 40, 0).project(x))
    b = make(1500, 40, 1).project(x)
    assert not torch.allclose(a, b, atol=1e-3)


def test_sparse_matrices_of_different_seeds_differ_entrywise():
    m0 = _explicit_matrix(SparseProjector(300, 32, nnz=4, seed=0, backend="reference"), 300)
    m1 = _explicit_matrix(SparseProjector(300, 32, nnz=4, seed=1, backend="reference"), 300)
    # Independent matrices share a given (row, sign) entry with probability ~1/(2 * d / s).
    same = ((m0 == m1) & (m0 != 0)).sum().item() / (300 * 4)
    assert same < 0.15


def test_project_is_differentiable():
    proj = SparseProjector(800, 16, nnz=2, seed=0)
    x = torch.randn(3, 800, dtype=torch.float64, requires_grad=True)
    y = torch.randn(3, 16, dtype=torch.float64)
    (proj.project(x, 0) * y).sum().backward()
    torch.testing.assert_close(x.grad, proj.transpose(y))


def test_dense_materialize_matches_project():
    proj = DenseProjector(1000, 20, kind="gaussian", seed=4, block=128)
    mat = proj.materialize(dtype=torch.float64)
    x = torch.randn(2, 1000, dtype=torch.float64)
    torch.testing.assert_close(proj.project(x), x @ mat)
    # Entries are the right scale: column norms of R^T are ~1.
    assert abs(mat.pow(2).sum(dim=1).mean().item() - 1.0) < 0.05


def test_empty_chunk_projects_to_zero():
    proj = SparseProjector(10, 8, nnz=2)
    out = proj.project(torch.zeros(3, 0), offset=10)
    assert out.shape == (3, 8) and not out.any()


# ---- JL statistics ---------------------------------------------------------------------------

N_VECTORS = 200


def _norm_ratio_errors(proj, p: int) -> tuple[float, float]:
    """|mean ratio - 1| and max |ratio - 1| of ||Px||^2 / ||x||^2 over random vectors."""
    x = torch.randn(N_VECTORS, p, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ratio = proj.project(x).pow(2).sum(dim=1) / x.pow(2).sum(dim=1)
    return abs(ratio.mean().item() - 1.0), (ratio - 1.0).abs().max().item()


def _jl_bounds(out_dim: int) -> tuple[float, float]:
    # For block CountSketch (and dense ±1) the ratio has variance (2/d)(1 - ||x||_4^4/||x||^4)
    # <= 2/d, whatever s. The mean of N ratios gets 5 standard deviations; the max over N = 200
    # vectors gets 5 (a Gaussian tail puts the max of 200 near 2.9 sd; 5 leaves room for skew).
    sd = math.sqrt(2.0 / out_dim)
    return 5 * sd / math.sqrt(N_VECTORS), 5 * sd


@pytest.mark.parametrize("make", PROJECTORS)
@pytest.mark.parametrize("out_dim", [128, 512])
def test_jl_norm_preservation(make, out_dim):
    mean_err, max_err = _norm_ratio_errors(make(4000, out_dim, 21), 4000)
    mean_bound, max_bound = _jl_bounds(out_dim)
    assert mean_err < mean_bound, (mean_err, mean_bound)
    assert max_err < max_bound, (max_err, max_bound)


def test_jl_check_fails_for_a_broken_hash(monkeypatch):
    """The statistics test has teeth: constant rows/signs must violate its bound."""

    def constant_rows(offset, count, out_dim, nnz, key_a, key_b, device=None):
        starts, _ = reference.block_bounds(out_dim, nnz)
        rows = torch.tensor(starts, dtype=torch.int64, device=device).expand(count, nnz)
        return rows.contiguous(), torch.ones((count, nnz), dtype=torch.int8, device=device)

    monkeypatch.setattr(reference, "rows_and_signs", constant_rows)
    proj = SparseProjector(4000, 128, nnz=4, seed=21, backend="reference")
    _, max_err = _norm_ratio_errors(proj, 4000)
    assert max_err > _jl_bounds(128)[1]


def test_jl_check_fails_for_a_badly_scaled_projection():
    class Doubled(SparseProjector):
        def project(self, x, offset=0):
            return super().project(x, offset) * 1.1

    mean_err, _ = _norm_ratio_errors(Doubled(4000, 512, nnz=4, backend="reference"), 4000)
    assert mean_err > _jl_bounds(512)[0]


# ---- input validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(in_dim=10, out_dim=0), ValueError, "out_dim must be >= 1"),
        (dict(in_dim=0, out_dim=4), ValueError, "in_dim must be >= 1"),
        (dict(in_dim=10, out_dim=4, nnz=0), ValueError, r"1 <= nnz <= out_dim \(4\)"),
        (dict(in_dim=10, out_dim=4, nnz=5), ValueError, r"1 <= nnz <= out_dim \(4\)"),
        (dict(in_dim=10, out_dim=4, nnz=2.0), TypeError, "nnz must be an int"),
        (dict(in_dim=10.5, out_dim=4), TypeError, "in_dim must be an int"),
        (dict(in_dim=10, out_dim=4, nnz=2, seed="a"), TypeError, "seed must be an int"),
        (dict(in_dim=10, out_dim=4, nnz=2, backend="gpu"), ValueError, "backend must be one of"),
    ],
)
def test_constructor_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        SparseProjector(**kwargs)


@pytest.mark.parametrize("make", PROJECTORS)
def test_call_errors(make):
    proj = make(100, 8, 0)
    with pytest.raises(TypeError, match=r"only float32 and float64.*\.float\(\)"):
        proj.project(torch.zeros(2, 10, dtype=torch.float16))
    with pytest.raises(TypeError, match=r"floating tensor \(float32 or float64\), got torch.int64"):
        proj.project(torch.zeros(2, 10, dtype=torch.int64))
    with pytest.raises(TypeError, match=r"must be a torch\.Tensor"):
        proj.project([[1.0, 2.0]])
    with pytest.raises(ValueError, match=r"1-D .* or 2-D .*got shape \(2, 3, 4\).*reshape"):
        proj.project(torch.zeros(2, 3, 4))
    with pytest.raises(
        ValueError, match=r"chunk exceeds in_dim: offset \(95\) \+ x.shape\[-1\] \(10\)"
    ):
        proj.project(torch.zeros(2, 10), offset=95)
    with pytest.raises(ValueError, match="offset must be >= 0"):
        proj.project(torch.zeros(2, 10), offset=-1)
    with pytest.raises(ValueError, match=r"y.shape\[-1\] must equal out_dim \(8\), got 9"):
        proj.transpose(torch.zeros(2, 9))
    with pytest.raises(ValueError, match="chunk exceeds in_dim"):
        proj.transpose(torch.zeros(2, 8), offset=50, length=51)
    with pytest.raises(TypeError, match="only float32 and float64"):
        proj.transpose(torch.zeros(2, 8, dtype=torch.bfloat16))


def test_dense_constructor_errors():
    with pytest.raises(ValueError, match="kind must be one of"):
        DenseProjector(10, 4, kind="sparse")
    with pytest.raises(ValueError, match="out_dim must be >= 1"):
        DenseProjector(10, 0)


@pytest.mark.skipif(HAS_CUDA, reason="checks the error raised without a CUDA build")
def test_cuda_backend_without_extension_is_an_error():
    with pytest.raises(
        ValueError, match=r"backend='cuda' requested but the CUDA extension is unavailable"
    ):
        SparseProjector(10, 4, nnz=2, backend="cuda")


@needs_cuda
def test_cuda_backend_rejects_cpu_tensors_and_cpp_rejects_cuda():
    with pytest.raises(ValueError, match=r"backend='cuda' needs CUDA tensors.*\.cuda\(\)"):
        SparseProjector(10, 4, nnz=2, backend="cuda").project(torch.zeros(1, 10))
    with pytest.raises(ValueError, match="backend='cpp' handles CPU tensors only"):
        SparseProjector(10, 4, nnz=2, backend="cpp").project(torch.zeros(1, 10, device="cuda"))


# ---- backend selection and fallback -----------------------------------------------------------


def test_available_backends_reports_reference():
    backends = available_backends()
    assert backends["reference"] is True
    assert set(backends) == {"cpp", "cuda", "reference"}
    assert SparseProjector(10, 4, nnz=2).backend == ("cpp" if backends["cpp"] else "reference")


def test_auto_falls_back_to_reference_with_warning(monkeypatch):
    monkeypatch.setattr(sparse, "_load_extension", lambda kind: (None, "simulated build failure"))
    with pytest.warns(RuntimeWarning, match=r"simulated build failure.*reference.*Fix: build it"):
        proj = SparseProjector(300, 16, nnz=4, seed=1, backend="auto")
    assert proj.backend == "reference"
    x = torch.randn(2, 300, dtype=torch.float64)
    want = SparseProjector(300, 16, nnz=4, seed=1, backend="reference").project(x)
    torch.testing.assert_close(proj.project(x), want)
    with pytest.raises(ValueError, match=r"backend='cpp' requested.*simulated build failure"):
        SparseProjector(300, 16, nnz=4, backend="cpp")


def test_loader_reports_why_when_import_and_jit_are_unavailable(monkeypatch):
    def no_module(name, *args, **kwargs):
        raise ImportError(f"No module named {name!r} (simulated)")

    sparse._load_extension.cache_clear()
    monkeypatch.setattr(sparse.importlib, "import_module", no_module)
    monkeypatch.setenv("GRAPHTAG_NO_JIT", "1")
    try:
        module, why = sparse._load_extension("cpu")
        assert module is None
        assert "_sjlt_cpu" in why and "GRAPHTAG_NO_JIT" in why
    finally:
        sparse._load_extension.cache_clear()


def test_kronecker_outer_rows_equals_outer_per_level():
    """``project_outer_rows`` reads the ``(R, N, o)`` signals of a reverse pass over rows in
    levels (each sample-major) without copying them to ``project_outer``'s layout."""
    from graphtag.projection.kronecker import KroneckerProjector

    P = KroneckerProjector([(6, 5), (6,)], 64, nnz=2, seed=3)
    g = torch.Generator().manual_seed(4)
    B, R, sizes = 3, 4, [1, 2, 3]
    N = B * sum(sizes)
    delta = torch.randn(R, N, 6, generator=g, dtype=torch.float64)
    act = torch.randn(N, 5, generator=g, dtype=torch.float64)
    want, s = 0, 0
    for n in sizes:
        e = s + B * n
        d = delta[:, s:e].reshape(R, B, n, 6).transpose(0, 1)  # (B, R, n, o)
        want = want + P.project_outer(0, d, act[s:e].reshape(B, n, 5))
        s = e
    got = P.project_outer_rows(0, delta, act, sizes)
    assert got.shape == (B, R, 64) and torch.allclose(got, want)
    with pytest.raises(ValueError, match="do not split"):
        P.project_outer_rows(0, delta[:, :-1], act[:-1], sizes)
    with pytest.raises(ValueError, match="not a matrix"):
        P.project_outer_rows(1, delta, act, sizes)

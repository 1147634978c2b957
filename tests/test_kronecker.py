import itertools
import math

import pytest
import torch

from graphtag.projection.kronecker import KroneckerProjector, split_dim

SHAPES = [(6, 5), (6,), (4, 7), (3,)]


def _proj(**kw):
    return KroneckerProjector(SHAPES, kw.pop("out_dim", 64), nnz=kw.pop("nnz", 2),
                              seed=kw.pop("seed", 0))


def test_split_dim():
    assert split_dim(256) == (16, 16) and split_dim(200) == (10, 20) and split_dim(7) == (1, 7)
    with pytest.raises(ValueError, match="balanced factorisation"):
        KroneckerProjector(SHAPES, 14)


def test_adjoint_identity_and_chunks_add_up():
    P = _proj()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, P.in_dim, generator=g, dtype=torch.float64)
    y = torch.randn(3, 64, generator=g, dtype=torch.float64)
    px = P.project(x)
    assert torch.allclose((px * y).sum(), (x * P.transpose(y)).sum())
    # Chunks cutting through weight blocks still add up to the whole.
    cuts = [0, 7, 30, 31, 50, P.in_dim]
    parts = sum(P.project(x[:, a:b], offset=a) for a, b in itertools.pairwise(cuts))
    assert torch.allclose(parts, px)
    assert torch.allclose(P.transpose(y, offset=7, length=23), P.transpose(y)[:, 7:30])


def test_outer_product_sketch_equals_materialised_gradient():
    P = _proj()
    g = torch.Generator().manual_seed(1)
    delta = torch.randn(2, 3, 5, 6, generator=g, dtype=torch.float64)  # (B, R, n, o) for (6, 5)
    act = torch.randn(2, 5, 5, generator=g, dtype=torch.float64)       # (B, n, i)
    grad = torch.einsum("brno,bni->broi", delta, act)                   # materialised (o, i)
    want = P.project(grad.reshape(6, 30), offset=0).reshape(2, 3, 64)
    assert torch.allclose(P.project_outer(0, delta, act), want)
    with pytest.raises(ValueError, match="not a matrix"):
        P.project_outer(1, delta, act)


def test_seeded_and_norm_preserving():
    shapes = [(64, 48), (48,), (32, 64)]
    P = KroneckerProjector(shapes, 256, nnz=4, seed=3)
    Q = KroneckerProjector(shapes, 256, nnz=4, seed=3)
    R = KroneckerProjector(shapes, 256, nnz=4, seed=4)
    x = torch.randn(200, P.in_dim, generator=torch.Generator().manual_seed(2))
    px = P.project(x)
    assert torch.equal(px, Q.project(x)) and not torch.equal(px, R.project(x))
    ratio = px.pow(2).sum(1) / x.pow(2).sum(1)
    assert abs(float(ratio.mean()) - 1) < 0.05
    # Kronecker sketches concentrate less than plain SJLT: a looser, still failing-if-broken bound.
    assert float((ratio - 1).abs().max()) < 6 / math.sqrt(256) + 0.2


def test_bad_inputs():
    P = _proj()
    with pytest.raises(ValueError, match="exceeds in_dim"):
        P.project(torch.zeros(1, 10), offset=P.in_dim - 5)
    with pytest.raises(TypeError, match="float32 or float64"):
        P.project(torch.zeros(1, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="out_dim=64 columns"):
        P.transpose(torch.zeros(1, 10))

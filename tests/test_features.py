import numpy as np
import pytest
import torch

from graphtag.datasets import node_features


def _two_cliques(k=10):
    a = [(i, j) for i in range(k) for j in range(k) if i != j]
    b = [(i + k, j + k) for i, j in a]
    e = torch.tensor(a + b + [(0, k), (k, 0)]).T
    return e, 2 * k


@pytest.mark.parametrize(("kind", "width"), [("spectral", 8), ("degree", 4), ("random", 8),
                                            ("spectral+degree", 12)])
def test_shapes_and_determinism(kind, width):
    e, n = _two_cliques()
    a = node_features(e, n, kind, dim=8, seed=1)
    b = node_features(e, n, kind, dim=8, seed=1)
    assert a.shape == (n, width) and a.dtype == torch.float32
    assert torch.equal(a, b) and torch.isfinite(a).all()


def test_spectral_separates_communities():
    e, n = _two_cliques()
    x = node_features(e, n, "spectral", dim=2, seed=0).numpy()
    # Some leading coordinate splits the two cliques by sign.
    labels = np.repeat([0, 1], n // 2)
    sep = [abs(np.corrcoef(x[:, j], labels)[0, 1]) for j in range(x.shape[1])]
    assert max(sep) > 0.9


def test_bad_kind():
    e, n = _two_cliques()
    with pytest.raises(ValueError, match="not one of"):
        node_features(e, n, "magic")

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


def _connected_planted_graph(n=3000, seed=0):
    """A planted-cluster graph plus a ring (connected: eigenvalue 1 is simple)."""
    from torch_geometric.utils import to_undirected

    from graphtag.datasets import synthetic_communities

    s = synthetic_communities(n, 6, 3, avg_degree=10, seed=seed)
    ring = np.stack([np.arange(n), (np.arange(n) + 1) % n])
    e = torch.from_numpy(np.concatenate([s.edge_index, ring], 1))
    return to_undirected(e, num_nodes=n), n


def test_blocked_svd_agrees_with_sklearn():
    from sklearn.utils.extmath import randomized_svd

    from graphtag.datasets.features import _normalized_adjacency, blocked_randomized_svd

    e, n = _connected_planted_graph()
    a = _normalized_adjacency(e, n)
    u1, s1, _ = randomized_svd(a, 12, n_iter=6, random_state=0)
    u2, s2 = blocked_randomized_svd(a, 12, n_iter=6, seed=0)
    assert u2.shape == (n, 12) and u2.dtype == np.float32
    np.testing.assert_allclose(s2, s1, rtol=1e-4)
    assert (np.diff(s2) <= 1e-6).all()
    np.testing.assert_allclose(u2.T @ u2, np.eye(12), atol=1e-4)
    # Singular values that are well separated from their neighbours: the same vectors, signs.
    gap = np.minimum(np.abs(np.diff(s1, prepend=np.inf)), np.abs(np.diff(s1, append=-np.inf)))
    sep = np.flatnonzero(gap > 1e-2 * s1[0])
    assert sep.size >= 2
    cos = (u1[:, sep] * u2[:, sep]).sum(0)
    assert (cos > 0.999).all()
    # The blocked path fits A's top singular subspace as well as scikit-learn's does.
    np.testing.assert_allclose(np.linalg.norm(a @ u2, axis=0), s2, rtol=1e-3)


def test_blocked_svd_row_chunks_do_not_change_result(monkeypatch):
    import graphtag.datasets.features as feat

    e, n = _connected_planted_graph(seed=1)
    ref = feat.spectral_embedding(e, n, 8, seed=2, method="blocked")
    monkeypatch.setattr(feat, "_ROW_CHUNK", 257)
    chunked = feat.spectral_embedding(e, n, 8, seed=2, method="blocked")
    np.testing.assert_allclose(chunked, ref, atol=1e-4)
    again = feat.spectral_embedding(e, n, 8, seed=2, method="blocked")
    assert np.array_equal(again, chunked)  # deterministic given the seed


def test_spectral_method_auto_threshold(monkeypatch):
    import graphtag.datasets.features as feat

    e, n = _connected_planted_graph()
    sk = feat.spectral_embedding(e, n, 8, method="sklearn")
    assert np.array_equal(feat.spectral_embedding(e, n, 8), sk)  # below the threshold
    monkeypatch.setattr(feat, "BLOCKED_MIN_NNZ", 10)
    assert np.array_equal(feat.spectral_embedding(e, n, 8),
                          feat.spectral_embedding(e, n, 8, method="blocked"))
    with pytest.raises(ValueError, match="method"):
        feat.spectral_embedding(e, n, 8, method="arpack")

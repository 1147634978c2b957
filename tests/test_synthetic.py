import numpy as np
import pytest
import torch

from graphtag.datasets import SNAPCommunities, synthetic_communities


def test_generator_is_seeded_and_well_formed():
    a = synthetic_communities(3000, 12, 3, avg_degree=8, seed=5)
    b = synthetic_communities(3000, 12, 3, avg_degree=8, seed=5)
    c = synthetic_communities(3000, 12, 3, avg_degree=8, seed=6)
    assert np.array_equal(a.edge_index, b.edge_index)
    assert not np.array_equal(a.edge_index, c.edge_index)
    e = a.edge_index
    assert (e[0] < e[1]).all()  # no self-loops, canonical order
    assert np.unique(e[0] * 3000 + e[1]).size == e.shape[1]  # no duplicates
    assert 0.9 * 12000 <= e.shape[1] <= 12000  # ~ n * d / 2 after dedupe
    assert a.task_group.tolist() == [0] * 4 + [1] * 4 + [2] * 4


def test_planted_groups_share_members_and_edges_are_assortative():
    s = synthetic_communities(4000, 8, 2, avg_degree=10, seed=0)
    y = s.labels().astype(float)
    corr = np.corrcoef(y.T)
    same = corr[np.equal.outer(s.task_group, s.task_group) & ~np.eye(8, dtype=bool)]
    diff = corr[~np.equal.outer(s.task_group, s.task_group)]
    assert same.min() > 0.4 and diff.max() < 0.1
    # Edges mostly stay inside the cluster of their start node (p_in = 0.85).
    g0 = y[:, s.task_group == 0].max(1) > 0
    e = s.edge_index
    assert (g0[e[0]] == g0[e[1]]).mean() > 0.8


def test_write_snap_roundtrip(tmp_path):
    s = synthetic_communities(500, 6, 2, avg_degree=14, seed=1)
    s.write_snap(tmp_path / "syn" / "raw", "syn")
    ds = SNAPCommunities(tmp_path, "syn", num_tasks=6, induced=False, features="random",
                         num_features=4, log=False)
    d = ds[0]
    assert d.edge_index.size(1) == 2 * s.edge_index.shape[1]
    assert sorted(d.y.sum(0).tolist()) == sorted(len(c) for c in s.communities)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_groups"):
        synthetic_communities(100, 3, 5)


def _legacy_edges(num_nodes, num_groups, avg_degree, seed, p_in=0.85, overlap=0.1):
    """The single-block edge draw written out naively (reference for the blocked generator)."""
    rng = np.random.default_rng(seed)
    n = num_nodes
    primary = rng.integers(num_groups, size=n)
    second = np.where(rng.random(n) < overlap, rng.integers(num_groups, size=n), -1)
    # Members of cluster g: its primary nodes, then its secondary ones, each in id order.
    clusters = [np.concatenate([np.flatnonzero(primary == g), np.flatnonzero(second == g)])
                for g in range(num_groups)]
    m = round(n * avg_degree / 2)
    u = rng.integers(n, size=m)
    use_second = (second[u] >= 0) & (rng.random(m) < 0.5)
    cl = np.where(use_second, second[u], primary[u])
    r = rng.random(m)
    v_in = np.array([clusters[c][int(x * clusters[c].size)] for c, x in zip(cl, r, strict=True)])
    v = np.where(rng.random(m) < p_in, v_in, rng.integers(n, size=m))
    pairs = {(min(a, b), max(a, b)) for a, b in zip(u.tolist(), v.tolist(), strict=True) if a != b}
    return np.array(sorted(pairs)).T


def test_single_block_graph_matches_naive_reference():
    s = synthetic_communities(800, 6, 3, avg_degree=9, seed=4)
    assert np.array_equal(s.edge_index, _legacy_edges(800, 3, 9, 4))


def test_edges_do_not_depend_on_chunk_size(monkeypatch):
    import graphtag.datasets.synthetic as syn

    monkeypatch.setattr(syn, "EDGE_BLOCK", 997)  # many RNG blocks at a small size
    ref = syn.synthetic_communities(3000, 8, 4, avg_degree=12, seed=3, chunk_size=None)
    for chunk in (1, 500, 4096, 10**9):
        s = syn.synthetic_communities(3000, 8, 4, avg_degree=12, seed=3, chunk_size=chunk)
        assert np.array_equal(s.edge_index, ref.edge_index)
        assert len(s.communities) == len(ref.communities)
        assert all(map(np.array_equal, s.communities, ref.communities))
    e = ref.edge_index
    assert (e[0] < e[1]).all() and np.unique(e[0] * 3000 + e[1]).size == e.shape[1]
    assert 0.95 * 18000 <= e.shape[1] <= 18000
    # Blocks after the first draw from their own streams: another block size, another graph.
    monkeypatch.setattr(syn, "EDGE_BLOCK", 2000)
    other = syn.synthetic_communities(3000, 8, 4, avg_degree=12, seed=3)
    assert not np.array_equal(other.edge_index, ref.edge_index)


def test_multi_block_edges_stay_assortative(monkeypatch):
    import graphtag.datasets.synthetic as syn

    monkeypatch.setattr(syn, "EDGE_BLOCK", 1500)
    s = syn.synthetic_communities(4000, 8, 2, avg_degree=10, seed=0, chunk_size=2000)
    y = s.labels()
    g0 = y[:, s.task_group == 0].max(1) > 0
    e = s.edge_index
    assert (g0[e[0]] == g0[e[1]]).mean() > 0.8


def test_written_graph_loads_by_name(tmp_path):
    from graphtag.datasets import load_dataset

    s = synthetic_communities(600, 5, 2, avg_degree=10, seed=2)
    s.write_snap(tmp_path / "mygraph" / "raw", "mygraph", compresslevel=1)
    d = load_dataset("mygraph", tmp_path, num_tasks=5, features="degree", log=False)
    assert d.y.shape == (len(np.unique(np.concatenate(s.communities))), 5)
    assert sorted(d.y.sum(0).tolist()) == sorted(len(c) for c in s.communities)
    # Induced subgraph: every edge between two community members survives.
    members = np.zeros(600, bool)
    members[np.concatenate(s.communities)] = True
    kept = members[s.edge_index[0]] & members[s.edge_index[1]]
    assert d.edge_index.size(1) == 2 * int(kept.sum())
    assert np.loadtxt(tmp_path / "mygraph" / "raw" / "com-mygraph.groups.txt").tolist() == \
        s.task_group.tolist()


def test_processed_file_streams_and_reloads_equal(tmp_path):
    s = synthetic_communities(500, 4, 2, avg_degree=8, seed=3)
    s.write_snap(tmp_path / "g" / "raw", "g")
    first = SNAPCommunities(tmp_path, "g", num_tasks=4, features="degree", log=False)
    processed = list((tmp_path / "g" / "processed").iterdir())
    assert not [p for p in processed if p.name.endswith(".tmp")]
    again = SNAPCommunities(tmp_path, "g", num_tasks=4, features="degree", log=False)  # cached
    a, b = first[0], again[0]
    assert set(a.keys()) == set(b.keys())
    for k in a.keys():
        if isinstance(a[k], torch.Tensor):
            assert torch.equal(a[k], b[k]), k

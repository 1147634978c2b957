import numpy as np
import pytest

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

import numpy as np
import pytest
import torch

from graphtag.datasets import build_community_tasks, make_multitask_data, random_node_split

# Path 0-1-2-3-4-5 plus a chord 1-4; node 9 is isolated from communities.
EDGES = np.array([[0, 1, 2, 3, 4, 1, 5], [1, 2, 3, 4, 5, 4, 9]])


def test_dedupe_topk_and_labels():
    comms = [np.array([0, 1, 2]), np.array([2, 3]), np.array([0, 1, 2]), np.array([3, 4, 5, 1])]
    with pytest.warns(UserWarning, match=r"merged 1 duplicate"):
        t = build_community_tasks(EDGES, comms, 2)
    # Largest distinct first: [1,3,4,5] (size 4), then [0,1,2] (size 3); ties keep file order.
    assert t.community_index.tolist() == [3, 0]
    members = [set(t.node_ids[t.y[:, k] == 1].tolist()) for k in range(2)]
    assert members == [{1, 3, 4, 5}, {0, 1, 2}]


def test_induced_subgraph_keeps_only_member_edges():
    comms = [np.array([0, 1, 2]), np.array([4, 5])]
    t = build_community_tasks(EDGES, comms, 2, induced=True)
    assert t.node_ids.tolist() == [0, 1, 2, 4, 5]
    orig = {tuple(sorted(e)) for e in t.node_ids[t.edge_index].T.tolist()}
    assert orig == {(0, 1), (1, 2), (4, 5), (1, 4)}
    assert t.edge_index.max() < t.num_nodes
    full = build_community_tasks(EDGES, comms, 2, induced=False)
    assert full.num_nodes == 7 and full.edge_index.shape[1] == EDGES.shape[1]


def test_missing_member_ids_dropped_with_warning():
    comms = [np.array([0, 1, 77]), np.array([2, 3])]
    with pytest.warns(UserWarning, match=r"dropped 1 member id\(s\) absent from the graph"):
        t = build_community_tasks(EDGES, comms, 2)
    assert 77 not in t.node_ids


def test_community_with_only_missing_ids_dropped():
    comms = [np.array([70, 71]), np.array([2, 3])]
    with pytest.warns(UserWarning, match=r"dropped 1 communit"):
        t = build_community_tasks(EDGES, comms, 1)
    assert t.num_tasks == 1


def test_too_many_tasks_is_a_clear_error():
    comms = [np.array([0, 1]), np.array([0, 1]), np.array([2, 3])]
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=r"num_tasks=3 .* only 2"):
        build_community_tasks(EDGES, comms, 3)
    with pytest.raises(ValueError, match="num_tasks must be >= 1"):
        build_community_tasks(EDGES, comms, 0)


def test_split_disjoint_sizes_and_seeded():
    tr, va, te = random_node_split(1000, (0.6, 0.2, 0.2), seed=3)
    assert (tr & va).sum() == 0 and (tr & te).sum() == 0 and (va & te).sum() == 0
    assert (int(tr.sum()), int(va.sum()), int(te.sum())) == (600, 200, 200)
    tr2, _, _ = random_node_split(1000, (0.6, 0.2, 0.2), seed=3)
    tr3, _, _ = random_node_split(1000, (0.6, 0.2, 0.2), seed=4)
    assert torch.equal(tr, tr2) and not torch.equal(tr, tr3)
    with pytest.raises(ValueError, match="sum"):
        random_node_split(10, (0.8, 0.3, 0.1))


def test_make_data_warns_on_task_without_positive_in_a_split():
    ei = np.array([[0, 1, 2, 3], [1, 2, 3, 4]])
    y = np.zeros((5, 2), dtype=np.uint8)
    y[:, 0] = [1, 1, 1, 1, 1]
    y[0, 1] = 1  # a single positive cannot be in all three splits
    with pytest.warns(UserWarning, match=r"no positive node in"):
        d = make_multitask_data(ei, y, features="random", num_features=4, split=(0.4, 0.4, 0.2))
    assert d.y.shape == (5, 2) and d.edge_index.shape[1] == 8  # both directions


def test_label_mask_shape_checked():
    ei = np.array([[0, 1], [1, 2]])
    y = np.ones((3, 2), dtype=np.uint8)
    with pytest.raises(ValueError, match="label_mask shape"):
        make_multitask_data(ei, y, features="random", num_features=2, split=(1, 0, 0),
                            label_mask=np.ones((3, 3), bool))


@pytest.mark.parametrize("induced", [True, False])
def test_lookup_table_and_binary_search_relabelling_agree(induced):
    # Small ids take the lookup-table path; the same graph with ids spread over 10**12 takes
    # the binary-search path. Both must give the same tasks up to the id map.
    rng = np.random.default_rng(0)
    e = rng.integers(0, 300, size=(2, 2000))
    e = e[:, e[0] != e[1]]
    comms = [rng.choice(300, size=rng.integers(5, 60), replace=False) for _ in range(12)]
    spread = np.sort(rng.choice(10**12, size=300, replace=False))
    a = build_community_tasks(e, comms, 8, induced=induced)
    b = build_community_tasks(spread[e], [spread[c] for c in comms], 8, induced=induced)
    assert np.array_equal(spread[a.node_ids], b.node_ids)
    assert np.array_equal(a.edge_index, b.edge_index) and np.array_equal(a.y, b.y)
    assert np.array_equal(a.community_index, b.community_index)
    # Labels are the chosen communities (restricted to the graph), edges relabel correctly.
    for k, ci in enumerate(a.community_index):
        want = set(comms[ci].tolist()) & set(np.unique(e).tolist())
        assert set(a.node_ids[a.y[:, k] == 1].tolist()) == want
    orig = a.node_ids[a.edge_index]
    if induced:
        keep = np.isin(e[0], a.node_ids) & np.isin(e[1], a.node_ids)
        assert np.array_equal(orig, e[:, keep])
    else:
        assert np.array_equal(orig, e)


def testpositives_per_task_chunked_equals_masked_sum():
    from graphtag.datasets.tasks import positives_per_task

    g = torch.Generator().manual_seed(0)
    y = (torch.rand(1000, 7, generator=g) < 0.1).float()
    m = torch.rand(1000, generator=g) < 0.3
    lm = torch.rand(1000, 7, generator=g) < 0.8
    for chunk in (1, 33, 4096):
        assert torch.equal(positives_per_task(y, m, None, chunk), y[m].sum(0).double())
        assert torch.equal(positives_per_task(y, m, lm, chunk), (y[m] * lm[m]).sum(0).double())

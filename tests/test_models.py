import pytest
import torch
from torch_sparse import SparseTensor

from graphtag.models import SIGN, GroupedHeads, MultitaskGNN, build_model, sign_propagate


def _graph(n=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, 120), generator=g)
    ei = torch.cat([ei, ei.flip(0)], 1)
    return torch.randn(n, 8, generator=g), ei


@pytest.mark.parametrize("conv", ["sage", "gcn", "gin"])
def test_gnn_shapes_and_layerwise_inference_matches_forward(conv):
    x, ei = _graph()
    torch.manual_seed(0)
    m = MultitaskGNN(8, 16, num_tasks=5, num_layers=2, conv=conv).eval()
    out = m(x, ei)
    assert out.shape == (30, 5)
    adj_t = SparseTensor.from_edge_index(ei, sparse_sizes=(30, 30)).t()
    assert torch.allclose(m.inference(x, adj_t), out, atol=1e-5)


def test_grouped_heads_return_task_order():
    h = torch.randn(4, 6)
    groups = [[3, 0], [1], [4, 2]]
    heads = GroupedHeads(6, groups)
    out = heads(h)
    assert out.shape == (4, 5)
    # Column t must be produced by the head of t's group at t's position in that group.
    w = heads.heads[0].weight  # group [3, 0]
    b = heads.heads[0].bias
    assert torch.allclose(out[:, 3], h @ w[0] + b[0])
    assert torch.allclose(out[:, 0], h @ w[1] + b[1])
    mlp = GroupedHeads(6, groups, hidden_channels=8)
    assert mlp(h).shape == (4, 5)


@pytest.mark.parametrize("groups", [[[0, 1], [1, 2]], [[0, 2]], [[], [0]]])
def test_grouped_heads_reject_non_partitions(groups):
    with pytest.raises(ValueError, match="groups"):
        GroupedHeads(4, groups)


def test_model_with_grouped_heads_plugs_into_gnn():
    x, ei = _graph()
    m = MultitaskGNN(8, 16, head=GroupedHeads(16, [[0, 2], [1]]))
    assert m.num_tasks == 3 and m(x, ei).shape == (30, 3)


def test_sign_propagate_matches_dense_formula():
    x, ei = _graph(12)
    ei = torch.unique(ei, dim=1)
    ei = ei[:, ei[0] != ei[1]]
    xs = sign_propagate(x, ei, num_hops=2)
    a = torch.zeros(12, 12)
    a[ei[0], ei[1]] = 1.0
    a = a + torch.eye(12)
    d = a.sum(1).pow(-0.5)
    an = d[:, None] * a * d[None, :]
    assert xs.shape == (12, 3, 8)
    assert torch.allclose(xs[:, 1], an @ x, atol=1e-5)
    assert torch.allclose(xs[:, 2], an @ an @ x, atol=1e-5)


def test_sign_model_checks_input_shape():
    m = SIGN(8, 16, num_tasks=4, num_hops=2)
    assert m(torch.randn(5, 3, 8)).shape == (5, 4)
    with pytest.raises(ValueError, match="sign_propagate"):
        m(torch.randn(5, 2, 8))


def test_build_model_names():
    assert isinstance(build_model("sign", 8, 3), SIGN)
    assert isinstance(build_model("gin", 8, 3), MultitaskGNN)
    with pytest.raises(ValueError, match="not one of"):
        build_model("transformer", 8, 3)

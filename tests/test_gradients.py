import numpy as np
import pytest
import torch

from graphtag.datasets import synthetic_communities
from graphtag.gradients import (
    GradientModel,
    GradientStore,
    StoreMismatchError,
    collect_gradients,
    csr_from_edge_index,
    kronecker_projector,
    per_sample_gradients_loop,
    sample_trees,
)
from graphtag.gradients import persample as persample_module
from graphtag.models import SIGN, MultitaskGNN
from graphtag.projection import SparseProjector


@pytest.fixture(scope="module")
def data():
    d = synthetic_communities(300, 6, 2, avg_degree=5, seed=0).to_data(features="random",
                                                                      num_features=8)
    # One isolated node exercises the masked (empty) aggregation.
    keep = (d.edge_index != 299).all(0)
    d.edge_index = d.edge_index[:, keep]
    return d


def _params(model):
    return sum(p.numel() for p in model.parameters())


def test_trees_are_real_neighbours_and_seeded(data):
    rowptr, col = csr_from_edge_index(data.edge_index, data.num_nodes)
    seeds = torch.tensor([0, 5, 299])
    t1 = sample_trees(rowptr, col, seeds, (4, 3), torch.Generator().manual_seed(1))
    t2 = sample_trees(rowptr, col, seeds, (4, 3), torch.Generator().manual_seed(1))
    assert [n.shape for n in t1.nodes] == [(3,), (3, 4), (3, 4, 3)]
    assert all(torch.equal(a, b) for a, b in zip(t1.nodes, t2.nodes, strict=True))
    adj = set(map(tuple, data.edge_index.T.tolist()))
    parents = t1.nodes[0][:, None].expand(-1, 4)
    for p, c, m in zip(parents.flatten(), t1.nodes[1].flatten(), t1.mask[1].flatten(),
                       strict=True):
        if m:
            assert (int(p), int(c)) in adj
    assert not t1.mask[1][2].any() and not t1.mask[2][2].any()  # isolated seed 299


@pytest.mark.parametrize("strategy", ["encoder", "per_task"])
@pytest.mark.parametrize("kind", ["sage2", "sage3", "sign"])
def test_vectorised_equals_per_sample_loop(data, kind, strategy):
    torch.manual_seed(0)
    if kind == "sign":
        model = SIGN(8, 5, 6, num_hops=2)
        fan = None
    else:
        layers = int(kind[-1])
        model = MultitaskGNN(8, 5, 6, num_layers=layers)
        fan = (3,) * layers
    gm = GradientModel(model, data, fan)
    P = SparseProjector(gm.num_params, 24, nnz=4, seed=3)
    inp = gm.inputs(torch.tensor([0, 1, 2, 299, 17]), torch.Generator().manual_seed(0))
    got = gm.projected_gradients(inp, P, strategy=strategy)
    full = per_sample_gradients_loop(gm, inp)  # (B, T, p), one autograd.grad each
    want = P.project(full.reshape(-1, gm.num_params)).reshape(got.shape)
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-4)
    # Bounded memory: one sample's Jacobian at a time gives the same numbers.
    tiny = gm.projected_gradients(inp, P, strategy=strategy, max_jacobian_mb=1e-9)
    assert torch.allclose(tiny, got, atol=1e-6)
    # The base logits come from the same trees.
    with torch.no_grad():
        if kind == "sign":
            ref = model(inp[0][:, 0])
        else:
            ref = torch.stack([model(data.x[ids], ei)[0] for ids, ei in
                               (inp[2].tree_graph(i) for i in range(5))])
    assert torch.allclose(gm.logits(inp), ref, atol=1e-5)


@pytest.mark.parametrize("hidden", [6, 3])  # T = 6 tasks: per-task path, embedding path
@pytest.mark.parametrize("kind", ["sage2", "sage3", "sign"])
def test_factored_equals_loop_with_the_same_kronecker_projector(data, kind, hidden):
    torch.manual_seed(1)
    if kind == "sign":
        model, fan = SIGN(8, hidden, 6, num_hops=2), None
    else:
        layers = int(kind[-1])
        model, fan = MultitaskGNN(8, hidden, 6, num_layers=layers), (3,) * layers
    gm = GradientModel(model, data, fan)
    P = kronecker_projector(model, 64, nnz=2, seed=5)
    inp = gm.inputs(torch.tensor([3, 299, 8, 9]), torch.Generator().manual_seed(2))
    got = gm.projected_gradients(inp, P)  # auto -> factored: no weight gradient materialised
    full = per_sample_gradients_loop(gm, inp)
    want = P.project(full.reshape(-1, gm.num_params)).reshape(got.shape)
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="KroneckerProjector"):
        gm.projected_gradients(inp, P, strategy="per_task")


def _store(data, model, P, path, **kw):
    return collect_gradients(model, data, torch.arange(40), P, path, fanouts=(3, 2),
                             chunk_size=16, batch_size=5, seed=7, progress=False, **kw)


def test_store_equals_projected_loop(data, tmp_path):
    torch.manual_seed(0)
    model = MultitaskGNN(8, 4, 6)
    P = SparseProjector(_params(model), 16, nnz=2, seed=0)
    st = _store(data, model, P, tmp_path / "s")
    assert isinstance(st, GradientStore) and st.grads.shape == (40, 6, 16)
    gm = GradientModel(model, data, (3, 2))
    # Chunk 1 covers nodes 16..31; its trees come from the chunk's own seed.
    gen = torch.Generator().manual_seed(7 * 1_000_003 + 1)
    inp = gm.inputs(torch.arange(16, 21), gen)
    full = per_sample_gradients_loop(gm, inp)
    want = P.project(full.reshape(-1, gm.num_params)).reshape(5, 6, 16)
    assert np.allclose(st.grads[16:21], want.numpy(), atol=1e-5)
    assert np.array_equal(st.labels, data.y[:40].numpy().astype(np.int8))
    assert st.manifest["complete"] and st.manifest["projector"]["seed"] == 0


def test_resume_after_crash_gives_the_same_store(data, tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = MultitaskGNN(8, 4, 6)
    P = SparseProjector(_params(model), 16, nnz=2, seed=0)
    whole = _store(data, model, P, tmp_path / "whole")

    calls = {"n": 0}
    orig = persample_module.GradientModel.projected_gradients

    def crash(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 6:  # inside the second chunk
            raise KeyboardInterrupt
        return orig(self, *a, **k)

    monkeypatch.setattr(persample_module.GradientModel, "projected_gradients", crash)
    with pytest.raises(KeyboardInterrupt):
        _store(data, model, P, tmp_path / "crashed")
    with pytest.raises(RuntimeError, match="incomplete"):
        GradientStore(tmp_path / "crashed")
    monkeypatch.setattr(persample_module.GradientModel, "projected_gradients", orig)
    resumed = _store(data, model, P, tmp_path / "crashed")
    for k in ("grads", "logits", "labels", "nodes"):
        assert np.array_equal(getattr(resumed, k), getattr(whole, k)), k


def test_mismatched_store_is_refused(data, tmp_path):
    torch.manual_seed(0)
    model = MultitaskGNN(8, 4, 6)
    _store(data, model, SparseProjector(_params(model), 16, nnz=2, seed=0), tmp_path / "s")
    with pytest.raises(StoreMismatchError, match="projector"):
        _store(data, model, SparseProjector(_params(model), 16, nnz=2, seed=1), tmp_path / "s")
    with torch.no_grad():
        model.head.lin.bias.add_(1.0)
    with pytest.raises(StoreMismatchError, match="model_sha256"):
        _store(data, model, SparseProjector(_params(model), 16, nnz=2, seed=0), tmp_path / "s")


def test_bad_inputs(data, tmp_path):
    class Embedded(torch.nn.Module):  # most weights outside linear layers
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Parameter(torch.zeros(300, 20))
            self.head = torch.nn.Linear(20, 6)

        def forward(self, x, edge_index):
            return self.head(self.emb[: x.shape[0]])

    with pytest.raises(ValueError, match="outside linear layers"):
        GradientModel(Embedded(), data)
    sage = MultitaskGNN(8, 4, 6)
    with pytest.raises(ValueError, match="in_dim"):
        _store(data, sage, SparseProjector(10, 4, nnz=2), tmp_path / "x")
    with pytest.raises(ValueError, match="one entry per layer"):
        GradientModel(sage, data, fanouts=(3,))

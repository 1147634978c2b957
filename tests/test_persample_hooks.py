"""Per-sample gradients read off the model's own forward pass (graphtag.gradients.hooks),
checked against one autograd.grad per (sample, task) on each sample's tree run on its own."""

import numpy as np
import pytest
import torch
from torch import nn
from torch_geometric.nn import GCNConv, SAGEConv
from torch_geometric.nn.dense.linear import Linear as PygLinear

from graphtag.datasets import synthetic_communities
from graphtag.gradients import (
    GradientModel,
    collect_gradients,
    kronecker_projector,
    per_sample_gradients_loop,
)
from graphtag.gradients.hooks import is_linear
from graphtag.models import SIGN, MultitaskGNN
from graphtag.projection import SparseProjector


@pytest.fixture(scope="module")
def data():
    d = synthetic_communities(300, 6, 2, avg_degree=5, seed=0).to_data(features="random",
                                                                      num_features=8)
    keep = (d.edge_index != 299).all(0)  # an isolated node: empty aggregations
    d.edge_index = d.edge_index[:, keep]
    return d


class TwoGCN(nn.Module):
    """A user model: two GCNConv layers and a linear head, no MultiLabelHead."""

    def __init__(self, hidden=5, tasks=6):
        super().__init__()
        self.c1, self.c2 = GCNConv(8, hidden), GCNConv(hidden, hidden)
        self.out = nn.Linear(hidden, tasks)

    def forward(self, x, edge_index):
        return self.out(self.c2(self.c1(x, edge_index).relu(), edge_index).relu())


class SkipSAGE(nn.Module):
    """A user model with a residual connection and PyG Linear layers (no trimming)."""

    def __init__(self, hidden=5, tasks=6):
        super().__init__()
        self.inp = PygLinear(8, hidden)
        self.c1, self.c2 = SAGEConv(hidden, hidden), SAGEConv(hidden, hidden)
        self.out = PygLinear(hidden, tasks)

    def forward(self, x, edge_index):
        h = self.inp(x).relu()
        h = h + self.c1(h, edge_index).relu()
        return self.out(self.c2(h, edge_index).relu())


def _model(kind, hidden):
    torch.manual_seed(0)
    if kind == "sign":
        m = SIGN(8, hidden, 6, num_hops=2)
    elif kind == "user_gcn":
        m = TwoGCN(hidden)
    elif kind == "user_skip":
        m = SkipSAGE(hidden)
    else:
        m = MultitaskGNN(8, hidden, 6, num_layers=2, conv=kind)
    with torch.no_grad():  # away from the initialisation (GIN's eps = 0, zero biases)
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return m


KINDS = ["sage", "gcn", "gin", "sign", "user_gcn", "user_skip"]


@pytest.mark.parametrize("hidden", [5, 3])  # T = 6 tasks: logits signals, embedding signals
@pytest.mark.parametrize("kind", KINDS)
def test_factored_equals_autograd_loop(data, kind, hidden):
    m = _model(kind, hidden)
    gm = GradientModel(m, data, None if kind == "sign" else (3, 2))
    inp = gm.inputs(torch.tensor([0, 1, 2, 299, 17]), torch.Generator().manual_seed(0))
    full = per_sample_gradients_loop(gm, inp)  # (B, T, p): one autograd.grad each
    P = kronecker_projector(m, 64, nnz=2, seed=5)
    got = gm.projected_gradients(inp, P)
    want = P.project(full.reshape(-1, gm.num_params)).reshape(got.shape)
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-4)
    # the exact-SJLT paths read the same factors
    S = SparseProjector(gm.num_params, 24, nnz=4, seed=3)
    want_s = S.project(full.reshape(-1, gm.num_params)).reshape(5, 6, 24)
    for strategy in ("encoder", "per_task"):
        g = gm.projected_gradients(inp, S, strategy=strategy)
        assert torch.allclose(g, want_s, atol=1e-5, rtol=1e-4), strategy
    # logits on the same trees
    if kind != "sign":
        ref = torch.stack([m(data.x[ids], ei)[0] for ids, ei in
                           (inp[2].tree_graph(i) for i in range(5))])
        assert torch.allclose(gm.logits(inp), ref, atol=1e-5)


def test_trimming_is_used_only_where_exact(data):
    seen = {}
    for kind in ("sage", "gin", "gcn", "user_skip"):
        gm = GradientModel(_model(kind, 5), data, (3, 2))
        inp = gm.inputs(torch.arange(4), torch.Generator().manual_seed(0))
        gm.projected_gradients(inp, kronecker_projector(gm.model, 64, nnz=2))
        seen[kind] = gm._trim or None
    # GCN normalises by in-degrees that trimming changes; the residual model's shapes break
    assert seen == {"sage": "pair", "gin": "pair", "gcn": None, "user_skip": None}


@pytest.mark.parametrize("kind", ["gcn", "gin"])
def test_shared_only_projector_leaves_out_the_head(data, kind):
    m = _model(kind, 5)
    gm = GradientModel(m, data, (3, 2))
    inp = gm.inputs(torch.tensor([4, 5, 6]), torch.Generator().manual_seed(1))
    P = kronecker_projector(m, 64, nnz=2, seed=1, shared_only=True)
    got = gm.projected_gradients(inp, P)
    full = per_sample_gradients_loop(gm, inp)[..., : gm.num_shared_params]
    want = P.project(full.reshape(-1, gm.num_shared_params)).reshape(got.shape)
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("kind", ["gcn", "gin", "user_gcn"])
def test_store_for_models_beyond_sage_and_sign(data, kind, tmp_path):
    m = _model(kind, 4)
    P = kronecker_projector(m, 64, nnz=2, seed=0)
    st = collect_gradients(m, data, torch.arange(12), P, tmp_path / kind, fanouts=(3, 2),
                           chunk_size=8, batch_size=5, seed=7, progress=False)
    assert st.grads.shape == (12, 6, 64) and st.manifest["fanouts"] == [3, 2]
    gm = GradientModel(m, data, (3, 2))
    gen = torch.Generator().manual_seed(7 * 1_000_003 + 1)  # chunk 1: nodes 8..11
    inp = gm.inputs(torch.arange(8, 12), gen)
    full = per_sample_gradients_loop(gm, inp)
    want = P.project(full.reshape(-1, gm.num_params)).reshape(4, 6, 64)
    assert np.allclose(st.grads[8:12], want.numpy(), atol=1e-5)


class InplaceMLP(nn.Module):
    """A user model over independent rows whose first linear output is modified in place."""

    uses_graph = False

    def __init__(self, hidden=5, tasks=6):
        super().__init__()
        self.l1, self.out = nn.Linear(8, hidden), nn.Linear(hidden, tasks)

    def forward(self, x):
        h = self.l1(x)
        h.relu_()
        return self.out(h)


def test_layer_output_modified_in_place(data):
    # the probe's graph cannot give the signal at l1's output (relu_ replaced it), so the
    # perturbation pass runs instead
    torch.manual_seed(0)
    m = InplaceMLP()
    gm = GradientModel(m, data)
    inp = gm.inputs(torch.tensor([0, 3, 7, 299]))
    full = per_sample_gradients_loop(gm, inp)
    P = kronecker_projector(m, 64, nnz=2, seed=2)
    got = gm.projected_gradients(inp, P)
    want = P.project(full.reshape(-1, gm.num_params)).reshape(got.shape)
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-4)


def test_pyg_linear_counts_as_linear():
    assert is_linear(PygLinear(3, 4)) and is_linear(nn.Linear(3, 4))
    assert not is_linear(GCNConv(3, 4))


@pytest.mark.parametrize("model", ["gcn", "gin"])
def test_graphtag_run_takes_gradients_of_gcn_and_gin(model, tmp_path):
    from graphtag.config import RunConfig
    from graphtag.pipeline.run import run_pipeline

    cfg = RunConfig(dataset="synthetic", num_tasks=6, num_features=8, model=model,
                    hidden_channels=8, epochs=2, patience=None, num_subsets=20, subset_size=3,
                    proj_dim=16, num_groups=2, max_fit_nodes=60, max_score_nodes=40,
                    grad_fanouts=(3, 2), methods=("gradtag",), root=str(tmp_path / "data"))
    rep = run_pipeline(cfg, tmp_path / "run", progress=False)
    assert sorted(t for g in rep["groups"]["gradtag"] for t in g) == list(range(6))

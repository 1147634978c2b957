import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from graphtag.datasets import synthetic_communities
from graphtag.models import SIGN, GroupedHeads, MultiLabelHead, MultitaskGNN
from graphtag.optim import (
    COMBINERS,
    MTGD,
    EqualWeighting,
    FairGrad,
    GradProj,
    GramCombiner,
    LossCombiner,
    PCGrad,
    fairgrad_weights,
    gradproj_weights,
    gram_matrix,
    make_combiner,
    mtgd_step,
    pcgrad_coefficients,
    pcgrad_order,
    task_jacobian,
    transfer_matrix,
)
from graphtag.training import Trainer

D64 = torch.float64


# ----------------------------------------------------------------------------- helpers
def _linear_update(combiner: LossCombiner, J: torch.Tensor) -> torch.Tensor:
    """Shared update of ``combiner`` when task k's loss is ``J[k] . theta`` (gradient J[k])."""
    theta = nn.Parameter(torch.zeros(J.size(1), dtype=J.dtype))
    losses = J @ theta
    combiner.backward(losses, [theta])
    return theta.grad


def _naive_pcgrad(J: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """PCGrad as written in the paper, on p-dimensional vectors."""
    out = []
    for i in range(J.size(0)):
        g = J[i].clone()
        for j in order[i].tolist():
            dot = g @ J[j]
            if dot < 0 and J[j] @ J[j] > 0:
                g = g - dot / (J[j] @ J[j]) * J[j]
        out.append(g)
    return torch.stack(out)


def _rand_J(K, p, seed=0, scale=True):
    g = torch.Generator().manual_seed(seed)
    J = torch.randn(K, p, generator=g, dtype=D64)
    if scale:  # unequal gradient norms
        J = J * (0.2 + 3 * torch.rand(K, 1, generator=g, dtype=D64))
    return J


def _fixed_point_error(G, w, alpha, ridge=0.0):
    Gr = G + ridge * G.diagonal().mean() * torch.eye(G.size(0), dtype=G.dtype)
    rhs = w.pow(-1.0 / alpha)
    return float(((Gr @ w - rhs).abs() / rhs).max())


class _TinyModel(nn.Module):
    """encoder -> rep (B, H) -> linear head: per-task losses are masked-free BCEs."""

    def __init__(self, d=5, h=4, k=3):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(d, h), nn.Tanh(), nn.Linear(h, h))
        self.head = nn.Linear(h, k)

    def losses(self, x, y):
        rep = self.encoder(x)
        out = self.head(rep)
        return F.binary_cross_entropy_with_logits(out, y, reduction="none").mean(0), rep


def _tiny_batch(seed=0, n=7, d=5, k=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=D64)
    y = (torch.rand(n, k, generator=g) > 0.5).to(D64)
    return x, y


# ----------------------------------------------------------------------------- registry
def test_registry_builds_every_combiner_and_rejects_unknown_names():
    assert set(COMBINERS) == {"equal", "pcgrad", "fairgrad", "mtgd", "gradproj"}
    for name, cls in COMBINERS.items():
        assert type(make_combiner(name)) is cls
    assert make_combiner(" FairGrad ", alpha=1.0).alpha == 1.0
    with pytest.raises(ValueError, match="equal, pcgrad, fairgrad, mtgd, gradproj"):
        make_combiner("mgda")
    with pytest.raises(TypeError, match="pcgrad"):
        make_combiner("pcgrad", alpha=2.0)
    assert make_combiner("pcgrad", rep_grad=True).needs_representation
    assert not EqualWeighting.needs_representation


# ----------------------------------------------------------------------------- Jacobian
@pytest.mark.parametrize("chunk", [1, 2, None])
def test_task_jacobian_matches_one_backward_per_task(chunk):
    torch.manual_seed(0)
    model = _TinyModel().double()
    x, y = _tiny_batch()
    losses, rep = model.losses(x, y)
    params = list(model.encoder.parameters())
    J = task_jacobian(losses, params, chunk_size=chunk)
    for k in range(3):
        gk = torch.autograd.grad(losses[k], params, retain_graph=True)
        assert torch.allclose(J[k], torch.cat([g.reshape(-1) for g in gk]), atol=1e-12)
    Jr = task_jacobian(losses, [rep], chunk_size=chunk)
    assert Jr.shape == (3, rep.numel())
    assert torch.allclose(gram_matrix(J), J @ J.T)


# ----------------------------------------------------------------------------- equal
def test_equal_weighting_is_the_plain_sum():
    torch.manual_seed(0)
    model = _TinyModel().double()
    x, y = _tiny_batch()
    losses, _ = model.losses(x, y)
    total = EqualWeighting().backward(losses, list(model.encoder.parameters()))
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    losses, _ = model.losses(x, y)
    losses.sum().backward()
    assert math.isclose(float(total), float(losses.sum().detach()))
    assert all(torch.equal(a, p.grad) for a, p in zip(got, model.parameters(), strict=True))


# ----------------------------------------------------------------------------- hand cases
ORTHO = torch.tensor([[2.0, 0.0], [0.0, 1.0]], dtype=D64)
OPPOSITE = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=D64)
ANGLED = torch.tensor([[1.0, 0.0], [-1.0, 1.0]], dtype=D64)
THREE = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 1.0]], dtype=D64)


def test_pcgrad_hand_cases():
    # No conflict: untouched, the plain sum.
    assert torch.allclose(_linear_update(PCGrad(seed=0), ORTHO),
                          torch.tensor([2.0, 1.0], dtype=D64))
    # Exactly opposite: each is projected onto the other's normal plane, i.e. to zero.
    assert torch.allclose(_linear_update(PCGrad(seed=0), OPPOSITE), torch.zeros(2, dtype=D64))
    # g1 - (g1.g2/|g2|^2) g2 = (1/2, 1/2); g2 - (g2.g1/|g1|^2) g1 = (0, 1).
    assert torch.allclose(_linear_update(PCGrad(seed=0), ANGLED),
                          torch.tensor([0.5, 1.5], dtype=D64))
    # Only tasks 0 and 2 conflict (whatever the order): (1/2, 1/2) + (0, 1) + (0, 1).
    for seed in range(4):
        assert torch.allclose(_linear_update(PCGrad(seed=seed), THREE),
                              torch.tensor([0.5, 2.5], dtype=D64))


def test_fairgrad_hand_cases():
    # Orthogonal: G diagonal, w_i = G_ii^(-alpha/(1+alpha)); alpha = 1 gives w_i ||g_i|| = 1.
    w = fairgrad_weights(ORTHO @ ORTHO.T, alpha=1.0, ridge=0.0)
    assert torch.allclose(w, torch.tensor([0.5, 1.0], dtype=D64), atol=1e-10)
    assert torch.allclose(_linear_update(FairGrad(1.0, ridge=0.0), ORTHO),
                          torch.tensor([1.0, 1.0], dtype=D64), atol=1e-10)
    w2 = fairgrad_weights(ORTHO @ ORTHO.T, alpha=2.0, ridge=0.0)
    assert torch.allclose(w2, torch.tensor([4.0 ** (-2 / 3), 1.0], dtype=D64), atol=1e-10)
    # Opposite: singular G, no exact solution; with the ridge r the symmetric solution is
    # w = (r s)^(-alpha/(1+alpha)) for both (s = mean diag = 1) and the update cancels.
    c = FairGrad(2.0, ridge=1e-2)
    assert torch.allclose(_linear_update(c, OPPOSITE), torch.zeros(2, dtype=D64), atol=1e-10)
    assert torch.allclose(c.last_weights_, torch.full((2,), 1e-2 ** (-2 / 3), dtype=D64))
    # Three mixed (g3 conflicts with g1): positive weights at the fixed point.
    G = THREE @ THREE.T
    w3 = fairgrad_weights(G, 2.0, ridge=0.0)
    assert (w3 > 0).all() and _fixed_point_error(G, w3, 2.0) < 1e-9


def test_gradproj_hand_cases():
    # d = e1 + e2 makes the same angle with both: equal weights, the plain sum.
    assert torch.allclose(_linear_update(GradProj(), ORTHO), torch.tensor([2.0, 1.0], dtype=D64))
    # d = 0: fallback to equal weights, whose sum cancels.
    c = GradProj()
    assert torch.allclose(_linear_update(c, OPPOSITE), torch.zeros(2, dtype=D64))
    assert torch.allclose(c.last_weights_, torch.ones(2, dtype=D64))
    # (1,0), (0,1), (-1,0): d = (0,1); only task 1 projects positively and takes all K = 3.
    J = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=D64)
    c = GradProj()
    assert torch.allclose(_linear_update(c, J), torch.tensor([0.0, 3.0], dtype=D64))
    assert torch.allclose(c.last_weights_, torch.tensor([0.0, 3.0, 0.0], dtype=D64))
    # THREE: d = (1,0) + (0,1) + (-1,1)/sqrt2; cosines computed by hand.
    d = torch.tensor([1 - 2**-0.5, 1 + 2**-0.5], dtype=D64)
    cos = (THREE @ d) / (THREE.norm(dim=1) * d.norm())
    want = 3 * cos.clamp_min(0) / cos.clamp_min(0).sum()
    assert torch.allclose(gradproj_weights(THREE @ THREE.T), want)
    # direction="sum": d = sum g = (0, 2); cosines (0, 1, 1/sqrt2).
    c = torch.tensor([0.0, 1.0, 2**-0.5], dtype=D64)
    assert torch.allclose(gradproj_weights(THREE @ THREE.T, "sum"), 3 * c / c.sum())


def test_mtgd_hand_cases():
    # transfer = 0: M = I, the consensus update is the plain sum.
    assert torch.allclose(_linear_update(MTGD(0.0), ANGLED), ANGLED.sum(0))
    # Given M: shared update sum_j (sum_k M_kj) g_j = 0.5 g1 + 1.5 g2.
    M = torch.tensor([[0.5, 0.5], [0.0, 1.0]], dtype=D64)
    c = MTGD(transfer_matrix=M)
    assert torch.allclose(_linear_update(c, ANGLED), 0.5 * ANGLED[0] + 1.5 * ANGLED[1])
    assert torch.allclose(c.transfer_, M)


def test_equal_weighting_hand_cases():
    for J in (ORTHO, OPPOSITE, THREE):
        assert torch.allclose(_linear_update(EqualWeighting(), J), J.sum(0))


# ----------------------------------------------------------------------------- PCGrad
@pytest.mark.parametrize(("K", "p"), [(2, 3), (5, 4), (17, 40), (30, 10)])
def test_pcgrad_gram_space_equals_naive_reference(K, p):
    J = _rand_J(K, p, seed=K)
    order = pcgrad_order(K, torch.Generator().manual_seed(1))
    C = pcgrad_coefficients(J @ J.T, order=order)
    ref = _naive_pcgrad(J, order)
    assert torch.allclose(C @ J, ref, atol=1e-9)
    assert torch.allclose(C.sum(0) @ J, ref.sum(0), atol=1e-9)
    # The last projection of every task leaves it non-conflicting with that original gradient.
    last = order[:, -1]
    assert ((C @ J * J[last]).sum(1) >= -1e-9).all()


def test_pcgrad_two_tasks_end_without_conflict_and_order_is_a_permutation():
    for seed in range(20):
        J = _rand_J(2, 3, seed=seed)
        pc = pcgrad_coefficients(J @ J.T, generator=torch.Generator().manual_seed(seed)) @ J
        assert pc[0] @ J[1] >= -1e-9 and pc[1] @ J[0] >= -1e-9
    order = pcgrad_order(6, torch.Generator().manual_seed(0))
    for i in range(6):
        assert sorted(order[i].tolist()) == [j for j in range(6) if j != i]


def test_pcgrad_zero_gradient_and_determinism():
    J = _rand_J(6, 4, seed=3)
    J[2] = 0
    C = pcgrad_coefficients(J @ J.T, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(C).all() and torch.equal(C[:, 2], torch.eye(6, dtype=D64)[:, 2])
    a = PCGrad(seed=7).weights(J @ J.T)
    b = PCGrad(seed=7).weights(J @ J.T)
    assert torch.equal(a, b)
    J = _rand_J(12, 5, seed=4)
    ws = {tuple(PCGrad(seed=s).weights(J @ J.T).tolist()) for s in range(5)}
    assert len(ws) > 1  # the order matters when there are chains of conflicts


# ----------------------------------------------------------------------------- FairGrad
@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 5.0])
@pytest.mark.parametrize(("K", "p"), [(3, 10), (20, 60), (100, 300)])
def test_fairgrad_fixed_point(alpha, K, p):
    J = _rand_J(K, p, seed=K + int(10 * alpha))
    G = J @ J.T
    w = fairgrad_weights(G, alpha, ridge=0.0)
    assert (w > 0).all()
    assert _fixed_point_error(G, w, alpha) < 1e-6
    # With a ridge, the fixed point is that of G + ridge * mean(diag G) I.
    w = fairgrad_weights(G, alpha, ridge=1e-3)
    assert _fixed_point_error(G, w, alpha, ridge=1e-3) < 1e-6


def test_fairgrad_scaling_small_alpha_and_singular_cases():
    J = _rand_J(8, 20, seed=0)
    G = J @ J.T
    w = fairgrad_weights(G, 2.0, ridge=0.0)
    assert torch.allclose(fairgrad_weights(9.0 * G, 2.0, ridge=0.0), 9.0 ** (-2 / 3) * w)
    # alpha -> 0: equal weighting. Cooperative tasks (a shared component plus noise).
    g = torch.Generator().manual_seed(1)
    Jc = torch.randn(1, 30, generator=g, dtype=D64) + 0.5 * torch.randn(10, 30, generator=g,
                                                                         dtype=D64)
    w0 = fairgrad_weights(Jc @ Jc.T, alpha=1e-3, ridge=0.0)
    assert (w0 / w0.mean() - 1).abs().max() < 1e-2
    d, s = w0 @ Jc, Jc.sum(0)
    assert float(d @ s / (d.norm() * s.norm())) > 0.9999
    # More tasks than dimensions (rank-deficient G): the default ridge keeps it solvable.
    Js = _rand_J(50, 5, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        ws = fairgrad_weights(Js @ Js.T, 2.0)
    assert torch.isfinite(ws).all() and (ws > 0).all()
    assert _fixed_point_error(Js @ Js.T, ws, 2.0, ridge=1e-4) < 1e-6
    # Zero-gradient tasks are left out with weight 0.
    J[3] = 0
    wz = fairgrad_weights(J @ J.T, 2.0, ridge=0.0)
    assert wz[3] == 0 and (wz[torch.arange(8) != 3] > 0).all()
    with pytest.raises(ValueError, match="alpha"):
        fairgrad_weights(G, 0.0)


def test_fairgrad_500_tasks_is_cheap():
    import time

    J = _rand_J(500, 1000, seed=0).float()
    G = gram_matrix(J)
    t = time.perf_counter()
    w = fairgrad_weights(G, 2.0)
    elapsed = time.perf_counter() - t
    assert _fixed_point_error(G, w, 2.0, ridge=1e-4) < 1e-6
    assert elapsed < 3.0, elapsed  # tens of ms when the machine is idle; generous for CI


# ----------------------------------------------------------------------------- MTGD
def test_transfer_matrix_is_row_stochastic():
    J = _rand_J(9, 6, seed=0)
    J[4] = 0
    for transfer, temp in [(0.1, 0.1), (0.5, 1.0), (1.0, 0.05)]:
        M = transfer_matrix(J @ J.T, transfer, temp)
        assert (M >= 0).all() and torch.allclose(M.sum(1), torch.ones(9, dtype=D64))
        assert torch.allclose(M.diagonal(), torch.full((9,), 1 - transfer, dtype=D64))
    assert torch.equal(transfer_matrix(J @ J.T, 0.0), torch.eye(9, dtype=D64))
    # Most of the transferred mass goes to the most similar task at a low temperature.
    Jt = torch.tensor([[1.0, 0.0], [0.9, 0.1], [-1.0, 0.2]], dtype=D64)
    M = transfer_matrix(Jt @ Jt.T, 0.5, 0.05)
    assert M[0, 1] > 0.49 and M[0, 2] < 1e-6
    with pytest.raises(ValueError, match="rows summing to 1"):
        MTGD(transfer_matrix=torch.tensor([[0.5, 0.2], [0.0, 1.0]]))


def test_mtgd_step_identity_is_per_task_sgd_and_mixing_matches_hand_computation():
    # K quadratic tasks L_k(theta) = |theta - c_k|^2 / 2 with their own copies.
    g = torch.Generator().manual_seed(0)
    c = torch.randn(4, 3, generator=g, dtype=D64)
    theta = torch.randn(4, 3, generator=g, dtype=D64)
    a = b = theta.clone()
    eye = torch.eye(4, dtype=D64)
    for _ in range(5):
        a = mtgd_step(a, a - c, eye, lr=0.3)
        b = b - 0.3 * (b - c)  # plain per-task SGD
    assert torch.allclose(a, b)
    assert torch.allclose(mtgd_step(theta, theta - c, eye, 0.3, order="atc"),
                          theta - 0.3 * (theta - c))
    M = torch.tensor([[0.75, 0.25], [0.5, 0.5]], dtype=D64)
    th = torch.tensor([[1.0], [3.0]], dtype=D64)
    gr = torch.tensor([[2.0], [-2.0]], dtype=D64)
    assert torch.allclose(mtgd_step(th, gr, M, 0.5), torch.tensor([[0.5], [3.0]], dtype=D64))
    assert torch.allclose(mtgd_step(th, gr, M, 0.5, order="atc"),
                          torch.tensor([[1.0], [2.0]], dtype=D64))


def test_mtgd_after_step_mixes_head_rows_in_task_order():
    M = torch.tensor([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.2, 0.0, 0.8]], dtype=D64)
    torch.manual_seed(0)
    model = MultitaskGNN(4, 6, num_tasks=3)
    c = MTGD(transfer_matrix=M)
    c.weights(torch.eye(3, dtype=D64))
    W, b = model.head.lin.weight.detach().clone(), model.head.lin.bias.detach().clone()
    c.after_step(model)
    assert torch.allclose(model.head.lin.weight, M.float() @ W)
    assert torch.allclose(model.head.lin.bias, M.float() @ b)
    # Grouped linear heads: rows live in permuted order inside the groups.
    model = MultitaskGNN(4, 6, num_tasks=3, head=GroupedHeads(6, [[2, 0], [1]]))
    # head(I) = W^T + b and head(0) = b, columns in task order.
    b0 = model.head(torch.zeros(1, 6)).detach()
    W0 = model.head(torch.eye(6)).detach() - b0
    c.after_step(model)
    b1 = model.head(torch.zeros(1, 6)).detach()
    W1 = model.head(torch.eye(6)).detach() - b1
    assert torch.allclose(W1, W0 @ M.float().T, atol=1e-6)
    assert torch.allclose(b1, b0 @ M.float().T, atol=1e-6)
    with pytest.raises(TypeError, match="transfer_heads=False"):
        c.after_step(MultitaskGNN(4, 6, num_tasks=3,
                                  head=GroupedHeads(6, [[0, 1, 2]], hidden_channels=4)))


# ----------------------------------------------------------------------------- naive loops
def _naive_weights(name, G):
    if name == "pcgrad":
        K = G.size(0)
        return pcgrad_coefficients(G, order=pcgrad_order(K, torch.Generator().manual_seed(5))
                                   ).sum(0)
    if name == "fairgrad":
        return fairgrad_weights(G, 2.0)
    if name == "gradproj":
        return gradproj_weights(G)
    if name == "mtgd":
        return transfer_matrix(G).sum(0)
    return torch.ones(G.size(0), dtype=D64)


def _fresh(name, rep_grad):
    kw = {"seed": 5} if name == "pcgrad" else {}
    return make_combiner(name, rep_grad=rep_grad, chunk_size=2, **kw)


@pytest.mark.parametrize("name", ["pcgrad", "fairgrad", "gradproj", "mtgd"])
@pytest.mark.parametrize("rep_grad", [False, True])
def test_combiner_gradients_match_a_naive_loop(name, rep_grad):
    torch.manual_seed(0)
    model = _TinyModel().double()
    x, y = _tiny_batch(seed=1)
    enc = list(model.encoder.parameters())
    # Naive: one backward per task for the Jacobian, then the weights, then pull back.
    losses, rep = model.losses(x, y)
    inputs = [rep] if rep_grad else enc
    rows = []
    for k in range(3):
        gk = torch.autograd.grad(losses[k], inputs, retain_graph=True)
        rows.append(torch.cat([g.reshape(-1) for g in gk]))
    J = torch.stack(rows)
    w = _naive_weights(name, J @ J.T)
    upd = w @ J
    if rep_grad:
        want_enc = torch.autograd.grad(rep, enc, upd.view_as(rep), retain_graph=True)
    else:
        sizes = [p.numel() for p in enc]
        want_enc = [u.view_as(p) for u, p in zip(upd.split(sizes), enc, strict=True)]
    want_head = torch.autograd.grad(losses.sum(), list(model.head.parameters()))
    # The combiner.
    losses, rep = model.losses(x, y)
    c = _fresh(name, rep_grad)
    assert c.needs_representation is rep_grad
    c.backward(losses, enc, rep=rep if rep_grad else None)
    assert torch.allclose(c.last_weights_, w, atol=1e-8)
    for p, want in zip(enc, want_enc, strict=True):
        assert torch.allclose(p.grad, want, atol=1e-10)
    for p, want in zip(model.head.parameters(), want_head, strict=True):
        assert torch.allclose(p.grad, want, atol=1e-12)


def test_rep_grad_needs_the_representation_and_grads_accumulate():
    model = _TinyModel().double()
    x, y = _tiny_batch()
    losses, _ = model.losses(x, y)
    with pytest.raises(ValueError, match="rep_grad=True"):
        FairGrad(rep_grad=True).backward(losses, list(model.encoder.parameters()))
    # .grad accumulates like loss.backward() does.
    enc = list(model.encoder.parameters())
    for _ in range(2):
        losses, _ = model.losses(x, y)
        GradProj().backward(losses, enc)
    twice = [p.grad.clone() for p in enc]
    model.zero_grad()
    losses, _ = model.losses(x, y)
    GradProj().backward(losses, enc)
    assert all(torch.allclose(a, 2 * p.grad) for a, p in zip(twice, enc, strict=True))


def test_gram_combiner_is_abstract():
    with pytest.raises(NotImplementedError):
        GramCombiner().weights(torch.eye(2))


# ----------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def synth():
    return synthetic_communities(1000, 20, 4, seed=0).to_data()


def _fit(data, combiner, model="sign", epochs=4, seed=0, **kw):
    torch.manual_seed(seed)
    T = data.y.size(1)
    m = (SIGN(data.num_features, 32, T) if model == "sign"
         else MultitaskGNN(data.num_features, 32, T))
    tr = Trainer(m, epochs=epochs, batch_size=128, num_neighbors=(5, 5), patience=None,
                 pos_weight="auto", seed=seed, progress=False, combiner=combiner, **kw)
    before = tr.evaluate(data, "val")
    tr.fit(data)
    return tr, before


@pytest.mark.parametrize("name", ["equal", "pcgrad", "fairgrad", "mtgd", "gradproj"])
def test_short_training_improves_every_method(synth, name):
    for rep_grad in ([False] if name == "equal" else [False, True]):
        c = make_combiner(name) if name == "equal" else make_combiner(name, rep_grad=rep_grad)
        tr, before = _fit(synth, c)
        after = tr.evaluate(synth, "val")
        assert after["macro_f1"] > before["macro_f1"] + 0.3, (name, rep_grad, before, after)
        assert after["loss"] < before["loss"]
        assert len(tr.model.head._forward_pre_hooks) == 0


@pytest.mark.parametrize("full_batch", [False, True])
def test_rep_grad_with_a_graph_model_gets_only_the_loss_rows(synth, full_batch):
    seen = []

    class Recorder(EqualWeighting):
        needs_representation = True

        def backward(self, losses, shared, rep=None):
            seen.append(rep.shape)
            return super().backward(losses, shared)

    tr, before = _fit(synth, Recorder(), model="sage", epochs=1, full_batch=full_batch)
    n_train = int(synth.train_mask.sum())
    want = [(n_train, 32)] if full_batch else [(128, 32)] * (n_train // 128)
    assert seen[: len(want)] == want
    # Same training as plain equal weighting: capturing the representation changes nothing.
    ref, _ = _fit(synth, EqualWeighting(), model="sage", epochs=1, full_batch=full_batch)
    assert tr.history_[0]["loss"] == pytest.approx(ref.history_[0]["loss"], rel=1e-6)
    tr2, _ = _fit(synth, FairGrad(rep_grad=True), model="sage", epochs=2,
                  full_batch=full_batch)
    assert tr2.evaluate(synth, "val")["macro_f1"] > before["macro_f1"]


def test_legacy_combiner_without_rep_argument_still_works(synth):
    class Legacy(LossCombiner):
        def backward(self, losses, shared):
            total = losses.sum()
            total.backward()
            return total

    a, _ = _fit(synth, Legacy(), epochs=2)
    b, _ = _fit(synth, EqualWeighting(), epochs=2)
    assert [h["loss"] for h in a.history_] == [h["loss"] for h in b.history_]


def test_mtgd_without_transfer_trains_like_equal_weighting(synth):
    a, _ = _fit(synth, MTGD(transfer=0.0), epochs=2)
    b, _ = _fit(synth, EqualWeighting(), epochs=2)
    for ha, hb in zip(a.history_, b.history_, strict=True):
        assert ha["loss"] == pytest.approx(hb["loss"], rel=1e-4)


@pytest.mark.parametrize("name", ["pcgrad", "fairgrad", "mtgd"])
def test_training_is_deterministic_given_a_seed(synth, name):
    a, _ = _fit(synth, make_combiner(name), epochs=2, seed=3)
    b, _ = _fit(synth, make_combiner(name), epochs=2, seed=3)
    assert [h["loss"] for h in a.history_] == [h["loss"] for h in b.history_]
    assert torch.equal(a.predict_logits(synth), b.predict_logits(synth))


def test_head_not_found_is_a_clear_error(synth):
    class NoHead(nn.Module):
        uses_graph = False
        num_hops = 2

        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3 * synth.num_features, synth.y.size(1))

        def forward(self, xs):
            return self.lin(xs.flatten(1))

    tr = Trainer(NoHead(), epochs=1, progress=False, combiner=PCGrad(rep_grad=True))
    with pytest.raises(ValueError, match="head"):
        tr.fit(synth)


def test_multilabel_head_rows_are_what_mtgd_mixes():
    head = MultiLabelHead(4, 3)
    M = torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=D64)
    c = MTGD(transfer_matrix=M)
    c.weights(torch.eye(3, dtype=D64))
    model = nn.Module()
    model.head = head
    c.after_step(model)
    assert torch.equal(head.lin.weight[0], head.lin.weight[1])

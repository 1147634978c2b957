"""DMTG: one-shot differentiable multi-task grouping (Gao et al., ICML 2024).

Y. Gao, S. Jiang, M. Li, J.-G. Yu, G.-S. Xia. *DMTG: One-Shot Differentiable Multi-Task
Grouping*. ICML 2024.

``K`` group branches sit on a shared stem, and every branch carries a head for every task
(``K * T`` heads). Each task ``t`` has a categorical distribution over the branches, with
logits ``alpha[t]``; a Gumbel-softmax sample ``G[t] = softmax((alpha[t] + g) / tau)`` weights
the task's loss through each branch,

    loss = (1 / T) sum_{t, k} G[t, k] * L_{t, k},

and ``alpha`` is trained jointly with the network while ``tau`` is annealed, so each task ends
up (nearly) routed through one branch. The argmax of ``softmax(alpha)`` then assigns each task
to one branch; branches no task picked are pruned, leaving at most ``K`` groups.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from tqdm.auto import tqdm

from graphtag.grouping.baselines import _canonical
from graphtag.grouping.peers import (
    batch_inputs,
    check_positive,
    check_task_data,
    iter_batches,
    seeded,
)
from graphtag.models.gnn import GNNEncoder, _make_conv

__all__ = ["DMTG_MODELS", "DMTGNetwork", "DMTGResult", "dmtg_groups"]

#: Encoders :class:`DMTGNetwork` supports: those whose last layer is linear in its weights, so
#: ``K`` branches of width ``b`` are exactly one layer of width ``K * b``.
DMTG_MODELS = ("sign", "sage", "gcn")

#: Negative slope of the branch activation.
BRANCH_SLOPE = 0.1


class DMTGNetwork(nn.Module):
    """Shared stem, ``K`` group branches, and a linear head per (branch, task).

    The branches are the encoder's *last* layer, replicated ``K`` times; earlier layers form
    the shared stem (the paper's "flexible sharing of encoder layers"). Because that last layer
    is linear in its weights (SIGN's mixing layer, a SAGE or GCN convolution), the ``K``
    branches are computed as one layer of width ``K * branch_channels`` reshaped to
    ``(n, K, branch_channels)``: one matmul (and for graph models one neighbour aggregation)
    for all branches. The ``K * T`` heads are one batched contraction with a ``(K, b, T)``
    weight, giving ``(n, K, T)`` logits.

    Parameters
    ----------
    in_channels
        Input feature size.
    num_tasks, num_groups
        ``T`` and ``K``.
    model
        ``"sign"`` (input ``(n, hops + 1, F)`` from :func:`~graphtag.models.sign_propagate`;
        stem = per-hop projections, branch = mixing layer), ``"sage"`` or ``"gcn"`` (input
        ``(x, edge_index)``; stem = first ``num_layers - 1`` convolutions, branch = last one).
    hidden_channels
        Width of the stem.
    branch_channels
        Width of each branch; default ``max(1, hidden_channels // num_groups)``, so the ``K``
        branches together are about as wide as one ordinary layer.
    num_layers
        SIGN hops, or GNN layers (``1``: no stem, ``K`` independent one-layer encoders).
    dropout
        Dropout on the stem output and on the branch outputs.

    Attributes
    ----------
    assign_logits : torch.nn.Parameter
        ``(T, K)`` task-to-branch logits ``alpha``, initialised to 0 (uniform assignment).
    """

    def __init__(
        self,
        in_channels: int,
        num_tasks: int,
        num_groups: int,
        *,
        model: str = "sign",
        hidden_channels: int = 64,
        branch_channels: int | None = None,
        num_layers: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if model not in DMTG_MODELS:
            raise ValueError(f"model={model!r} is not one of {DMTG_MODELS}.")
        check_positive(num_tasks=num_tasks, num_groups=num_groups,
                       hidden_channels=hidden_channels, num_layers=num_layers)
        b = branch_channels if branch_channels is not None else max(1, hidden_channels
                                                                    // max(num_groups, 1))
        check_positive(branch_channels=b)
        self.kind = model
        self.uses_graph = model != "sign"
        self.num_tasks, self.num_groups, self.branch_channels = num_tasks, num_groups, b
        self.num_layers = num_layers
        self.dropout = dropout
        if model == "sign":
            self.num_hops = num_layers
            self.hops = nn.ModuleList(nn.Linear(in_channels, hidden_channels)
                                      for _ in range(num_layers + 1))
            self.branch = nn.Linear((num_layers + 1) * hidden_channels, num_groups * b)
        else:
            self.stem = (GNNEncoder(in_channels, hidden_channels, num_layers - 1, model, dropout)
                         if num_layers > 1 else None)
            stem_out = hidden_channels if num_layers > 1 else in_channels
            self.branch = _make_conv(model, stem_out, num_groups * b)
        self.head_weight = nn.Parameter(torch.empty(num_groups, b, num_tasks))
        self.head_bias = nn.Parameter(torch.empty(num_groups, num_tasks))
        self.assign_logits = nn.Parameter(torch.zeros(num_tasks, num_groups))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()
        # nn.Linear's default init, per (branch, task) head
        bound = 1.0 / math.sqrt(self.branch_channels)
        nn.init.uniform_(self.head_weight, -bound, bound)
        nn.init.uniform_(self.head_bias, -bound, bound)
        nn.init.zeros_(self.assign_logits)

    def network_parameters(self) -> list[nn.Parameter]:
        """All parameters except :attr:`assign_logits`."""
        return [p for n, p in self.named_parameters() if n != "assign_logits"]

    def branches(self, *args: Tensor) -> Tensor:
        """``(n, K, branch_channels)`` branch outputs (after a leaky ReLU)."""
        if self.uses_graph:
            x, edge_index = args
            h = x
            if self.stem is not None:
                h = F.dropout(self.stem(x, edge_index), self.dropout, self.training)
            out = self.branch(h, edge_index)
        else:
            (xs,) = args
            if xs.dim() != 3 or xs.size(1) != self.num_hops + 1:
                raise ValueError(f"expected (n, {self.num_hops + 1}, F) SIGN hops, got "
                                 f"{tuple(xs.shape)}.")
            h = torch.cat([lin(xs[:, i]) for i, lin in enumerate(self.hops)], dim=-1)
            out = self.branch(F.dropout(h.relu(), self.dropout, self.training))
        # Leaky, not plain ReLU: a dead unit in a narrow branch would empty the branch for good.
        out = F.leaky_relu(out, BRANCH_SLOPE)
        out = out.view(out.size(0), self.num_groups, self.branch_channels)
        return F.dropout(out, self.dropout, self.training)

    def forward(self, *args: Tensor) -> Tensor:
        """``(n, K, T)`` logits: task ``t`` predicted through branch ``k``."""
        h = self.branches(*args)
        return torch.einsum("nkb,kbt->nkt", h, self.head_weight) + self.head_bias

    def probs(self) -> Tensor:
        """``(T, K)`` assignment probabilities ``softmax(alpha)`` (no noise)."""
        return self.assign_logits.detach().softmax(dim=1)


@dataclass
class DMTGResult:
    """Output of :func:`dmtg_groups`.

    Attributes
    ----------
    groups : list of list of int
        Argmax assignment with empty branches pruned: at most ``K`` non-empty sorted task
        lists partitioning ``range(T)``, ordered by smallest member.
    probs : numpy.ndarray
        ``(T, K)`` learned assignment probabilities ``softmax(alpha)``; rows sum to 1.
    branch : numpy.ndarray
        ``(T,)`` branch index of each task (``probs.argmax(1)``, before pruning).
    history : list of dict
        Per epoch: ``epoch``, ``loss`` (mean Gumbel-weighted training loss), ``hard_loss``
        (mean training loss of each task through its argmax branch), ``tau``,
        ``num_groups`` (non-empty branches of the argmax), ``entropy`` (mean entropy of the
        assignment rows, nats), ``seconds``.
    model : DMTGNetwork
        The trained network, on the CPU, in eval mode.
    """

    groups: list[list[int]]
    probs: np.ndarray
    branch: np.ndarray
    history: list[dict[str, float]] = field(default_factory=list)
    model: DMTGNetwork | None = None


def _per_branch_losses(out: Tensor, y: Tensor, label_mask: Tensor | None) -> Tensor:
    """``(K, T)`` masked mean BCE of every task through every branch; ``out`` is (B, K, T)."""
    elem = F.binary_cross_entropy_with_logits(
        out, y.unsqueeze(1).expand_as(out), reduction="none")
    if label_mask is None:
        return elem.mean(dim=0)
    m = label_mask.to(out.dtype).unsqueeze(1)
    return (elem * m).sum(dim=0) / m.sum(dim=0).clamp_min(1.0)


def dmtg_groups(
    data: Data,
    num_groups: int,
    *,
    model: str = "sign",
    hidden_channels: int = 64,
    branch_channels: int | None = None,
    num_layers: int = 2,
    dropout: float = 0.0,
    epochs: int = 100,
    lr: float = 0.01,
    assign_lr: float = 0.01,
    tau: tuple[float, float] = (1.0, 0.1),
    batch_size: int = 512,
    full_batch: bool = True,
    num_neighbors: Sequence[int] = (15, 10),
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> DMTGResult:
    """Group the tasks of ``data`` into at most ``num_groups`` groups with DMTG.

    Trains a :class:`DMTGNetwork` and the ``(T, K)`` assignment logits jointly (Adam, separate
    learning rates) on ``(1/T) sum_{t,k} G[t,k] L_{t,k}`` where ``G`` is a fresh
    Gumbel-softmax sample per step with temperature annealed geometrically from ``tau[0]`` to
    ``tau[1]`` over all steps, then assigns each task to the argmax of ``softmax(alpha)`` and
    drops empty branches.

    What is implemented, and where it differs from the paper (Gao et al., ICML 2024):

    * branches are replicas of the encoder's last layer on a shared stem (the paper uses ``K``
      full encoder branches, optionally sharing early layers): full SIGN/GNN copies cost ``K``
      times more, which matters on CPU, and the last layer already gives each group its own
      representation;
    * the branch activation is a leaky ReLU (slope :data:`BRANCH_SLOPE`): with narrow
      branches a dead ReLU unit would leave its branch useless, and empty, for good;
    * the soft relaxed sample ``G`` weights the losses (no straight-through hard sample; on
      planted groups it recovered them no better);
    * the groups are returned after this one training run; the paper keeps the trained
      network as the final grouped model, here :attr:`DMTGResult.model` holds it but a caller
      will usually retrain grouped heads to compare groupings on equal terms.

    Parameters
    ----------
    data
        PyG ``Data`` with ``x``, ``edge_index``, ``y`` ``(N, T)``, ``train_mask`` and optional
        ``label_mask``; only training nodes are used.
    num_groups
        ``K``, the number of branches (upper bound on the number of groups), ``1 <= K <= T``.
    model
        ``"sign"`` (precomputed hops, node minibatches; fastest on CPU), ``"sage"`` or
        ``"gcn"``.
    hidden_channels, branch_channels, num_layers, dropout
        See :class:`DMTGNetwork`. Narrow branches make tasks compete for branch capacity,
        which is what pushes unrelated tasks apart.
    epochs
        Training epochs. The assignment moves once per step, so full-batch graph models (one
        step per epoch) need several hundred epochs for the assignment to settle; watch
        ``history[-1]["entropy"]`` (``log K`` = still uniform, near 0 = decided).
    lr, assign_lr
        Adam learning rates of the network and of the assignment logits.
    tau
        ``(start, end)`` Gumbel-softmax temperatures, ``start >= end > 0``.
    batch_size
        Training nodes per minibatch (SIGN, and graph models with ``full_batch=False``).
    full_batch
        Graph models only: train on the whole graph, one step per epoch (default); else
        neighbour-sampled minibatches with ``num_neighbors`` fan-outs, drawn as the trainer
        draws them (:func:`graphtag.training.batching.iter_batches`).
    num_neighbors
        Fan-out per GNN layer when ``full_batch=False``.
    seed
        Seeds initialisation, shuffling, sampling, dropout and Gumbel noise (the caller's RNG
        is untouched).
    device
        Torch device.
    progress
        Show a tqdm bar over epochs.

    Returns
    -------
    DMTGResult
    """
    T = check_task_data(data)
    if (isinstance(num_groups, bool) or not isinstance(num_groups, (int, np.integer))
            or not 1 <= num_groups <= T):
        raise ValueError(f"num_groups must be an integer with 1 <= num_groups <= T = {T}, "
                         f"got {num_groups!r}.")
    if model not in DMTG_MODELS:
        raise ValueError(f"model={model!r} is not one of {DMTG_MODELS}.")
    tau0, tau1 = (float(t) for t in tau)
    check_positive(epochs=epochs, lr=lr, assign_lr=assign_lr, tau_end=tau1,
                   batch_size=batch_size)
    if tau0 < tau1:
        raise ValueError(f"tau must be (start, end) with start >= end > 0, got {tau}.")
    uses_graph, xs, steps_per_epoch = batch_inputs(
        data, model, num_layers=num_layers, full_batch=full_batch, num_neighbors=num_neighbors,
        batch_size=batch_size)
    dev = torch.device(device)
    total_steps = max(epochs * steps_per_epoch - 1, 1)
    with seeded(seed, dev):
        net = DMTGNetwork(data.num_features, T, int(num_groups), model=model,
                          hidden_channels=hidden_channels, branch_channels=branch_channels,
                          num_layers=num_layers, dropout=dropout).to(dev)
        opt = torch.optim.Adam([
            {"params": net.network_parameters(), "lr": lr},
            {"params": [net.assign_logits], "lr": assign_lr},
        ])
        gen = torch.Generator().manual_seed(seed)
        tasks = torch.arange(T, device=dev)
        step, cache = 0, {}
        history: list[dict[str, float]] = []
        bar = tqdm(range(1, epochs + 1), desc="DMTG", disable=not progress)
        for epoch in bar:
            t0 = time.perf_counter()
            net.train()
            run = hard = 0.0
            nb = 0
            for b in iter_batches(data, uses_graph=uses_graph, xs=xs, full_batch=full_batch,
                                  batch_size=batch_size, num_neighbors=num_neighbors,
                                  gen=gen, device=dev, cache=cache):
                t = tau0 * (tau1 / tau0) ** min(step / total_steps, 1.0)
                u = torch.rand(T, net.num_groups, generator=gen).to(dev)
                gumbel = -torch.log(-torch.log(u.clamp(1e-10, 1.0 - 1e-7)))
                G = ((net.assign_logits + gumbel) / t).softmax(dim=1)  # (T, K)
                Lkt = _per_branch_losses(net(*b.args)[b.rows], b.y, b.label_mask)
                loss = (G.T * Lkt).sum() / T
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                with torch.no_grad():
                    pick = net.assign_logits.argmax(dim=1)
                    hard += float(Lkt[pick, tasks].mean())
                run += float(loss.detach())
                nb += 1
                step += 1
            P = net.probs()
            ent = float(-(P * P.clamp_min(1e-12).log()).sum(1).mean())
            history.append({
                "epoch": epoch, "loss": run / nb, "hard_loss": hard / nb, "tau": t,
                "num_groups": int(P.argmax(1).unique().numel()), "entropy": ent,
                "seconds": time.perf_counter() - t0,
            })
            bar.set_postfix(loss=f"{run / nb:.4f}", groups=history[-1]["num_groups"],
                            tau=f"{t:.3f}")
        bar.close()
    # float64 softmax so rows sum to 1 to machine precision
    probs = net.assign_logits.detach().cpu().double().softmax(dim=1).numpy()
    branch = probs.argmax(axis=1)
    groups = _canonical([np.flatnonzero(branch == k).tolist() for k in np.unique(branch)])
    return DMTGResult(groups, probs, branch, history, net.cpu().eval())

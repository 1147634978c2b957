"""TAG: inter-task affinity from lookahead steps (Fifty et al., NeurIPS 2021).

C. Fifty, E. Amid, Z. Zhao, T. Yu, R. Anil, C. Finn. *Efficiently Identifying Task Groupings
for Multi-Task Learning*. NeurIPS 2021.

While one multitask model (shared encoder, one linear logit per task) trains on all tasks, TAG
asks at step ``s``, for every pair of tasks: had the shared parameters ``theta_s`` taken a
gradient step on task ``j``'s loss alone, how much would task ``i``'s loss on the same batch
have dropped?

    Z_{j -> i} = 1 - L_i(theta_{s|j}) / L_i(theta_s),
    theta_{s|j} = theta_s - eta * grad_{theta_s} L_j(theta_s),

averaged over the sampled steps. Here ``affinity[i, j] = mean_s Z_{j -> i}`` (effect of ``j`` on
``i``; the diagonal is each task's own lookahead gain), and ``symmetric = (A + A^T) / 2`` with
a zero diagonal is what :func:`tag_groups` hands to :func:`~graphtag.grouping.sdp_groups`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call, jacrev, vmap
from torch_geometric.data import Data
from tqdm.auto import tqdm

from graphtag.grouping.peers import (
    batch_inputs,
    check_positive,
    check_task_data,
    iter_batches,
    seeded,
)
from graphtag.grouping.sdp import Solver, sdp_groups
from graphtag.models.factory import MODELS, build_model
from graphtag.training.losses import masked_bce_per_task

__all__ = ["TAGResult", "lookahead_affinity", "shared_parameter_names", "tag_affinity",
           "tag_groups"]


@dataclass
class TAGResult:
    """Output of :func:`tag_affinity` / :func:`tag_groups`.

    Attributes
    ----------
    affinity : numpy.ndarray
        ``(T, T)``; ``affinity[i, j]`` is the mean lookahead gain of task ``i`` from a step on
        task ``j`` (``Z_{j -> i}``); the diagonal is each task's own gain.
    symmetric : numpy.ndarray
        ``(A + A^T) / 2`` with the diagonal set to 0 (TAG scores a group by the affinities
        *between* its members; a constant diagonal does not change the SDP's optimum anyway).
    num_lookaheads : int
        Number of training steps the affinity was averaged over.
    history : list of dict
        Per epoch: ``epoch``, ``loss`` (mean training loss), ``seconds``.
    model : torch.nn.Module
        The trained multitask model (shared encoder + linear head), on the CPU, in eval mode.
    groups : list of list of int or None
        Set by :func:`tag_groups`: the grouping of the symmetrised affinity.
    """

    affinity: np.ndarray
    symmetric: np.ndarray
    num_lookaheads: int
    history: list[dict[str, float]] = field(default_factory=list)
    model: nn.Module | None = None
    groups: list[list[int]] | None = None


def shared_parameter_names(model: nn.Module) -> list[str]:
    """Names of the task-shared parameters: everything outside ``model.head``.

    For :class:`~graphtag.models.MultitaskGNN` this is the encoder, for
    :class:`~graphtag.models.SIGN` the hop projections and the mixing layer.
    """
    names = [n for n, _ in model.named_parameters() if not n.startswith("head.")]
    if not names:
        raise ValueError(f"{type(model).__name__} has no parameters outside .head to share.")
    return names


def lookahead_affinity(
    model: nn.Module,
    args: Sequence[Tensor],
    y: Tensor,
    label_mask: Tensor | None = None,
    *,
    lr: float,
    rows: Tensor | slice | None = None,
    shared: Sequence[str] | None = None,
    chunk_size: int | None = None,
) -> Tensor:
    """All-pairs lookahead gains ``Z[i, j] = 1 - L_i(theta_{s|j}) / L_i(theta_s)`` on one batch.

    Exact version of TAG's inter-task affinity: the lookahead is a full SGD step
    ``theta_{s|j} = theta_s - lr * grad L_j`` on *all* shared parameters (not the paper's
    cheaper last-shared-layer approximation); task heads stay fixed, as in the paper. The ``T``
    per-task gradients come from one :func:`torch.func.jacrev` (vmapped backward passes) and
    the ``T`` lookahead forwards from one :func:`torch.func.vmap`, instead of ``2T`` Python
    round trips. The model runs in eval mode (no dropout), so the ratio compares the same
    function before and after the step.

    Parameters
    ----------
    model
        A multitask model whose ``forward(*args)`` returns ``(n, T)`` logits.
    args
        Its positional inputs for this batch.
    y, label_mask
        ``(B, T)`` labels and optional known-label mask of the loss rows.
    lr
        Lookahead SGD step size ``eta``.
    rows
        Rows of the output that carry the loss (e.g. the training or seed nodes of a graph
        batch); ``None``: all.
    shared
        Names of the shared parameters stepped in the lookahead; default
        :func:`shared_parameter_names`.
    chunk_size
        Tasks per vectorised chunk (bounds memory at ``chunk_size`` copies of the forward's
        activations); ``None``: all ``T`` at once.

    Returns
    -------
    torch.Tensor
        ``(T, T)``, ``Z[i, j]`` = gain of task ``i`` from a step on task ``j`` (detached).
    """
    check_positive(lr=lr)
    names = list(shared) if shared is not None else shared_parameter_names(model)
    params = {n: p.detach() for n, p in model.named_parameters()}
    unknown = set(names) - set(params)
    if unknown:
        raise ValueError(f"shared names not parameters of the model: {sorted(unknown)}.")
    theta = {n: params[n] for n in names}
    rest = {n: p for n, p in params.items() if n not in theta}
    sel = slice(None) if rows is None else rows
    args = tuple(args)

    def losses(shared_params: dict[str, Tensor]) -> Tensor:
        out = functional_call(model, {**rest, **shared_params}, args)
        return masked_bce_per_task(out[sel], y, label_mask)

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            base = losses(theta)  # (T,)
        grads = jacrev(losses, chunk_size=chunk_size)(theta)  # name -> (T, *shape)

        def after_step(g: dict[str, Tensor]) -> Tensor:
            return losses({n: theta[n] - lr * g[n] for n in names})

        with torch.no_grad():
            la = vmap(after_step, chunk_size=chunk_size)(grads)  # (j, i)
    finally:
        model.train(was_training)
    # A task with no labelled row has L_i = 0 and gains nothing: keep its row at 0.
    ratio = la / base.clamp_min(torch.finfo(base.dtype).tiny)
    z = torch.where(base > 0, 1.0 - ratio, torch.zeros_like(ratio))
    return z.T.detach()


def _check_model_name(model: str) -> None:
    if model not in MODELS:
        raise ValueError(f"model={model!r} is not one of {MODELS}.")


def tag_affinity(
    data: Data,
    *,
    model: str = "sign",
    hidden_channels: int = 64,
    num_layers: int = 2,
    dropout: float = 0.0,
    epochs: int = 20,
    lr: float = 0.01,
    lr_lookahead: float = 0.1,
    every: int = 1,
    num_lookaheads: int | None = None,
    batch_size: int = 512,
    full_batch: bool = True,
    num_neighbors: Sequence[int] = (15, 10),
    chunk_size: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> TAGResult:
    """TAG inter-task affinity of all tasks of ``data`` (Fifty et al., NeurIPS 2021).

    Trains one multitask model (:func:`~graphtag.models.build_model`: shared encoder + one
    linear logit per task) with Adam on the mean masked BCE of all tasks, and every ``every``
    steps records the all-pairs lookahead gains of the current batch
    (:func:`lookahead_affinity`); the result is their average.

    What is implemented, and where it differs from the paper:

    * the lookahead is exact, on all shared parameters, vectorised over tasks with
      ``torch.func`` (the paper also describes stepping only a shared representation to save
      time; not needed at a few hundred tasks here);
    * the lookahead is plain SGD with its own step ``lr_lookahead`` while the model itself
      trains with Adam (the paper steps with the training optimiser's learning rate); the
      step and the losses are evaluated without dropout;
    * groups come from the clustering SDP on the symmetrised affinity (:func:`tag_groups`)
      instead of the paper's branch-and-bound search over groupings.

    Parameters
    ----------
    data
        PyG ``Data`` with ``x``, ``edge_index``, ``y`` ``(N, T)``, ``train_mask`` and optional
        ``label_mask``; only training nodes are used.
    model
        ``"sign"`` (precomputed hops, node minibatches; fastest on CPU) or a graph model
        (``"sage"``, ``"gcn"``, ``"gin"``).
    hidden_channels, num_layers, dropout
        Model size (``num_layers`` = SIGN hops or GNN layers) and training dropout.
    epochs
        Training epochs.
    lr
        Adam learning rate of the training itself.
    lr_lookahead
        SGD step ``eta`` of the lookahead.
    every
        Record the affinity every ``every`` training steps (the first step always counts).
    num_lookaheads
        A lookahead budget instead of ``every``: about this many lookaheads, evenly spaced
        over the training steps (each costs about ``T`` forward-backward passes, so looking
        ahead at every step dominates the run at hundreds of tasks).
    batch_size
        Training nodes per minibatch (SIGN, and graph models with ``full_batch=False``).
    full_batch
        Graph models only: train (and look ahead) on the whole graph, one step per epoch
        (default); else neighbour-sampled minibatches with ``num_neighbors`` fan-outs, drawn
        as the trainer draws them (:func:`graphtag.training.batching.iter_batches`).
    num_neighbors
        Fan-out per GNN layer when ``full_batch=False``.
    chunk_size
        Tasks per vectorised lookahead chunk (see :func:`lookahead_affinity`); set it for graph
        models on large graphs, where each task's lookahead forward holds full activations.
    seed
        Seeds initialisation, shuffling, sampling and dropout (the caller's RNG is untouched).
    device
        Torch device.
    progress
        Show a tqdm bar over epochs.

    Returns
    -------
    TAGResult
    """
    T = check_task_data(data)
    _check_model_name(model)
    check_positive(epochs=epochs, lr=lr, lr_lookahead=lr_lookahead, every=every,
                   batch_size=batch_size, hidden_channels=hidden_channels,
                   num_layers=num_layers)
    if chunk_size is not None:
        check_positive(chunk_size=chunk_size)
    dev = torch.device(device)
    if num_lookaheads is not None:
        check_positive(num_lookaheads=num_lookaheads)
    uses_graph, xs, per_epoch = batch_inputs(
        data, model, num_layers=num_layers, full_batch=full_batch, num_neighbors=num_neighbors,
        batch_size=batch_size)
    if num_lookaheads is not None:
        every = max(1, math.ceil(epochs * per_epoch / num_lookaheads))
    with seeded(seed, dev):
        net = build_model(model, data.num_features, T, hidden_channels=hidden_channels,
                          num_layers=num_layers, dropout=dropout).to(dev)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        names = shared_parameter_names(net)
        gen = torch.Generator().manual_seed(seed)
        total = torch.zeros(T, T, dtype=torch.float64, device=dev)
        count, step, cache = 0, 0, {}
        history: list[dict[str, float]] = []
        bar = tqdm(range(1, epochs + 1), desc="TAG", disable=not progress)
        for epoch in bar:
            t0 = time.perf_counter()
            net.train()
            run, nb = 0.0, 0
            for b in iter_batches(data, uses_graph=uses_graph, xs=xs, full_batch=full_batch,
                                  batch_size=batch_size, num_neighbors=num_neighbors,
                                  gen=gen, device=dev, cache=cache):
                if step % every == 0:
                    total += lookahead_affinity(net, b.args, b.y, b.label_mask,
                                                lr=lr_lookahead, rows=b.rows, shared=names,
                                                chunk_size=chunk_size).double()
                    count += 1
                opt.zero_grad(set_to_none=True)
                loss = masked_bce_per_task(net(*b.args)[b.rows], b.y, b.label_mask).mean()
                loss.backward()
                opt.step()
                run += float(loss.detach())
                nb += 1
                step += 1
            history.append({"epoch": epoch, "loss": run / max(nb, 1),
                            "seconds": time.perf_counter() - t0})
            bar.set_postfix(loss=f"{history[-1]['loss']:.4f}")
        bar.close()
    A = (total / max(count, 1)).cpu().numpy()
    S = (A + A.T) / 2
    np.fill_diagonal(S, 0.0)
    return TAGResult(A, S, count, history, net.cpu().eval())


def tag_groups(
    data: Data,
    k: int,
    *,
    solver: Solver = "auto",
    seed: int = 0,
    **kwargs: object,
) -> TAGResult:
    """Group the tasks of ``data`` into ``k`` groups by TAG affinity and the clustering SDP.

    Runs :func:`tag_affinity` (``kwargs`` are passed on, ``seed`` too) and groups its
    :attr:`TAGResult.symmetric` affinity with :func:`~graphtag.grouping.sdp_groups`.

    Parameters
    ----------
    data
        See :func:`tag_affinity`.
    k
        Number of groups, ``1 <= k <= T``.
    solver
        SDP solver (``"auto"``, ``"cvxpy"`` or ``"bm"``).
    seed
        Seed of the training and of the SDP rounding.
    **kwargs
        Keyword arguments of :func:`tag_affinity`.

    Returns
    -------
    TAGResult
        With :attr:`~TAGResult.groups` set: ``k`` non-empty sorted task lists partitioning
        ``range(T)``, ordered by smallest member.
    """
    T = check_task_data(data)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= T:
        raise ValueError(f"k must be an integer with 1 <= k <= T = {T}, got k={k!r}.")
    res = tag_affinity(data, seed=seed, **kwargs)  # type: ignore[arg-type]
    res.groups = sdp_groups(res.symmetric, int(k), solver=solver, seed=seed)
    return res

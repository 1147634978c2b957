"""Per-sample gradients of every task's logit, projected on the fly, from the model itself.

For node ``v`` and task ``t`` we need ``g_vt = d logit_t(v) / d theta`` over all parameters
(10^5-10^7 of them), compressed to ``d`` dimensions by a random projection ``P``. Nothing here
knows the model's architecture: the model's own forward pass runs once on a batch of per-seed
computation trees (disjoint, :mod:`graphtag.gradients.trees`), and hooks on its linear layers
read off each layer's input rows and the signal back-propagated to its output rows
(:mod:`graphtag.gradients.hooks`). A linear layer's per-sample weight gradient is the sum over
the sample's rows of ``outer(signal, input)``, so with a
:class:`~graphtag.projection.KroneckerProjector` (``strategy="factored"``, the fast path) its
sketch is an outer product of factor sketches and no gradient is ever materialised.

With a linear head ``logit_t = w_t . h(v) + b_t`` and more tasks than embedding dimensions
``H``, the encoder is differentiated per embedding coordinate (``H`` reverse signals instead of
``T``) and mixed with the head weights; the head's own gradient is ``e_t h(v)^T``.

Gradients are taken in eval mode (no dropout): the function differentiated is the deterministic
network the affinity stage linearises around.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from graphtag.gradients.hooks import (
    Factors,
    RowBatch,
    _message_passing_layers,
    _TrimError,
    _Trimmer,
    capture_factors,
    graph_batch,
    is_linear,
    rows_batch,
)
from graphtag.gradients.trees import ComputationTrees, csr_from_edge_index, sample_trees
from graphtag.models.heads import MultiLabelHead
from graphtag.models.sign import SIGN, sign_propagate
from graphtag.projection.kronecker import KroneckerProjector

__all__ = [
    "GradientModel",
    "kronecker_projector",
    "parameter_layout",
    "per_sample_gradients_loop",
]


def parameter_layout(model: nn.Module) -> dict[str, tuple[int, int]]:
    """``name -> (offset, numel)`` of each trainable parameter in the flattened gradient.

    The order is ``model.named_parameters()``, which fixes the coordinates the projector sees.
    """
    out, off = {}, 0
    for name, p in model.named_parameters():
        if p.requires_grad:
            out[name] = (off, p.numel())
            off += p.numel()
    return out


def kronecker_projector(model: nn.Module, out_dim: int = 256, nnz: int = 4, seed: int = 0,
                        backend: str = "auto", shared_only: bool = False) -> KroneckerProjector:
    """A :class:`~graphtag.projection.KroneckerProjector` over ``model``'s trainable
    parameters, for ``strategy="factored"`` (the fast path).

    With ``shared_only=True`` it covers only the parameters shared by all tasks (everything
    but ``head.*``), and gradients projected with it leave out the task-specific head. Why
    that matters for task affinity: head rows of different tasks are disjoint coordinates, so
    their gradients are exactly orthogonal, but any ``d``-dimensional projection gives them
    random overlaps of order ``1 / sqrt(d)`` (the Kronecker factor over the task axis, only
    ``d1`` wide, far more), and a subset fit then "transfers" between tasks through hash
    collisions.
    """
    shapes = [tuple(p.shape) for n, p in model.named_parameters()
              if p.requires_grad and not (shared_only and n.startswith("head."))]
    return KroneckerProjector(shapes, out_dim, nnz=nnz, seed=seed, backend=backend)


_MAX_DENSE = 4096  # parameters outside linear layers, differentiated in forward mode


def _find_head(model: nn.Module) -> nn.Module | None:
    """The linear layer mapping the embedding to the logits, when the model has one."""
    head = getattr(model, "head", None)
    if isinstance(head, MultiLabelHead):
        return head.lin
    if head is not None and is_linear(head):
        return head
    return None


class GradientModel:
    """A trained model prepared for per-sample gradient extraction.

    Works for any model whose trainable weights sit in linear layers (``nn.Linear`` or PyG's
    ``Linear``: GraphSAGE, GCN, GIN, SIGN, user models), plus module-owned output biases
    (PyG convolutions) and a few other parameters (e.g. GIN's ``eps``, in forward mode). The
    model's own forward pass is run with hooks (:mod:`graphtag.gradients.hooks`): graph
    models (``model(x, edge_index)``) on a batch of disjoint per-seed computation trees with
    ``fanouts``, models with ``uses_graph = False`` (SIGN) on their independent rows.

    Parameters
    ----------
    model
        The trained model (not modified; its parameters are read). With a
        :class:`~graphtag.models.MultiLabelHead` (or a linear ``head``) and more tasks than
        embedding dimensions, the encoder is differentiated per embedding coordinate and
        mixed with the head weights.
    data
        The graph (``x``, ``edge_index``; for SIGN, ``xs`` or they are propagated here).
    fanouts
        Tree fan-out per message-passing layer for graph models (default 10 per layer).
    """

    def __init__(self, model: nn.Module, data: Data, fanouts: Sequence[int] | None = None
                 ) -> None:
        self.model = model.eval()  # gradients of the deterministic network: no dropout
        self.layout = parameter_layout(model)
        self.num_params = sum(n for _, n in self.layout.values())
        self.head = _find_head(model)
        names = {id(p): n for n, p in model.named_parameters()}
        self.head_w = names.get(id(self.head.weight)) if self.head is not None else None
        self.head_b = (names.get(id(self.head.bias)) if self.head is not None
                       and isinstance(self.head.bias, nn.Parameter) else None)
        self.enc_names = [n for n in self.layout if not n.startswith("head.")]
        self.num_shared_params = sum(self.layout[n][1] for n in self.enc_names)
        nt = getattr(model, "num_tasks", None)
        if nt is None and self.head is not None:
            nt = self.head.weight.shape[0]
        self.num_tasks = nt
        # which parameters the hooks cover: linear layers, module-owned biases, the rest
        covered = set()
        for m in model.modules():
            if is_linear(m):
                covered |= {id(m.weight)} | ({id(m.bias)} if m.bias is not None else set())
            elif isinstance(getattr(m, "bias", None), nn.Parameter) and not any(
                    p is m.bias for c in m.children() for p in c.parameters()):
                covered.add(id(m.bias))
        self.dense_names = [n for n, p in model.named_parameters()
                            if p.requires_grad and id(p) not in covered]
        n_dense = sum(self.layout[n][1] for n in self.dense_names)
        if n_dense > _MAX_DENSE:
            raise ValueError(
                f"{n_dense} trainable parameters sit outside linear layers "
                f"({self.dense_names[:5]}...); per-sample gradients need the weights in "
                f"nn.Linear layers (at most {_MAX_DENSE} other parameters, done in forward "
                "mode).")
        self.uses_graph = bool(getattr(model, "uses_graph", True))
        self._trim: str | None = None  # decided on the first batch
        if self.uses_graph:
            self.kind = "graph"
            layers = _message_passing_layers(model)
            enc = getattr(model, "encoder", None)
            self.num_layers = getattr(enc, "num_layers", None) or max(len(layers), 1)
            self.fanouts = tuple(fanouts) if fanouts is not None else (10,) * self.num_layers
            if len(self.fanouts) != self.num_layers:
                raise ValueError(f"fanouts {self.fanouts} needs one entry per layer "
                                 f"({self.num_layers}).")
            self.x = data.x
            self.rowptr, self.col = csr_from_edge_index(data.edge_index, data.num_nodes)
        else:
            self.kind = "rows"
            xs = data.get("xs")
            if xs is None and isinstance(model, SIGN):
                xs = sign_propagate(data.x, data.edge_index, model.num_hops, data.num_nodes)
            self.xs = xs if xs is not None else data.x

    # ----------------------------------------------------------------- inputs
    def inputs(self, nodes: Tensor, generator: torch.Generator | None = None) -> tuple:
        """Per-sample inputs for ``nodes``: ``(rows (B, 1, ...),)`` for row models,
        ``(features per level, masks per level, trees)`` for graph models (trees are
        sampled with ``generator``)."""
        if not self.uses_graph:
            return (self.xs[nodes].unsqueeze(1),)
        trees = sample_trees(self.rowptr, self.col, nodes, self.fanouts, generator)
        return (trees.features(self.x), [m.float() for m in trees.mask], trees)

    def _batch(self, inputs: tuple) -> RowBatch:
        if not self.uses_graph:
            return rows_batch(inputs[0][:, 0])
        return graph_batch(inputs[2], self.x)

    def params(self) -> dict[str, Tensor]:
        return {k: v.detach() for k, v in self.model.named_parameters()}

    # ---------------------------------------------------------------- compute
    @torch.no_grad()
    def logits(self, inputs: tuple) -> Tensor:
        """Base-model logits ``(B, T)`` of the batch (same trees as the gradients)."""
        batch = self._batch(inputs)
        return self.model(*batch.args)[: batch.B]

    def _use_trim(self, batch: RowBatch) -> str | None:
        """How to cut message-passing layers to the tree levels they still need
        (``"pair"``, ``"slice"`` or ``None``): the first way that leaves the logits
        unchanged, checked once, on the first graph batch."""
        if not self.uses_graph:
            return None
        if self._trim is None:
            self._trim = ""
            layers = _message_passing_layers(self.model)
            if layers:
                with torch.no_grad():
                    full = self.model(*batch.args)[: batch.B]
                    for mode in ("pair", "slice"):
                        try:
                            with _Trimmer(layers, batch, mode):
                                cut = self.model(*batch.args)[: batch.B]
                        except (_TrimError, RuntimeError, ValueError, IndexError, TypeError,
                                AssertionError, AttributeError):
                            continue
                        if cut.shape == full.shape and torch.allclose(cut, full, atol=1e-5,
                                                                      rtol=1e-4):
                            self._trim = mode
                            break
        return self._trim or None

    def _factors(self, inputs: tuple, embed: bool, skip: set[int],
                 max_mb: float = 1024.0) -> Factors:
        batch = self._batch(inputs)
        named = dict(self.model.named_parameters())
        dense = {n: named[n] for n in self.dense_names if id(named[n]) not in skip}
        return capture_factors(self.model, batch, embed=embed, head=self.head, skip=skip,
                               dense_params=dense, trim=self._use_trim(batch), max_mb=max_mb)

    def _num_tasks(self, inputs: tuple) -> int:
        if self.num_tasks is None:
            self.num_tasks = int(self.logits(inputs).shape[1])
        return self.num_tasks

    def projected_gradients(self, inputs: tuple, projector, strategy: str = "auto",
                            head_slabs: tuple[Tensor, Tensor] | None = None,
                            max_jacobian_mb: float = 256.0) -> Tensor:
        """Projected gradients ``(B, T, d)`` of every task's logit for the batch.

        ``strategy``: ``"factored"`` (a :class:`KroneckerProjector`: weight-gradient sketches
        as outer products of factor sketches, no gradient materialised), ``"encoder"``
        (embedding-coordinate signals mixed with the head weights), ``"per_task"`` (one
        signal per task), or ``"auto"`` (factored for a Kronecker projector, else the
        cheaper of the other two). The non-factored paths materialise per-sample weight
        gradients for as many samples at a time as fit in ``max_jacobian_mb``.
        """
        T = self._num_tasks(inputs)
        H = self.head.weight.shape[1] if self.head is not None else None
        factored = isinstance(projector, KroneckerProjector)
        if strategy == "auto":
            strategy = "factored" if factored else (
                "encoder" if H is not None and H < T else "per_task")
        if strategy not in ("encoder", "per_task", "factored"):
            raise ValueError(f"strategy must be 'auto', 'encoder', 'per_task' or 'factored' "
                             f"(got {strategy!r}).")
        if (strategy == "factored") != factored:
            raise ValueError("strategy='factored' goes with a KroneckerProjector, and a "
                             "KroneckerProjector with strategy 'factored' or 'auto'.")
        if strategy == "encoder" and self.head is None:
            strategy = "per_task"  # no linear head to mix with
        if factored:
            shapes = [tuple(p.shape) for p in self.model.parameters() if p.requires_grad]
            shared = [tuple(self.model.get_parameter(n).shape) for n in self.enc_names]
            if projector.shapes not in (shapes, shared):
                raise ValueError("the KroneckerProjector's blocks do not match the model's "
                                 "parameters; build it with kronecker_projector(model, ...).")
            return self._factored(inputs, projector, with_head=projector.shapes == shapes
                                  and len(shapes) == len(self.layout))
        rows = H if strategy == "encoder" else T
        per_sample = rows * self.num_params * 4
        micro = max(1, int(max_jacobian_mb * 2**20 // per_sample))
        B = inputs[0].shape[0] if not self.uses_graph else inputs[0][0].shape[0]
        if head_slabs is None and strategy == "encoder":
            head_slabs = self.head_slabs(projector)
        parts = []
        for s in range(0, B, micro):
            sub = inputs if micro >= B else _slice_inputs(inputs, s, s + micro,
                                                          self.uses_graph)
            parts.append(self._projected(sub, projector, strategy, head_slabs))
        return torch.cat(parts)

    def _projected(self, inputs: tuple, projector, strategy: str,
                   head_slabs: tuple[Tensor, Tensor] | None) -> Tensor:
        """Materialise each block's per-sample gradient from its factors and project it."""
        embed = strategy == "encoder"
        names = {id(p): n for n, p in self.model.named_parameters()}
        f = self._factors(inputs, embed=embed, skip=set())
        B, R = f.target.shape
        acc: dict[str, Tensor] = {}

        def add(p: Tensor, grad: Tensor, lo: int, hi: int) -> None:  # grad (B, r, *shape)
            n = names[id(p)]
            if n not in acc:
                acc[n] = grad.new_zeros(B, R, *grad.shape[2:])
            acc[n][:, lo:hi] += grad

        for lo, hi, linear, bias in f.chunks:
            for w, b, d, a, sizes, dsum in linear:  # d (r, N, o), a (N, i): levels of rows
                s, grad = 0, None
                for n in sizes:
                    e = s + B * n
                    part = torch.einsum("rbno,bni->broi", d[:, s:e].view(d.shape[0], B, n, -1),
                                        a[s:e].view(B, n, -1))
                    grad = part if grad is None else grad.add_(part)
                    s = e
                add(w, grad, lo, hi)
                if b is not None:
                    add(b, dsum, lo, hi)
            for b, s in bias:
                add(b, s, lo, hi)
        g = None
        for n, grad in acc.items():
            off, k = self.layout[n]
            part = projector.project(grad.reshape(B * R, k), offset=off)
            g = part if g is None else g + part
        d_out = projector.out_dim
        g = g.reshape(B, R, d_out) if g is not None else f.target.new_zeros(B, R, d_out)
        if embed:
            W = self.head.weight.detach()
            slab_w, slab_b = head_slabs  # (T, H, d), (T, d)
            g = torch.einsum("th,bhd->btd", W, g)
            g += torch.einsum("bh,thd->btd", f.target, slab_w)
            g += slab_b.unsqueeze(0)
        for p, jac in f.dense:  # (B, T, *shape), w.r.t. the logits
            off, k = self.layout[names[id(p)]]
            g += projector.project(jac.reshape(-1, k), offset=off).reshape(g.shape)
        return g.detach()

    def _factored(self, inputs: tuple, projector: KroneckerProjector, with_head: bool = True
                  ) -> Tensor:
        """Per-sample projected gradients without materialising any weight gradient.

        The signal back-propagated to each linear layer's output rows (one vectorised
        reverse pass of the model over all samples' disjoint trees) and the layer's input
        rows are sketched separately, and each weight-gradient sketch is their outer product
        (:meth:`KroneckerProjector.project_outer_rows`). With a linear head and ``T > H`` the
        encoder is differentiated per embedding coordinate (``H`` signals) and the sketches
        are mixed with the head weights afterwards.
        """
        model = self.model
        trainable = [p for p in model.parameters() if p.requires_grad]
        names = {id(p): n for n, p in model.named_parameters()}
        if with_head:
            blocks = {id(p): i for i, p in enumerate(trainable)}
        else:
            enc = set(self.enc_names)
            blocks = {id(p): i for i, p in enumerate(
                p for p in trainable if names[id(p)] in enc)}
        skip = {id(p) for p in trainable if id(p) not in blocks}
        T = self._num_tasks(inputs)
        embed = self.head is not None and T > self.head.weight.shape[1]
        f = self._factors(inputs, embed=embed, skip=skip)
        B, R = f.target.shape
        d_out = projector.out_dim
        with torch.no_grad():
            g = f.target.new_zeros(B, R, d_out)
            for lo, hi, linear, bias in f.chunks:  # one reverse pass per chunk of outputs
                gc = g[:, lo:hi]
                sums: dict[int, Tensor] = {}

                def add_bias(p: Tensor, s: Tensor, sums=sums) -> None:  # s: (B, r, o)
                    k = blocks[id(p)]
                    sums[k] = sums[k] + s if k in sums else s

                for w, b, d, a, sizes, dsum in linear:
                    gc += projector.project_outer_rows(blocks[id(w)], d, a, sizes)
                    if b is not None:
                        add_bias(b, dsum)
                for b, s in bias:
                    add_bias(b, s)
                for k, s in sums.items():
                    gc += projector.project_block(k, s.reshape(-1, s.shape[-1])).reshape(
                        gc.shape)
            if embed:
                g = torch.einsum("th,bhd->btd", self.head.weight.detach(), g)
                if with_head:  # d logit_t / d W_head = e_t h^T, d logit_t / d b_t = e_t
                    eye = torch.eye(T, dtype=g.dtype)
                    g += projector.project_outer(blocks[id(self.head.weight)],
                                                 eye[:, None].expand(B, T, 1, T),
                                                 f.target[:, None])
                    if self.head_b is not None:
                        g += projector.project_block(blocks[id(self.head.bias)], eye)
            for p, jac in f.dense:  # (B, T, *shape), w.r.t. the logits
                g += projector.project_block(blocks[id(p)], jac.reshape(B * T, -1)).reshape(
                    B, T, d_out)
        return g

    def head_slabs(self, projector) -> tuple[Tensor, Tensor] | None:
        """Projection columns of the head coordinates: ``(T, H, d)`` for the weights and
        ``(T, d)`` for the biases (computed once with the projector's adjoint); ``None``
        for a model without a linear head."""
        if self.head is None or self.head_b is None:
            return None
        W = self.params()[self.head_w]
        T, H = W.shape
        d = projector.out_dim
        eye = torch.eye(d, dtype=W.dtype)
        ow, nw = self.layout[self.head_w]
        ob, nb = self.layout[self.head_b]
        cols_w = projector.transpose(eye, offset=ow, length=nw)  # (d, T*H)
        cols_b = projector.transpose(eye, offset=ob, length=nb)  # (d, T)
        return cols_w.T.reshape(T, H, d).contiguous(), cols_b.T.contiguous()


def _slice_inputs(inputs: tuple, lo: int, hi: int, uses_graph: bool) -> tuple:
    if not uses_graph:
        return (inputs[0][lo:hi],)
    xs, masks, trees = inputs[0], inputs[1], inputs[2]
    sub = ComputationTrees([n[lo:hi] for n in trees.nodes], [m[lo:hi] for m in trees.mask])
    return ([x[lo:hi] for x in xs], [m[lo:hi] for m in masks], sub)


def per_sample_gradients_loop(gm: GradientModel, inputs: tuple, tasks: Sequence[int] | None = None
                              ) -> Tensor:
    """Reference: one ``autograd.grad`` per (sample, task) on the real model.

    For graph models each sample's tree is built as an explicit graph
    (:meth:`ComputationTrees.tree_graph`, valid nodes only) and run through the model on its
    own, so this checks the batched trees, hooks and trimming too. Returns the full
    (unprojected) gradients ``(B, len(tasks), num_params)``. Slow: for tests and benchmarks.
    """
    model = gm.model
    was = model.training
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        if gm.uses_graph:
            trees: ComputationTrees = inputs[2]
            B = trees.batch_size
        else:
            B = inputs[0].shape[0]
        T = gm._num_tasks(inputs)
        tasks = list(range(T)) if tasks is None else list(tasks)
        out = torch.zeros(B, len(tasks), gm.num_params, dtype=params[0].dtype)
        for i in range(B):
            if gm.uses_graph:
                ids, ei = trees.tree_graph(i)
                logits = model(gm.x[ids], ei)[0]
            else:
                logits = model(inputs[0][i])[0]
            for j, t in enumerate(tasks):
                grads = torch.autograd.grad(logits[t], params, retain_graph=True,
                                            allow_unused=True)
                out[i, j] = torch.cat([
                    (g if g is not None else torch.zeros_like(p)).reshape(-1)
                    for g, p in zip(grads, params, strict=True)])
    finally:
        model.train(was)
    return out

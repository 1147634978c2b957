"""Vectorised per-sample gradients of every task's logit, projected on the fly.

For node ``v`` and task ``t`` we need ``g_vt = d logit_t(v) / d theta`` over all parameters
(10^5-10^7 of them), compressed to ``d`` dimensions by a random projection ``P``. The models'
heads are linear, ``logit_t = w_t . h(v) + b_t``, so

* encoder part:  ``P_enc g_vt = sum_k w_tk P_enc (d h_k(v) / d theta_enc)``: project the ``H``
  rows of the encoder Jacobian once per node and mix them with the head weights;
* head part:     ``d logit_t / d w_t = h(v)`` and ``d logit_t / d b_t = 1``: read off the
  projection's columns for the head coordinates (precomputed once).

That costs ``H`` reverse passes per node instead of ``T``; when ``T < H`` the per-task Jacobian is
cheaper and is used instead (``strategy="auto"``). Both run under ``torch.func.vmap`` over a batch
of nodes, each with its own fixed-size computation tree (:mod:`graphtag.gradients.trees`), never
one backward per sample.

Gradients are taken in eval mode (no dropout): the function differentiated is the deterministic
network the affinity stage linearises around.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, jacrev, vmap
from torch_geometric.data import Data

from graphtag.gradients.trees import ComputationTrees, csr_from_edge_index, sample_trees
from graphtag.models.gnn import MultitaskGNN
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


def _sage_tree_apps(params: dict[str, Tensor], num_layers: int, xs: Sequence[Tensor],
                    masks: Sequence[Tensor], eps: dict[str, Tensor] | None = None
                    ) -> tuple[Tensor, dict[str, tuple[Tensor, Tensor]]]:
    """GraphSAGE (mean aggregation, root weight) on one dense computation tree.

    ``xs[l]``: ``(f1..fl, F)`` features of level ``l``; returns the root embedding ``(H,)``
    and each layer application's inputs. Equals PyG's ``SAGEConv`` stack on the explicit tree
    graph (checked by the tests).

    With ``eps``, a zero perturbation is added to every layer output: the Jacobian with
    respect to ``eps["k.l"]`` is the back-propagated signal at layer ``k``'s output for tree
    level ``l``, and the returned activations are that layer's inputs (aggregated neighbours,
    root features), so weight gradients are their outer products.
    """
    h = list(xs)
    acts: dict[str, tuple[Tensor, Tensor]] = {}
    for k in range(num_layers):
        wl = params[f"encoder.convs.{k}.lin_l.weight"]
        bl = params.get(f"encoder.convs.{k}.lin_l.bias")
        wr = params[f"encoder.convs.{k}.lin_r.weight"]
        new = []
        for lvl in range(num_layers - k):
            m = masks[lvl + 1].unsqueeze(-1).to(h[lvl + 1].dtype)
            agg = (h[lvl + 1] * m).sum(-2) / m.sum(-2).clamp_min(1.0)
            name = f"{k}.{lvl}"
            pre = F.linear(agg, wl, bl) + F.linear(h[lvl], wr)
            if eps is not None:
                pre = pre + eps[name]
            acts[name] = (agg, h[lvl])
            new.append(pre.relu())
        h = new
    return h[0], acts


def _sign_apps(params: dict[str, Tensor], num_hops: int, xs: Tensor, eps: dict[str, Tensor]
               ) -> tuple[Tensor, dict[str, Tensor]]:
    """SIGN's embedding of one sample ``xs`` ``(K+1, F)`` with output perturbations (eval)."""
    acts: dict[str, Tensor] = {}
    parts = []
    for k in range(num_hops + 1):
        parts.append(F.linear(xs[k], params[f"hops.{k}.weight"], params[f"hops.{k}.bias"])
                     + eps[f"hop{k}"])
        acts[f"hop{k}"] = xs[k]
    hcat = torch.cat(parts).relu()
    acts["mix"] = hcat
    out = F.linear(hcat, params["mix.weight"], params["mix.bias"]) + eps["mix"]
    return out.relu(), acts


class GradientModel:
    """A trained model prepared for per-sample gradient extraction.

    Supports :class:`~graphtag.models.MultitaskGNN` with ``conv="sage"`` (computation trees
    with ``fanouts``) and :class:`~graphtag.models.SIGN` (its rows are independent), both with a
    :class:`~graphtag.models.MultiLabelHead`.

    Parameters
    ----------
    model
        The trained model (not modified; its parameters are read).
    data
        The graph (``x``, ``edge_index``; for SIGN, ``xs`` or they are propagated here).
    fanouts
        Tree fan-out per layer for graph models (default 10 per layer).
    """

    def __init__(self, model: nn.Module, data: Data, fanouts: Sequence[int] | None = None
                 ) -> None:
        if not isinstance(getattr(model, "head", None), MultiLabelHead):
            raise ValueError("per-sample gradients need a model with a MultiLabelHead "
                             "(one linear logit per task).")
        self.model = model.eval()  # gradients of the deterministic network: no dropout
        self.layout = parameter_layout(model)
        self.num_params = sum(n for _, n in self.layout.values())
        self.head_w, self.head_b = "head.lin.weight", "head.lin.bias"
        self.enc_names = [n for n in self.layout if not n.startswith("head.")]
        self.num_shared_params = sum(self.layout[n][1] for n in self.enc_names)
        if isinstance(model, MultitaskGNN):
            if model.encoder.conv_kind != "sage":
                raise ValueError(
                    f"per-sample gradients are implemented for conv='sage' and SIGN models, not "
                    f"conv={model.encoder.conv_kind!r}; train the base model with --model sage "
                    "or sign."
                )
            self.kind = "sage"
            self.num_layers = model.encoder.num_layers
            self.fanouts = tuple(fanouts) if fanouts is not None else (10,) * self.num_layers
            if len(self.fanouts) != self.num_layers:
                raise ValueError(f"fanouts {self.fanouts} needs one entry per layer "
                                 f"({self.num_layers}).")
            self.x = data.x
            self.rowptr, self.col = csr_from_edge_index(data.edge_index, data.num_nodes)
        elif isinstance(model, SIGN):
            self.kind = "sign"
            xs = data.get("xs")
            self.xs = xs if xs is not None else sign_propagate(
                data.x, data.edge_index, model.num_hops, data.num_nodes)
        else:
            raise ValueError(f"unsupported model {type(model).__name__}; use MultitaskGNN(sage) "
                             "or SIGN.")

    # ----------------------------------------------------------------- inputs
    def inputs(self, nodes: Tensor, generator: torch.Generator | None = None) -> tuple:
        """Batched per-sample inputs for ``nodes`` (trees are sampled with ``generator``)."""
        if self.kind == "sign":
            return (self.xs[nodes].unsqueeze(1),)
        trees = sample_trees(self.rowptr, self.col, nodes, self.fanouts, generator)
        return (trees.features(self.x), [m.float() for m in trees.mask], trees)

    def embed_fn(self) -> Callable[..., Tensor]:
        """``f(params, *per_sample_inputs) -> (H,)`` embedding of one sample."""
        if self.kind == "sage":
            nl = self.num_layers

            def f(params, xs, masks):
                return _sage_tree_apps(params, nl, xs, masks)[0]
            return f
        model = self.model

        def g(params, xs):  # xs: (1, K+1, F)
            full = {**dict(model.named_parameters()), **params}
            return functional_call(_EmbedOnly(model), {f"m.{k}": v for k, v in full.items()},
                                   (xs,))[0]
        return g

    def params(self) -> dict[str, Tensor]:
        return {k: v.detach() for k, v in self.model.named_parameters()}

    # ---------------------------------------------------------------- compute
    @torch.no_grad()
    def logits(self, inputs: tuple) -> Tensor:
        """Base-model logits ``(B, T)`` of the batch (same trees as the gradients)."""
        f, params = self.embed_fn(), self.params()
        h = vmap(f, in_dims=(None, 0, 0) if self.kind == "sage" else (None, 0))(
            params, *inputs[: 2 if self.kind == "sage" else 1])
        return F.linear(h, params[self.head_w], params[self.head_b])

    def projected_gradients(self, inputs: tuple, projector, strategy: str = "auto",
                            head_slabs: tuple[Tensor, Tensor] | None = None,
                            max_jacobian_mb: float = 256.0) -> Tensor:
        """Projected gradients ``(B, T, d)`` of every task's logit for the batch.

        ``strategy``: ``"encoder"`` (``H`` reverse passes, mix with head weights),
        ``"per_task"`` (``T`` reverse passes), or ``"auto"`` (the cheaper). The per-sample
        Jacobians are materialised for as many samples at a time as fit in
        ``max_jacobian_mb`` (at least one), so memory stays bounded for any batch size.
        """
        W = self.model.head.lin.weight
        T, H = W.shape
        factored = isinstance(projector, KroneckerProjector)
        if strategy == "auto":
            strategy = "factored" if factored else ("encoder" if H < T else "per_task")
        if strategy not in ("encoder", "per_task", "factored"):
            raise ValueError(f"strategy must be 'auto', 'encoder', 'per_task' or 'factored' "
                             f"(got {strategy!r}).")
        if (strategy == "factored") != factored:
            raise ValueError("strategy='factored' goes with a KroneckerProjector, and a "
                             "KroneckerProjector with strategy 'factored' or 'auto'.")
        if factored:
            shapes = [tuple(p.shape) for p in self.model.parameters()]
            if projector.shapes not in (shapes, shapes[: len(self.enc_names)]):
                raise ValueError("the KroneckerProjector's blocks do not match the model's "
                                 "parameters; build it with kronecker_projector(model, ...).")
            return self._factored(inputs, projector,
                                  with_head=len(projector.shapes) == len(shapes))
        rows = H if strategy == "encoder" else T
        per_sample = rows * self.num_params * W.element_size()
        micro = max(1, int(max_jacobian_mb * 2**20 // per_sample))
        B = inputs[0].shape[0] if self.kind == "sign" else inputs[0][0].shape[0]
        if micro >= B:
            return self._projected(inputs, projector, strategy, head_slabs)
        if head_slabs is None and strategy == "encoder":
            head_slabs = self.head_slabs(projector)
        parts = []
        for s in range(0, B, micro):
            sub = _slice_inputs(inputs, s, s + micro, self.kind)
            parts.append(self._projected(sub, projector, strategy, head_slabs))
        return torch.cat(parts)

    def _projected(self, inputs: tuple, projector, strategy: str,
                   head_slabs: tuple[Tensor, Tensor] | None) -> Tensor:
        params = self.params()
        W = params[self.head_w]
        T, H = W.shape
        f = self.embed_fn()
        args = inputs[: 2 if self.kind == "sage" else 1]
        in_dims = (None, *([0] * len(args)))
        enc = {k: params[k] for k in self.enc_names}
        rest = {k: v for k, v in params.items() if k not in enc}

        if strategy == "per_task":
            def logit_fn(p, *a):
                h = f({**rest, **p}, *a)
                return F.linear(h, p[self.head_w], p[self.head_b])
            allp = {**enc, self.head_w: W, self.head_b: params[self.head_b]}
            jac = vmap(jacrev(logit_fn), in_dims=in_dims)(allp, *args)  # name -> (B, T, *shape)
            B = next(iter(jac.values())).shape[0]
            out = None
            for name, (off, n) in self.layout.items():
                part = projector.project(jac[name].reshape(B * T, n), offset=off)
                out = part if out is None else out + part
            return out.reshape(B, T, -1)

        def emb(p, *a):
            return f({**rest, **p}, *a)
        jac = vmap(jacrev(emb), in_dims=in_dims)(enc, *args)  # name -> (B, H, *shape)
        B = next(iter(jac.values())).shape[0]
        pj = None
        for name in self.enc_names:
            off, n = self.layout[name]
            part = projector.project(jac[name].reshape(B * H, n), offset=off)
            pj = part if pj is None else pj + part
        pj = pj.reshape(B, H, -1)
        with torch.no_grad():
            h = vmap(f, in_dims=in_dims)(params, *args)  # (B, H)
            if head_slabs is None:
                head_slabs = self.head_slabs(projector)
            slab_w, slab_b = head_slabs  # (T, H, d), (T, d)
            g = torch.einsum("th,bhd->btd", W, pj)
            g += torch.einsum("bh,thd->btd", h, slab_w)
            g += slab_b.unsqueeze(0)
        return g

    def _factored(self, inputs: tuple, projector: KroneckerProjector, with_head: bool = True
                  ) -> Tensor:
        """Per-sample projected gradients without materialising any weight gradient.

        One vectorised reverse pass per task gives the back-propagated signal at each
        linear layer's output (the Jacobian w.r.t. a zero perturbation of that output);
        weight-gradient sketches are then outer products of factor sketches
        (:meth:`KroneckerProjector.project_outer`).
        """
        params = self.params()
        names = list(self.layout)
        block = {n: i for i, n in enumerate(names)}
        wh, bh = params[self.head_w], params[self.head_b]
        T = wh.shape[0]
        if self.kind == "sage":
            xs, masks = inputs[0], inputs[1]
            B = xs[0].shape[0]
            eps = {}
            for k in range(self.num_layers):
                out = params[f"encoder.convs.{k}.lin_l.weight"].shape[0]
                for lvl in range(self.num_layers - k):
                    eps[f"{k}.{lvl}"] = xs[0].new_zeros(*masks[lvl].shape, out)
            nl = self.num_layers

            def apps(e, x, m):
                return _sage_tree_apps(params, nl, x, m, e)
            args = (xs, masks)
            dtype_src = xs[0]
        else:
            xs = inputs[0][:, 0]  # (B, K+1, F)
            B = xs.shape[0]
            K = self.model.num_hops
            H1 = params["hops.0.weight"].shape[0]
            eps = {f"hop{k}": xs.new_zeros(B, H1) for k in range(K + 1)}
            eps["mix"] = xs.new_zeros(B, params["mix.weight"].shape[0])

            def apps(e, x):
                return _sign_apps(params, K, x, e)
            args = (xs,)
            dtype_src = xs
        H = wh.shape[1]
        if T > H:
            # H reverse passes for the embedding, then mixed by the head weights: the
            # per-task Jacobian would push T one-hot cotangents through the head, O(B T^2 H)
            def fn_h(e, *a):
                h, acts = apps(e, *a)
                return h, (acts, h)
            jac_h, (acts, h) = vmap(jacrev(fn_h, has_aux=True))(eps, *args)  # (B, H, *shape)
            jac = {k: torch.matmul(wh, v.reshape(B, H, -1)).reshape(B, T, *v.shape[2:])
                   for k, v in jac_h.items()}
            del jac_h
            if with_head:  # d logit_t / d (head output perturbation)_s is the identity
                jac["head"] = torch.eye(T, dtype=dtype_src.dtype).expand(B, T, T)
        else:
            def fn(e, *a):
                h, acts = apps(e, *a)
                out = F.linear(h, wh, bh)
                return (out + e["head"] if "head" in e else out), (acts, h)
            if with_head:
                eps["head"] = dtype_src.new_zeros(B, T)
            jac, (acts, h) = vmap(jacrev(fn, has_aux=True))(eps, *args)  # (B, T, *shape)

        def flat(t: Tensor, lead: int) -> Tensor:  # (B, [T,] n..., c) -> (B, [T,] n, c)
            return t.reshape(*t.shape[:lead], -1, t.shape[-1])

        # (block, delta (B,T,n,o), act (B,n,i)) for weights; (block, summed delta) for biases.
        outers: list[tuple[int, Tensor, Tensor]] = []
        biases: dict[int, Tensor] = {}

        def add_bias(name: str, delta: Tensor) -> None:
            b = block[name]
            s = delta.sum(2)
            biases[b] = biases[b] + s if b in biases else s

        if self.kind == "sage":
            for name, (agg, hroot) in acts.items():
                k = name.split(".")[0]
                d = flat(jac[name], 2)
                outers.append((block[f"encoder.convs.{k}.lin_l.weight"], d, flat(agg, 1)))
                outers.append((block[f"encoder.convs.{k}.lin_r.weight"], d, flat(hroot, 1)))
                if f"encoder.convs.{k}.lin_l.bias" in block:
                    add_bias(f"encoder.convs.{k}.lin_l.bias", d)
        else:
            for name, a in acts.items():
                prefix = f"hops.{name[3:]}" if name.startswith("hop") else "mix"
                d = jac[name].unsqueeze(2)
                outers.append((block[f"{prefix}.weight"], d, a.unsqueeze(1)))
                add_bias(f"{prefix}.bias", d)
        if with_head:
            dh = jac["head"].unsqueeze(2)  # (B, T, 1, T): the identity
            outers.append((block[self.head_w], dh, h.unsqueeze(1)))
            add_bias(self.head_b, dh)

        with torch.no_grad():
            g = None
            for b, d, a in outers:
                part = projector.project_outer(b, d.detach(), a.detach())
                g = part if g is None else g + part
            for b, s in biases.items():
                g += projector.project_block(b, s.reshape(B * T, -1).detach()).reshape(B, T, -1)
        return g

    def head_slabs(self, projector) -> tuple[Tensor, Tensor]:
        """Projection columns of the head coordinates: ``(T, H, d)`` for the weights and
        ``(T, d)`` for the biases (computed once with the projector's adjoint)."""
        W = self.params()[self.head_w]
        T, H = W.shape
        d = projector.out_dim
        eye = torch.eye(d, dtype=W.dtype)
        ow, nw = self.layout[self.head_w]
        ob, nb = self.layout[self.head_b]
        cols_w = projector.transpose(eye, offset=ow, length=nw)  # (d, T*H)
        cols_b = projector.transpose(eye, offset=ob, length=nb)  # (d, T)
        return cols_w.T.reshape(T, H, d).contiguous(), cols_b.T.contiguous()


def _slice_inputs(inputs: tuple, lo: int, hi: int, kind: str) -> tuple:
    if kind == "sign":
        return (inputs[0][lo:hi],)
    xs, masks = inputs[0], inputs[1]
    return ([x[lo:hi] for x in xs], [m[lo:hi] for m in masks])


class _EmbedOnly(nn.Module):
    def __init__(self, m: nn.Module) -> None:
        super().__init__()
        self.m = m

    def forward(self, xs: Tensor) -> Tensor:
        return self.m.embed(xs)


def per_sample_gradients_loop(gm: GradientModel, inputs: tuple, tasks: Sequence[int] | None = None
                              ) -> Tensor:
    """Reference: one ``autograd.grad`` per (sample, task) on the real PyG model.

    For SAGE models each sample's tree is built as an explicit graph and run through the
    model's own ``SAGEConv`` layers, so this also checks the dense tree forward. Returns the
    full (unprojected) gradients ``(B, len(tasks), num_params)``.
    """
    model = gm.model
    was = model.training
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        if gm.kind == "sage":
            trees: ComputationTrees = inputs[2]
            B = trees.batch_size
        else:
            B = inputs[0].shape[0]
        T = model.num_tasks
        tasks = list(range(T)) if tasks is None else list(tasks)
        out = torch.zeros(B, len(tasks), gm.num_params, dtype=params[0].dtype)
        for i in range(B):
            if gm.kind == "sage":
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

"""Per-sample gradient factors read off the model's own forward pass, with module hooks.

For a linear layer ``y = x W^T + b`` applied to the rows of a batch, the gradient of one
output scalar with respect to ``W`` is ``sum_rows outer(dy_row, x_row)`` and with respect to
``b`` is ``sum_rows dy_row``. When every sample of the batch has its own rows and no row
influences another sample (a batch of disjoint per-seed computation trees,
:mod:`graphtag.gradients.trees`, or the independent rows of an MLP over precomputed features),
one reverse pass with a cotangent on *every* sample's output at once gives, at each row, the
signal back-propagated from that row's own sample; per-sample gradients are then sums over
each sample's rows. So no forward pass is written twice: the model runs as it is, and

* a forward hook on every ``nn.Linear`` (or PyG ``torch_geometric.nn.dense.linear.Linear``)
  records the layer's input rows and exposes its output rows to ``autograd.grad``;
* a one-line "bias owned by the module" rule covers PyG convolutions that add their own
  ``bias`` to their output (``GCNConv``, ``GraphConv``, ...): the signal at the module's
  output, summed over rows;
* any other trainable parameter (e.g. ``GINConv``'s ``eps``) is differentiated in forward
  mode, one ``jvp`` per element (so they must be few).

Two costs are cut without knowing the model:

* *trimming* (graph models): trees are laid out level by level, so the nodes a message
  passing layer still needs are a prefix of the rows. Hooks on the top-level
  ``MessagePassing`` layers call each layer bipartite on that prefix (PyG's
  ``trim_to_layer``), or slice its input and output. Trimming changes some models
  (``GCNConv`` normalises by degrees the trimmed edges change), so it is used only when the
  trimmed forward gives the untrimmed logits (checked once per :class:`GradientModel`);
* *probing* (where rows are not all needed): one cheap reverse pass with a random cotangent
  marks the rows whose signal is zero for every sample (nodes deeper than a layer's
  receptive field, placeholders). Those rows are held constant in the real pass, so no layer
  spends a matrix product on them.

Where every row is needed (independent rows, bipartite trimming) the forward that recorded
the layers is the real pass: its graph is differentiated with respect to the recorded layer
outputs themselves, with ``torch.autograd.grad`` vectorised over the cotangents by
``torch.func.vmap`` (unless the model modified a recorded output in place). Otherwise the real
pass differentiates zero perturbations of the kept output rows with ``torch.func.vjp``, under
the same ``vmap``. Either runs in chunks of cotangents whose signals fit in cache. Within it,
PyG layers gather ``x_j`` through :class:`_Gather` (their ``_index_select`` is replaced on the
instance for the duration; no gather when each source row is taken once, in order) and sum or
mean aggregations scatter through :class:`_Scatter`: both vectorise over the cotangents as one
``index_select`` / ``index_add_`` of the batched signal, where the built-in backward of a row
gather loops and that of ``scatter_add_`` gathers with an index broadcast to the signal's size.
The signals come out as ``(cotangents, rows, width)``, which
:meth:`~graphtag.projection.KroneckerProjector.project_outer_rows` projects as they are.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call, jvp, vjp, vmap

from graphtag.gradients._layout import RowBatch, _prefix_sizes, graph_batch, rows_batch
from graphtag.gradients._scatter import _FastGather, _Gather, _Scatter  # noqa: F401 (re-exported)
from graphtag.gradients._trim import (  # noqa: F401 (_TrimError: re-exported)
    _message_passing_layers,
    _TrimError,
    _Trimmer,
)

__all__ = ["LINEAR_TYPES", "Factors", "RowBatch", "capture_factors", "graph_batch",
           "is_linear", "rows_batch"]

try:  # PyG's Linear is a torch.nn.Module with .weight and .bias, not a torch.nn.Linear
    from torch_geometric.nn.dense.linear import Linear as _PygLinear

    LINEAR_TYPES: tuple[type, ...] = (nn.Linear, _PygLinear)
except ImportError:  # pragma: no cover
    LINEAR_TYPES = (nn.Linear,)


def is_linear(m: nn.Module) -> bool:
    return isinstance(m, LINEAR_TYPES)


# ------------------------------------------------------------------ capture
@dataclass
class Factors:
    """Per-sample gradient factors of ``R`` output coordinates for a batch of ``B`` samples.

    ``chunks`` yields ``(lo, hi, linear, bias)`` for output coordinates ``lo..hi-1`` (one
    reverse pass each): ``linear`` holds ``(weight, bias | None, delta (r, N, o), act (N, i),
    sizes, delta summed over each sample's rows (B, r, o) | None)`` per layer application,
    whose ``N`` rows are levels of ``B * sizes[l]`` rows, sample-major (the layout of
    :meth:`KroneckerProjector.project_outer_rows`; weight gradient
    ``sum_rows delta_row act_row^T`` over the sample's rows, bias gradient
    ``sum_rows delta_row``), ``bias`` holds
    ``(parameter, (B, r, o))`` summed signals of module-owned biases. ``dense``:
    ``(parameter, (B, T, *shape))`` full per-sample Jacobians of any other parameter, always
    with respect to the *logits*.
    """

    chunks: Iterator[tuple[int, int, list, list]]
    dense: list[tuple[nn.Parameter, Tensor]]
    target: Tensor  # (B, R) the differentiated outputs (logits or embeddings) at the roots
    logits: Tensor  # (B, T)


class _Recorder:
    """Forward hooks on the modules that own parameters: record (probe) or substitute."""

    def __init__(self, linears: Sequence[nn.Module], biased: Sequence[nn.Module],
                 head: nn.Module | None, batch: RowBatch,
                 keep: dict[int, tuple[Tensor, bool]] | None = None,
                 eps: tuple[dict[int, Tensor], list[Tensor]] | None = None) -> None:
        self.linears, self.biased, self.head, self.batch = linears, biased, head, batch
        self.eps = eps  # perturbations of the kept linear rows and of module-bias outputs
        self.keep = keep  # application -> (rows to keep, whether a prefix); None: probe
        self.apps: list[tuple[nn.Module, Tensor, Tensor]] = []  # (module, input, output/sub)
        self.bias_outs: list[tuple[nn.Module, Tensor]] = []
        self.versions: list[tuple[Tensor, int]] = []  # recorded outputs, their version
        self.h: Tensor | None = None
        self.handles: list = []

    def __enter__(self) -> _Recorder:
        for m in self.linears:
            self.handles.append(m.register_forward_hook(self._linear))
        for m in self.biased:
            self.handles.append(m.register_forward_hook(self._biased))
        if self.head is not None:
            self.handles.append(self.head.register_forward_hook(self._head))
        return self

    def __exit__(self, *exc) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()

    def _rows(self, t: Tensor) -> None:
        if t.dim() != 2:
            raise ValueError(f"per-sample gradients need linear layers applied to (rows, "
                             f"features) inputs, got shape {tuple(t.shape)}.")
        m = t.shape[0]
        if m > self.batch.num_rows or (m != self.batch.num_rows and m not in _prefix_sizes(
                self.batch)):
            raise ValueError(
                f"a linear layer saw {m} rows, which are not the batch's nodes "
                f"({self.batch.num_rows}) or a level prefix of them; per-sample gradients "
                "support layers applied to node (or sample) rows only.")

    def _linear(self, module, inputs, out):
        x = inputs[0]
        self._rows(x)
        if self.keep is None:
            self.apps.append((module, x.detach(), out))
            self.versions.append((out, out._version))
            return None
        i = len(self.apps)
        kept = self.keep.get(i)
        if kept is None:  # no row of this application reaches any output
            self.apps.append((module, x.detach(), None))
            return out.detach()
        idx, prefix = kept
        base = out.detach()
        if prefix:  # the rows kept are the first ones (level-major trees): slice, no scatter
            k = idx.numel()
            xk = x if k == x.shape[0] else x[:k]  # (a no-op slice costs a backward copy)
            sub = torch.nn.functional.linear(xk, module.weight, module.bias) + self.eps[0][i]
            self.apps.append((module, xk.detach(), sub))
            return sub if k == base.shape[0] else torch.cat([sub, base[k:]])
        xs = x[idx]
        sub = torch.nn.functional.linear(xs, module.weight, module.bias) + self.eps[0][i]
        self.apps.append((module, xs.detach(), sub))
        return base.index_put((idx,), sub)

    def _biased(self, module, inputs, out):
        if isinstance(out, Tensor):
            self._rows(out)
            if self.eps is not None:
                out = out + self.eps[1][len(self.bias_outs)]
            else:
                self.versions.append((out, out._version))
            self.bias_outs.append((module, out))
            return out
        return None

    def _head(self, module, inputs, out):
        self.h = inputs[0]

    def unchanged(self) -> bool:
        """Whether no recorded output was modified in place after it was recorded (then
        gradients with respect to it are the signals at the layer's output)."""
        return all(t._version == v for t, v in self.versions)



_CHUNK_BYTES = 8 * 2**20  # target size of one signal tensor in a chunked reverse pass


def capture_factors(model: nn.Module, batch: RowBatch, *, embed: bool,
                    head: nn.Module | None, skip: set[int], dense_params: dict[str, Tensor],
                    trim: str | None, max_mb: float = 256.0) -> Factors:
    """Run ``model`` on ``batch`` and read off the per-sample gradient factors.

    ``embed=True`` differentiates the head's input (``H`` rows per sample, for mixing with
    the head's weights; the head's own parameters are then left out), else the logits.
    Parameters whose ``id`` is in ``skip`` are left out. ``dense_params``: name -> parameter
    of the parameters outside linear layers and module biases (forward-mode Jacobians).
    """
    B = batch.B
    params = {id(p) for p in model.parameters() if p.requires_grad}
    linears = [m for m in model.modules() if is_linear(m)
               and not (embed and m is head) and id(m.weight) in params
               and id(m.weight) not in skip]
    biased = [m for m in model.modules() if not is_linear(m)
              and isinstance(getattr(m, "bias", None), nn.Parameter)
              and m.bias.requires_grad and id(m.bias) not in skip
              and not any(p is m.bias for c in m.children() for p in c.parameters())]
    if embed and head is None:
        raise ValueError("embedding mode needs a linear head")
    layers = _message_passing_layers(model) if trim else []
    mode = trim or "pair"

    def run(rec: _Recorder) -> tuple[Tensor, Tensor]:
        with _FastGather(model):
            if layers:
                with _Trimmer(layers, batch, mode):
                    out = model(*batch.args)
            else:
                out = model(*batch.args)
        logits = out[:B]
        if embed:
            if rec.h is None:
                raise ValueError("the head was not called on the embedding")
            return rec.h[:B], logits
        return logits, logits

    # probe: one forward, and one reverse pass with a random cotangent that marks the rows
    # that matter. For independent rows, and for layers trimmed bipartite to the levels they
    # feed, every row does: then the probe's forward is the real pass (below)
    all_rows = batch.n == 1 or trim == "pair"
    gen = torch.Generator().manual_seed(12345)
    with torch.enable_grad(), _Recorder(linears, biased, head if embed else None,
                                        batch) as rec:
        target, logits = run(rec)
        outs = [o for _, _, o in rec.apps]
        lin_width = [o.shape[-1] for o in outs]
        linears_by_call = [m for m, _, _ in rec.apps]
        bias_shapes = [tuple(o.shape) for _, o in rec.bias_outs]
        bias_mods = [m for m, _ in rec.bias_outs]
        if all_rows:
            gs = list(outs)
        elif outs:
            c = torch.randn(target.shape, generator=gen, dtype=target.dtype)
            gs = torch.autograd.grad(target, outs, c, allow_unused=True, retain_graph=True)
        else:
            gs = []
    keep: dict[int, tuple[Tensor, bool]] = {}
    split: dict[int, list[int]] = {}  # kept positions per level, in row order
    bounds = [*batch.level_bounds(), batch.num_rows]
    for i, g in enumerate(gs):
        if g is None:
            continue
        m = g.shape[0]
        if all_rows and m in bounds:  # the first levels, whole
            keep[i] = (torch.arange(m), True)
            split[i] = [n // B for n in batch.level_sizes[: bounds.index(m) + 1]]
            continue
        nz = (g != 0).any(-1) if not all_rows else torch.ones(m, dtype=torch.bool)
        pos = torch.zeros(batch.n, dtype=torch.bool)
        pos[batch.pos_of_row[:m][nz]] = True
        if pos.any():
            # rows ascending: level by level, and sample-major within a level
            rows = torch.sort(batch.row_of[:, pos].reshape(-1)).values
            keep[i] = (rows, bool(int(rows[-1]) == rows.numel() - 1))
            lvl = torch.bucketize(rows, torch.tensor(batch.level_bounds()), right=True)
            split[i] = [int(c) // B for c in torch.bincount(lvl).tolist() if c]
    del gs
    kept = sorted(keep)

    if all_rows and rec.unchanged():
        # every row kept: differentiate the probe's graph with respect to the recorded layer
        # outputs themselves (vmap over autograd.grad vectorises the reverse pass over the
        # cotangents; no second forward)
        diff = [outs[i] for i in kept] + [o for _, o in rec.bias_outs]
        acts = [rec.apps[i][1] for i in kept]
        n_lin, tgt = len(kept), target

        def reverse(cot: Tensor) -> tuple[list[Tensor], list[Tensor]]:
            g = torch.autograd.grad(tgt, diff, cot, retain_graph=True, allow_unused=True,
                                    materialize_grads=True)
            return list(g[:n_lin]), list(g[n_lin:])
        logits = logits.detach()
    else:
        # the real pass: kept rows only, all cotangents. Zero perturbations of the kept
        # linear output rows (and of module-bias outputs) are the inputs differentiated, with
        # torch.func (its vmap vectorises the reverse pass over the cotangents)
        del outs, rec, target, logits
        dtype = batch.args[0].dtype
        eps_l = [torch.zeros(keep[i][0].numel(), lin_width[i], dtype=dtype) for i in kept]
        eps_b = [torch.zeros(sh, dtype=dtype) for sh in bias_shapes]

        def f(el: list[Tensor], eb: list[Tensor]):
            r = _Recorder(linears, biased, head if embed else None, batch, keep,
                          eps=(dict(zip(kept, el, strict=True)), eb))
            with r:
                tgt, lg = run(r)
            acts = [r.apps[i][1] for i in kept]
            return tgt, (lg.detach(), acts)

        with torch.enable_grad():
            target, reverse, (logits, acts) = vjp(f, eps_l, eps_b, has_aux=True)
    R = target.shape[1]
    # cotangents per reverse pass: each signal tensor (kept rows x width) a few MB, so the
    # pass runs in cache; capped by the memory budget over all rows
    rows_kept = max([keep[i][0].numel() for i in kept] + [sh[0] for sh in bias_shapes] + [1])
    wmax = max([*lin_width, *(sh[-1] for sh in bias_shapes), 1])
    chunk = max(1, min(int(_CHUNK_BYTES // (4 * rows_kept * wmax)),
                       int(max_mb * 2**20 // (4 * 4 * batch.num_rows * wmax))))
    chunk = -(-R // -(-R // chunk))  # as many passes, of equal size
    eye = torch.eye(R, dtype=target.dtype)
    lin_apps = [(i, linears_by_call[i], acts[k]) for k, i in enumerate(kept)]

    def chunks():
        for lo in range(0, R, chunk):
            hi = min(R, lo + chunk)
            r = hi - lo
            gl, gb = vmap(reverse)(eye[lo:hi, None, :].expand(r, B, R))
            linear = []
            for d, (i, m, a) in zip(gl, lin_apps, strict=True):  # d: (r, kept rows, o)
                wb = (m.bias if isinstance(m.bias, nn.Parameter) and m.bias.requires_grad
                      and id(m.bias) not in skip else None)
                dsum, s = None, 0
                if wb is not None:
                    for n in split[i]:  # rows of one level: (r, B, n, o), summed over n
                        e = s + B * n
                        part = d[:, s:e] if n == 1 else d[:, s:e].view(r, B, n, -1).sum(2)
                        dsum = part if dsum is None else dsum + part  # (not into d)
                        s = e
                    dsum = dsum.transpose(0, 1)
                linear.append((m.weight, wb, d, a, split[i], dsum))
            bias = []
            for d, m in zip(gb, bias_mods, strict=True):  # d: (r, rows, o)
                sums = d.new_zeros(r, B, d.shape[-1]).index_add_(
                    1, batch.tree_of_row[: d.shape[1]], d)
                bias.append((m.bias, sums.transpose(0, 1)))
            yield lo, hi, linear, bias

    dense = []
    if dense_params:
        dense = _forward_mode(model, batch, dense_params, layers, mode)
    return Factors(chunks(), dense, target.detach(), logits)


def _forward_mode(model: nn.Module, batch: RowBatch, dense: dict[str, Tensor],
                  layers: list[nn.Module], mode: str) -> list[tuple[nn.Parameter, Tensor]]:
    """Per-sample Jacobians ``(B, T, *shape)`` of the logits w.r.t. a few parameters, one
    forward-mode pass per element (each sample's logits see only its own rows)."""
    B = batch.B
    named = dict(model.named_parameters())
    out = []
    for name, p in dense.items():
        flat = p.detach().reshape(-1)
        cols = []
        for j in range(flat.numel()):
            tangent = torch.zeros_like(flat)
            tangent[j] = 1.0

            def f(v, name=name, shape=p.shape):
                if layers:
                    with _Trimmer(layers, batch, mode):
                        y = functional_call(model, {name: v.reshape(shape)}, batch.args)
                else:
                    y = functional_call(model, {name: v.reshape(shape)}, batch.args)
                return y[:B]
            with torch.no_grad():
                _, t = jvp(f, (flat,), (tangent,))
            cols.append(t)
        out.append((named[name], torch.stack(cols, -1).reshape(*cols[0].shape, *p.shape)))
    return out

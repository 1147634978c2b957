"""Projected per-sample gradients of every task's logit, for your own analysis.

Trains graphtag's GraphSAGE model briefly on a planted-group graph, then takes the gradient
of each (node, task) logit with respect to the shared (encoder) parameters, sketched to
``--dim`` numbers by a sparse random projection: in memory for a batch (``GradientModel``)
and into a resumable on-disk store (``collect_gradients``). What you do with them is up to
you; here, the cosine similarity of the tasks' mean gradients, within and across the planted
task groups. (Per-sample gradients support graphtag's ``MultitaskGNN(conv="sage")`` and
``SIGN`` models.)

    python examples/02_per_sample_gradients.py --epochs 10 --tasks 8
"""

import argparse
import tempfile

import torch

import graphtag as gt
from graphtag.gradients import GradientModel, collect_gradients, kronecker_projector

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--epochs", type=int, default=10)
ap.add_argument("--tasks", type=int, default=8, help="tasks, in 4 planted groups (>= 8)")
ap.add_argument("--dim", type=int, default=64, help="projection dimension")
ap.add_argument("--nodes", type=int, default=256, help="training nodes to collect")
args = ap.parse_args()
gt.seed_everything(0)

data = gt.load_dataset("synthetic", num_tasks=args.tasks, num_features=32, log=False)
model = gt.MultitaskGNN(data.num_features, 64, num_tasks=args.tasks, conv="sage")
gt.Trainer(model, epochs=args.epochs, num_neighbors=(10, 5), pos_weight="auto",
           progress=False).fit(data)

# Only the shared parameters: each task's head row is its own, and a projection would only
# add random overlaps between them.
P = kronecker_projector(model, out_dim=args.dim, seed=0, shared_only=True)
nodes = data.train_mask.nonzero().flatten()[: args.nodes]

# In memory, one batch: each node's 2-hop computation tree is sampled with fan-outs (10, 5).
gm = GradientModel(model, data, fanouts=(10, 5))
inputs = gm.inputs(nodes[:32], generator=torch.Generator().manual_seed(0))
g = gm.projected_gradients(inputs, P)  # (32 nodes, T tasks, dim)
print(f"batch gradients: {tuple(g.shape)}; logits {tuple(gm.logits(inputs).shape)}")

# On disk, in resumable chunks (rerunning the call picks up where an interrupted one stopped).
folder = tempfile.mkdtemp(prefix="graphtag-grads-")
store = collect_gradients(model, data, nodes, P, folder, fanouts=(10, 5), progress=False)
G = torch.tensor(store.grads[:], dtype=torch.float64)  # (nodes, T, dim), memory-mapped
print(f"store: {store.num_nodes} nodes x {store.num_tasks} tasks x {store.dim} dims in {folder}")

# Your analysis: how aligned are the tasks' gradients, weighted by each node's residual?
y = torch.tensor(store.labels[:], dtype=torch.float64)
resid = torch.sigmoid(torch.tensor(store.logits[:], dtype=torch.float64)) - y  # d loss / d logit
mean = torch.einsum("nt,ntd->td", resid, G) / len(nodes)  # each task's loss gradient
unit = mean / mean.norm(dim=1, keepdim=True).clamp_min(1e-12)
cos = unit @ unit.T
same = data.task_group[:, None] == data.task_group[None, :]
off = ~torch.eye(args.tasks, dtype=torch.bool)
print(f"gradient cosine within planted groups {cos[same & off].mean():.3f}, "
      f"across groups {cos[~same].mean():.3f}")

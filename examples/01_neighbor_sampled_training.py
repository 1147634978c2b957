"""Neighbor-sampled multitask training on your own graph, as a plain PyTorch loop.

Your graph as files (an edge list and a node x label table, written here to a temp folder),
loaded with ``graphtag.load_dataset``; graphtag's ``MultitaskGNN``, masked BCE and metrics;
PyG's ``NeighborLoader`` for the minibatches. Everything else is yours.

    python examples/01_neighbor_sampled_training.py --epochs 20 --tasks 12
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch_geometric.loader import NeighborLoader

import graphtag as gt
from graphtag.training import masked_bce_per_task

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--epochs", type=int, default=20)
ap.add_argument("--tasks", type=int, default=12, help="labels (communities) to make up")
ap.add_argument("--nodes", type=int, default=1500)
ap.add_argument("--seed", type=int, default=0)
args = ap.parse_args()
rng = np.random.default_rng(args.seed)
gt.seed_everything(args.seed)

# 1. A graph as you might have it: users in overlapping communities, edges mostly within them.
n, T = args.nodes, args.tasks
member = rng.random((n, T)) < 1.5 / T
clubs = [np.flatnonzero(member[:, t]) for t in range(T)]
edges = np.vstack([rng.choice(clubs[t], size=(6 * n // T, 2)) for t in range(T)]
                  + [rng.integers(0, n, size=(n // 4, 2))])  # plus some noise edges
edges = np.unique(np.sort(edges[edges[:, 0] != edges[:, 1]], axis=1), axis=0)
folder = Path(tempfile.mkdtemp(prefix="graphtag-example-"))
with open(folder / "edges.csv", "w") as f:
    f.write("source,target\n" + "".join(f"user{u},user{v}\n" for u, v in edges))
with open(folder / "labels.csv", "w") as f:  # an empty cell is an unknown label
    f.write("node," + ",".join(f"club{t}" for t in range(T)) + "\n")
    for v in range(n):
        cells = ["" if rng.random() < 0.1 else str(int(m)) for m in member[v]]
        f.write(f"user{v}," + ",".join(cells) + "\n")

# 2. Load it: ids matched, labels checked, spectral features computed, a train/val/test split.
# Users without an edge are kept as isolated nodes (the default, "error", refuses them).
data = gt.load_dataset(folder / "edges.csv", labels=folder / "labels.csv", num_features=32,
                       unknown_nodes="add", log=False)
label_mask = data.get("label_mask")
if label_mask is None:
    label_mask = torch.ones_like(data.y, dtype=torch.bool)
data.label_mask = label_mask
print(f"graph: {data.num_nodes} nodes, {data.edge_index.size(1)} directed edges, "
      f"{data.y.size(1)} tasks, {int((~label_mask).sum())} unknown labels")

# 3. graphtag's model inside your own loop.
model = gt.MultitaskGNN(data.num_features, 64, num_tasks=data.y.size(1), conv="sage", dropout=0.0)
opt = torch.optim.Adam(model.parameters(), lr=0.01)
known = data.label_mask[data.train_mask]
pos = (data.y[data.train_mask] * known).sum(0)
pos_weight = ((known.sum(0) - pos) / pos.clamp_min(1)).clamp(max=100)  # rare labels count more
loader = NeighborLoader(data, num_neighbors=[10, 5], input_nodes=data.train_mask,
                        batch_size=256, shuffle=True)


@torch.no_grad()
def evaluate(mask):
    model.eval()
    logits = model(data.x, data.edge_index)  # small graph: one full forward
    return gt.multitask_scores(data.y[mask], logits[mask], data.label_mask[mask])


for epoch in range(1, args.epochs + 1):
    model.train()
    total = 0.0
    for batch in loader:
        opt.zero_grad()
        out = model(batch.x, batch.edge_index)[: batch.batch_size]  # seed nodes come first
        seeds = slice(0, batch.batch_size)
        loss = masked_bce_per_task(out, batch.y[seeds], batch.label_mask[seeds],
                                   pos_weight).mean()
        loss.backward()
        opt.step()
        total += loss.item()
    val = evaluate(data.val_mask)
    print(f"epoch {epoch:3d}  loss {total / len(loader):.4f}  val macro-F1 {val['macro_f1']:.3f}")

test = evaluate(data.test_mask)
print(f"test macro-F1 {test['macro_f1']:.3f}  micro-F1 {test['micro_f1']:.3f}  "
      f"ROC-AUC {test['roc_auc']:.3f}")

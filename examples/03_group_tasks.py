"""Group tasks from an affinity matrix you already have, then train per-group models.

The affinity can come from anywhere: a Grad-TAG run (``runs/<name>/affinity/affinity.npy``,
``GradTAG(...).fit(...).affinity_``), your own experiments, or, when no ``--affinity`` file
is given, the label correlation on the training nodes computed here. The clustering SDP
(``graphtag.grouping.sdp_groups``) splits the tasks into ``--groups`` groups; then one model
per group is compared with one model for all tasks and with one shared encoder carrying a
separate head per group (``GroupedHeads``).

    python examples/03_group_tasks.py --epochs 20 --tasks 12 --groups 4
"""

import argparse

import numpy as np
import torch

import graphtag as gt
from graphtag.grouping import sdp_groups

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--epochs", type=int, default=20)
ap.add_argument("--tasks", type=int, default=12, help="tasks, in 4 planted groups")
ap.add_argument("--groups", type=int, default=4)
ap.add_argument("--affinity", default=None, help="a (T, T) .npy affinity to group by")
args = ap.parse_args()

data = gt.load_dataset("synthetic", num_tasks=args.tasks, num_features=32, log=False)
if args.affinity:
    A = np.load(args.affinity)
else:  # a cheap stand-in: how the tasks' training labels co-occur
    A = np.corrcoef(data.y[data.train_mask].numpy().T)
groups = sdp_groups(A, args.groups, seed=0)
print("groups:", groups, "(planted:", data.task_group.tolist(), ")")


def train(model, d):
    gt.seed_everything(0)
    return gt.Trainer(model, epochs=args.epochs, num_neighbors=(10, 5), pos_weight="auto",
                      progress=False).fit(d)


# One model for all tasks.
mtl = train(gt.MultitaskGNN(data.num_features, 64, num_tasks=args.tasks), data)
print(f"one model, all tasks:        test macro-F1 {mtl.evaluate(data)['macro_f1']:.3f}")

# One model per group, each on a copy of the graph that holds only its group's labels.
logits = torch.zeros_like(data.y)
for g in groups:
    sub = data.clone()
    sub.y = data.y[:, g]
    if data.get("label_mask") is not None:
        sub.label_mask = data.label_mask[:, g]
    trainer = train(gt.MultitaskGNN(data.num_features, 64, num_tasks=len(g)), sub)
    logits[:, g] = trainer.predict_logits(sub)
per_group = mtl.evaluate(data, "test", logits=logits)["macro_f1"]
print(f"one model per group:         test macro-F1 {per_group:.3f}")

# One encoder, one head per group (a cheaper middle ground).
heads = gt.GroupedHeads(64, groups, hidden_channels=32)
shared = train(gt.MultitaskGNN(data.num_features, 64, head=heads), data)
print(f"shared encoder, group heads: test macro-F1 {shared.evaluate(data)['macro_f1']:.3f}")

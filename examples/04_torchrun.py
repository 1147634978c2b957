"""Data-parallel multitask training under torchrun, with your own loop.

    torchrun --standalone --nproc_per_node=2 examples/04_torchrun.py --epochs 10
    python examples/04_torchrun.py --epochs 10      # the same script, one process

Each process trains on its own share of the training nodes; DistributedDataParallel averages
the gradients, so all ranks hold the same model. ``graphtag.distributed`` reads torchrun's
environment (gloo on CPU, NCCL for GPUs) and does nothing in a plain ``python`` run. graphtag's
own ``Trainer``, ``collect_gradients`` and ``run_pipeline`` shard themselves the same way when
started by torchrun; this is for when you write the loop.
"""

import argparse

import torch
from torch.nn.parallel import DistributedDataParallel
from torch_geometric.loader import NeighborLoader

import graphtag as gt
from graphtag import distributed as gd
from graphtag.training import masked_bce_per_task

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--epochs", type=int, default=10)
ap.add_argument("--tasks", type=int, default=8)
ap.add_argument("--batch-size", type=int, default=256, help="global batch, split over ranks")
args = ap.parse_args()

parallel = gd.init_from_env()  # False in a plain one-process run
rank, world = gd.get_rank(), gd.get_world_size()
gt.seed_everything(0)  # the same data split and initial weights on every rank

data = gt.load_dataset("synthetic", num_tasks=args.tasks, num_features=32, log=False)
model = gt.MultitaskGNN(data.num_features, 64, num_tasks=args.tasks)
net = DistributedDataParallel(model) if parallel else model
opt = torch.optim.Adam(net.parameters(), lr=0.01)

# This rank's nodes: round robin, cut to equal sizes so every rank takes the same number of
# steps (DDP's gradient all-reduce needs every rank at every step).
train = data.train_mask.nonzero().flatten()
mine = torch.tensor(gd.shard(train.tolist()))[: len(train) // world]
loader = NeighborLoader(data, num_neighbors=[10, 5], input_nodes=mine,
                        batch_size=max(1, args.batch_size // world), shuffle=True)
print(f"rank {rank}/{world}: {len(mine)} training nodes, {len(loader)} steps per epoch",
      flush=True)

for epoch in range(1, args.epochs + 1):
    net.train()
    for batch in loader:
        opt.zero_grad()
        out = net(batch.x, batch.edge_index)[: batch.batch_size]
        loss = masked_bce_per_task(out, batch.y[: batch.batch_size]).mean()
        loss.backward()  # under DDP: gradients averaged over the ranks here
        opt.step()
    if gd.is_main():
        print(f"epoch {epoch:3d}  loss on rank 0 {loss.item():.4f}", flush=True)

if gd.is_main():  # every rank holds the same weights; one of them evaluates
    model.eval()
    with torch.no_grad():
        logits = model(data.x, data.edge_index)
    m = data.test_mask
    scores = gt.multitask_scores(data.y[m], logits[m])
    print(f"{world} process(es): test macro-F1 {scores['macro_f1']:.3f}  "
          f"ROC-AUC {scores['roc_auc']:.3f}")
gd.barrier()
gd.destroy()

"""Validation scores of a :class:`~graphtag.pipeline.GradTAG` estimate: each task under each
subset's fit (linearised logits, or the fit mapped back into the network, shared over ranks)
and under the base model."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from graphtag.affinity import linearized_logits, task_scores
from graphtag.affinity.mapback import mapback_logits
from graphtag.distributed import all_gather_object, get_world_size, is_distributed, is_main, shard
from graphtag.gradients.store import GradientStore


class _ScoringMixin:
    """:class:`~graphtag.pipeline.GradTAG`'s scoring steps (called by its ``estimate``)."""

    def _score(self, store: GradientStore, model: nn.Module | None, data: Data | None
               ) -> Tensor:
        if self.scoring == "linearized":
            # a block of subsets at a time: all logits at once are m x nodes x s float64
            # (1 GB for 2,500 subsets of 25 on 2,000 nodes)
            step = self.fit_block
            return torch.cat([task_scores(
                linearized_logits(store.grads, store.logits, self.coef_[lo : lo + step],
                                  self.subsets_[lo : lo + step], offset=self.offset),
                store.labels, self.subsets_[lo : lo + step], metric=self.metric)
                for lo in range(0, self.subsets_.shape[0], step)])
        else:
            if model is None or data is None or not hasattr(self, "projector_"):
                raise ValueError("scoring='mapback' needs model and data (and collect() run "
                                 "first, for the projector).")
            if is_distributed():  # one forward pass per subset: worth sharing out
                return self._mapback_scores_sharded(store, model, data)
            u = mapback_logits(model, data, self.projector_, self.coef_, self.subsets_,
                               nodes=np.asarray(store.nodes), offset=self.offset,
                               progress=self.progress)
        return task_scores(u, store.labels, self.subsets_, metric=self.metric)

    def _mapback_scores_sharded(self, store: GradientStore, model: nn.Module, data: Data
                                ) -> Tensor:
        """Map-back scores with the subsets split round robin over the ranks (equal to the
        single-process scores up to float rounding: lifting is batched differently)."""
        mine = np.asarray(shard(range(self.subsets_.shape[0])), dtype=np.int64)
        part = torch.empty(0, self.subsets_.shape[1], dtype=torch.float64)
        if mine.size:
            u = mapback_logits(model, data, self.projector_, self.coef_[mine],
                               self.subsets_[mine], nodes=np.asarray(store.nodes),
                               offset=self.offset, progress=self.progress and is_main())
            part = task_scores(u, store.labels, self.subsets_[mine], metric=self.metric)
        scores = torch.empty(self.subsets_.shape, dtype=torch.float64)
        for r, sc in enumerate(all_gather_object(part)):
            scores[r::get_world_size()] = sc
        return scores

    def _base_scores(self, store: GradientStore) -> np.ndarray:
        u = torch.from_numpy(np.asarray(store.logits, dtype=np.float64))[None]  # (1, n, T)
        subs = np.arange(store.num_tasks)[None, :]
        return task_scores(u, store.labels, subs, metric=self.metric)[0].numpy()

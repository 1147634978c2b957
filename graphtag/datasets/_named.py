"""What the named benchmark datasets share (:class:`~graphtag.datasets.SNAPCommunities`,
:class:`~graphtag.datasets.MultiLabelMat`): the folders ``<root>/<name>/{raw,processed}``,
one processed file per setting, and the processing tail (labels to a multitask ``Data``)."""

from __future__ import annotations

import os
import os.path as osp
from collections.abc import Callable
from typing import Any

from torch_geometric.data import Data, InMemoryDataset

from graphtag.datasets.tasks import make_multitask_data

__all__ = ["NamedTaskDataset"]


class NamedTaskDataset(InMemoryDataset):
    """A named graph processed into one multitask ``Data`` per setting.

    Subclasses set their own attributes, then call this ``__init__`` (which processes the
    files if needed, and loads the result); they give ``raw_file_names``, ``download`` and
    ``process``, naming their processed file with :meth:`_processed_name` and ending
    ``process`` with :meth:`_save_processed`.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        name: str,
        num_tasks: int | None,
        features: str,
        num_features: int,
        split: tuple[float, float, float],
        seed: int,
        transform: Callable[[Data], Data] | None,
        pre_transform: Callable[[Data], Data] | None,
        force_reload: bool,
        log: bool,
    ) -> None:
        self.name = name
        self.num_tasks_requested = num_tasks
        self.features = features
        self.num_features_requested = num_features
        self.split = tuple(split)
        self.seed = seed
        super().__init__(str(root), transform, pre_transform, force_reload=force_reload, log=log)
        self.load(self.processed_paths[0])

    @property
    def raw_dir(self) -> str:
        return osp.join(self.root, self.name, "raw")

    @property
    def processed_dir(self) -> str:
        return osp.join(self.root, self.name, "processed")

    @property
    def num_tasks(self) -> int:
        return int(self._data.y.shape[1])

    def _processed_name(self, prefix: str) -> str:
        """The processed file of this setting: ``prefix`` (the subclass's own settings),
        then features, split and seed."""
        split = "-".join(f"{f:g}" for f in self.split)
        return (f"{prefix}{self.features}{self.num_features_requested}_split{split}_"
                f"seed{self.seed}.pt")

    def _save_processed(self, edges: Any, y: Any, **meta: Any) -> None:
        """Build the multitask ``Data`` of ``edges`` and labels ``y`` with this dataset's
        features and split (``meta``: further :func:`make_multitask_data` arguments), apply
        ``pre_transform`` and save it as the processed file."""
        data = make_multitask_data(
            edges, y, features=self.features, num_features=self.num_features_requested,
            split=self.split, seed=self.seed, **meta,
        )
        if self.pre_transform is not None:
            data = self.pre_transform(data)
        self.save([data], self.processed_paths[0])

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.name}, num_tasks={self.num_tasks})"


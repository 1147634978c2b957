"""SNAP ground-truth-community graphs as a PyG :class:`InMemoryDataset`."""

from __future__ import annotations

import os
import os.path as osp
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from torch_geometric.data import Data

from graphtag.datasets._named import NamedTaskDataset
from graphtag.datasets.download import copy_file, download_url
from graphtag.datasets.features import FEATURE_KINDS
from graphtag.datasets.io import read_communities, read_edge_list
from graphtag.datasets.tasks import build_community_tasks

__all__ = ["SNAP_GRAPHS", "SNAPCommunities", "SNAPSource", "bundled_path"]

_SNAP_URL = "https://snap.stanford.edu/data/bigdata/communities/"


@dataclass(frozen=True)
class SNAPSource:
    """Where a SNAP community graph comes from.

    ``slug`` is SNAP's file stem (``com-<slug>.ungraph.txt.gz``). ``content_sha256`` maps a
    file name to the SHA-256 of its decompressed text, where known (SNAP's gzip bytes are not
    pinned, their text is). ``bundled`` names a folder of the shipped ``datasets/``.
    """

    slug: str
    nodes: int
    edges: int
    description: str
    content_sha256: dict[str, str] | None = None
    bundled: str | None = None


SNAP_GRAPHS: dict[str, SNAPSource] = {
    "amazon-top100": SNAPSource(
        "amazon-top100", 4_336, 14_100,
        "Shipped default: com-Amazon, top-100 distinct communities, induced subgraph.",
        bundled="amazon-top100",
    ),
    "amazon": SNAPSource(
        "amazon", 334_863, 925_872, "Amazon product co-purchasing; categories as communities.",
        {
            "com-amazon.ungraph.txt.gz":
                "9c403688d01417ca452910947a7000bcd61965fc583f4afe57eb209c8b057b7a",
            "com-amazon.top5000.cmty.txt.gz":
                "7da07b6bbe1e8cbee3eaff1b123eebff82e316660eb214de21249bd10086e73d",
        },
    ),
    "dblp": SNAPSource(
        "dblp", 317_080, 1_049_866, "DBLP co-authorship; venues as communities.",
        {
            "com-dblp.ungraph.txt.gz":
                "ad025cd5933e163e3007e214b3554e0a99d735a3133d0a4e34fd001621219231",
            "com-dblp.top5000.cmty.txt.gz":
                "84e5fd08f0259d0f7354b45f35e3b1d225e895bfba4cc5338a2e5f505ac45e17",
            "com-dblp.all.cmty.txt.gz":
                "2f92c8b98a0b54be9cb63dffc47972a4aec72ab1df66eb70631ff7eeafb30054",
        },
    ),
    "youtube": SNAPSource("youtube", 1_134_890, 2_987_624, "YouTube social network; groups."),
    "livejournal": SNAPSource("lj", 3_997_962, 34_681_189, "LiveJournal social network; groups."),
    "orkut": SNAPSource("orkut", 3_072_441, 117_185_083, "Orkut social network; groups."),
}


def bundled_path(folder: str) -> Path:
    """Path of a folder of the shipped ``datasets/`` (installed as ``graphtag.bundled``)."""
    try:
        base = Path(str(resources.files("graphtag.bundled")))
    except ModuleNotFoundError:
        base = Path(__file__).resolve().parents[2] / "datasets"
    path = base / folder
    if not path.is_dir():
        raise FileNotFoundError(
            f"shipped dataset folder {folder!r} not found under {base}; reinstall graphtag "
            "(pip install -e .) from a full checkout."
        )
    return path


class SNAPCommunities(NamedTaskDataset):
    r"""A SNAP graph with ground-truth communities as a multitask node-labeling dataset.

    Each of the ``num_tasks`` largest distinct communities becomes a binary task ("is this
    node in community :math:`t`?"). Processing follows
    :func:`~graphtag.datasets.build_community_tasks`: duplicate communities are merged, the
    top-``num_tasks`` by size kept, the graph optionally restricted to the subgraph induced
    by their members, and nodes relabelled to ``0..n-1``.

    Parameters
    ----------
    root
        Folder holding ``<root>/<name>/raw`` and ``<root>/<name>/processed``. Files already in
        ``raw`` (``.txt`` or ``.txt.gz``) are used as they are; missing ones are downloaded
        from SNAP (or copied from the shipped ``datasets/`` for ``"amazon-top100"``).
    name
        A key of :data:`SNAP_GRAPHS` (``"amazon-top100"``, ``"amazon"``, ``"dblp"``,
        ``"youtube"``, ``"livejournal"``, ``"orkut"``) or any name whose files
        ``com-<name>.ungraph.txt[.gz]`` and ``com-<name>.<communities>.cmty.txt[.gz]`` are
        already in ``raw``.
    num_tasks
        Number of communities (tasks) to keep.
    communities
        Which community file: ``"top5000"`` or ``"all"``.
    induced
        Restrict to the subgraph induced by the selected communities' members.
    features, num_features
        Label-free node features, see :func:`graphtag.datasets.node_features`.
    split
        Train/val/test node fractions.
    seed
        Seed of the split and of the features.
    transform, pre_transform, force_reload, log
        As in :class:`torch_geometric.data.InMemoryDataset`.

    Examples
    --------
    >>> ds = SNAPCommunities("data", name="amazon-top100")   # doctest: +SKIP
    >>> data = ds[0]; data.y.shape                            # doctest: +SKIP
    torch.Size([4336, 100])
    """

    def __init__(
        self,
        root: str | os.PathLike,
        name: str = "amazon-top100",
        num_tasks: int | None = 100,
        *,
        communities: str = "top5000",
        induced: bool = True,
        features: str = "spectral",
        num_features: int = 64,
        split: tuple[float, float, float] = (0.6, 0.2, 0.2),
        seed: int = 0,
        transform: Callable[[Data], Data] | None = None,
        pre_transform: Callable[[Data], Data] | None = None,
        force_reload: bool = False,
        log: bool = True,
    ) -> None:
        if communities not in ("top5000", "all"):
            raise ValueError(f"communities must be 'top5000' or 'all', got {communities!r}.")
        if features not in FEATURE_KINDS:
            raise ValueError(f"features={features!r} is not one of {FEATURE_KINDS}.")
        self.source = SNAP_GRAPHS.get(name)
        self.communities = "top100" if name == "amazon-top100" else communities
        self.induced = induced
        super().__init__(root, name, num_tasks, features, num_features, split, seed, transform,
                         pre_transform, force_reload, log)

    @property
    def slug(self) -> str:
        return self.source.slug if self.source else self.name

    @property
    def raw_file_names(self) -> list[str]:
        names = [f"com-{self.slug}.ungraph.txt.gz",
                 f"com-{self.slug}.{self.communities}.cmty.txt.gz"]
        # A plain-text copy the user already has counts as the file.
        return [n[:-3] if osp.exists(osp.join(self.raw_dir, n[:-3])) else n for n in names]

    @property
    def processed_file_names(self) -> list[str]:
        induced = "induced" if self.induced else "full"
        return [self._processed_name(
            f"{self.communities}_tasks{self.num_tasks_requested}_{induced}_")]

    def download(self) -> None:
        if self.source is None:
            raise FileNotFoundError(
                f"dataset {self.name!r}: no download source is known and {self.raw_dir} lacks "
                f"{self.raw_file_names}. Put com-{self.name}.ungraph.txt[.gz] and "
                f"com-{self.name}.{self.communities}.cmty.txt[.gz] there, or use one of "
                f"{sorted(SNAP_GRAPHS)}."
            )
        for fname in self.raw_file_names:
            if osp.exists(osp.join(self.raw_dir, fname)):
                continue
            if self.source.bundled:
                copy_file(bundled_path(self.source.bundled) / fname, osp.join(self.raw_dir, fname))
            else:
                sums = self.source.content_sha256 or {}
                download_url(_SNAP_URL + fname, self.raw_dir, content_sha256=sums.get(fname))

    @classmethod
    def save(cls, data_list: Sequence[Data], path: str) -> None:
        """Save like :meth:`InMemoryDataset.save`, streaming to the file.

        PyG's version serialises into an in-memory buffer and then copies the buffer's bytes
        before writing, so a processed graph briefly costs three times its size (16 GB for a
        2.1M-node, 500-task graph, whose float32 labels alone take 4.2 GB); ``torch.save`` to
        the path writes the same bytes with no copy. Written to a temporary name and renamed,
        so an interrupted save leaves no truncated file.
        """
        data, slices = cls.collate(data_list)
        tmp = f"{path}.tmp"
        torch.save((data.to_dict(), slices, data.__class__), tmp)
        os.replace(tmp, path)

    def process(self) -> None:
        graph_path, cmty_path = self.raw_paths
        edges = read_edge_list(graph_path)
        comms = read_communities(cmty_path)
        tasks = build_community_tasks(
            edges, comms, self.num_tasks_requested, induced=self.induced, source=cmty_path
        )
        del edges, comms  # the raw lists are not needed past this point (0.7 GB at 21M edges)
        self._save_processed(tasks.edge_index, tasks.y,
                             source=f"{self.name} (top {tasks.num_tasks})",
                             node_ids=torch.from_numpy(tasks.node_ids),
                             community_index=torch.from_numpy(tasks.community_index))

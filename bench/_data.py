"""Dataset loading shared by the bench scripts (com-DBLP and BlogCatalog come from
``../shared/data``)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

from torch_geometric.data import Data

from graphtag.datasets import SNAPCommunities

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
_SHARED_FILES = {"dblp": ("snap-com-dblp", ("com-dblp.ungraph.txt.gz",
                                            "com-dblp.top5000.cmty.txt")),
                 "blogcatalog": ("blogcatalog", ("blogcatalog.mat",))}


def prepare(name: str, root: Path, shared: Path = SHARED) -> bool:
    """Copy the ``shared`` files of ``name`` (if it needs any) into ``root/<name>/raw``.

    Afterwards ``graphtag.datasets.load_dataset(name, root)`` finds them there and downloads
    nothing. Returns ``False`` when the dataset needs ``shared`` files that are not there.
    """
    if name not in _SHARED_FILES:
        return True
    folder, files = _SHARED_FILES[name]
    src = shared / folder
    if not all((src / f).is_file() for f in files):
        return False
    raw = root / name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for f in files:
        if not (raw / f).exists():
            shutil.copy(src / f, raw / f)
    return True


def load(name: str, root: Path, shared: Path = SHARED, num_tasks: int = 100) -> Data | None:
    """Top-``num_tasks`` SNAP dataset; copies shared files into ``root`` first when needed.

    Returns ``None`` when a dataset that needs ``shared`` files does not find them.
    """
    if not prepare(name, root, shared):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SNAPCommunities(root, name, num_tasks, log=False)[0]

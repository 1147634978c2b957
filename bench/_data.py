"""Dataset loading shared by the bench scripts (com-DBLP comes from ``../shared/data``)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

from torch_geometric.data import Data

from graphtag.datasets import SNAPCommunities

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
_SHARED_FILES = {"dblp": ("snap-com-dblp", ("com-dblp.ungraph.txt.gz",
                                            "com-dblp.top5000.cmty.txt"))}


def load(name: str, root: Path, shared: Path = SHARED, num_tasks: int = 100) -> Data | None:
    """Top-``num_tasks`` SNAP dataset; copies shared files into ``root`` first when needed.

    Returns ``None`` when a dataset that needs ``shared`` files does not find them.
    """
    if name in _SHARED_FILES:
        folder, files = _SHARED_FILES[name]
        src = shared / folder
        if not src.is_dir():
            return None
        raw = root / name / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for f in files:
            if not (raw / f).exists():
                shutil.copy(src / f, raw / f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SNAPCommunities(root, name, num_tasks, log=False)[0]

"""The processed-data cache: a fingerprint of the source bytes and options, atomic writes."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from graphtag.datasets.readers.formats import _base_name

__all__ = ["source_fingerprint"]


#: Bumped when processing changes, so older caches are not reused.
_CACHE_VERSION = 1


def _source_files(source: Path) -> list[Path]:
    if source.is_dir():
        # not the folders written while loading (ogb/PyG "processed", our cache)
        return sorted(p for p in source.rglob("*") if p.is_file() and not any(
            part == "processed" or part.startswith(".") for part in p.relative_to(source).parts))
    return [source]


def source_fingerprint(files: Sequence[str | os.PathLike], options: dict[str, Any]) -> str:
    """blake2b (16 bytes, hex) of the files' bytes, in order, and the JSON of ``options``."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"graphtag-data-v{_CACHE_VERSION}".encode())
    for f in files:
        h.update(b"\0file\0")
        with open(f, "rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 22), b""):
                h.update(block)
    h.update(json.dumps(options, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _cache_paths(source: Path, fp: str, root: Path) -> list[Path]:
    stem = _base_name(source).split(".")[0] or "data"
    name = f"{stem}.{fp}.pt"
    base = source if source.is_dir() else source.parent
    return [base / ".graphtag-cache" / name, root / "cache" / name]


def _save_cache(data: Any, candidates: list[Path]) -> Path | None:
    """Write the processed Data to the first writable candidate (temp file, then rename)."""
    import torch

    for path in candidates:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + f".tmp{os.getpid()}")
            torch.save(data.to_dict(), tmp)
            os.replace(tmp, path)
            return path
        except OSError:
            continue
    return None


def _load_cache(candidates: list[Path]) -> Any | None:
    import torch
    from torch_geometric.data import Data

    for path in candidates:
        if path.is_file():
            try:
                return Data.from_dict(torch.load(path, map_location="cpu", weights_only=True))
            except Exception:  # a damaged cache is rebuilt, never trusted
                continue
    return None

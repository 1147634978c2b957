"""Small file helpers shared across graphtag: JSON read and atomic JSON write.

Resumable stages, gradient stores and training runs decide what to redo from the JSON files
they find (manifests, configs, metrics), so a file must be either absent or complete:
:func:`write_json` writes a temporary file beside the target and renames it over the target
(``os.replace``, atomic on POSIX and Windows), so a crash or a concurrent reader never sees
half a file.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["read_json", "write_json"]


def write_json(
    path: str | os.PathLike,
    obj: Any,
    *,
    indent: int | None = 1,
    default: Callable[[Any], Any] | None = None,
    sort_keys: bool = False,
) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (temporary file, then ``os.replace``).

    Parameters
    ----------
    path
        Target file; its folder must exist.
    obj
        A JSON-serialisable object.
    indent, default, sort_keys
        As in :func:`json.dumps` (``default=str`` writes unknown objects as strings; without
        it they raise ``TypeError`` before anything is written).
    """
    path = Path(path)
    text = json.dumps(obj, indent=indent, default=default, sort_keys=sort_keys)
    # unique per writer, so two processes writing the same file do not share a temp file
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_json(path: str | os.PathLike) -> Any:
    """The JSON value stored in ``path`` (UTF-8)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))

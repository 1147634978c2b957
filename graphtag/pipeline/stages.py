"""Stage folders with manifests: skip what is done, redo what a config change invalidated.

Each stage of a run owns a folder and a ``manifest.json`` holding the stage's fingerprint: a
hash of the config values the stage reads and of the fingerprint of the stage before it. A
stage whose manifest says ``complete`` with the current fingerprint is skipped. A stage
whose fingerprint changed is cleared and redone, and so, through the chained fingerprints,
is every stage after it, while the stages before it are kept. A stage found incomplete with
the current fingerprint is resumed: its own code picks up partial results (checkpoints,
gradient chunks, fitted subset blocks) from the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from graphtag._io import write_json

__all__ = ["Stage", "fingerprint"]


def fingerprint(values: dict[str, Any], upstream: str = "") -> str:
    """SHA-256 of ``values`` (JSON, sorted keys) chained to the upstream fingerprint."""
    blob = json.dumps({"values": values, "upstream": upstream}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class Stage:
    """One stage's folder and manifest.

    Parameters
    ----------
    root
        The run folder.
    name
        Stage name (also the folder name).
    values
        The config values this stage depends on (JSON-serialisable).
    upstream
        Fingerprint of the previous stage ('' for the first).
    """

    def __init__(self, root: str | os.PathLike, name: str, values: dict[str, Any],
                 upstream: str = "") -> None:
        self.name = name
        self.folder = Path(root) / name
        self.values = values
        self.fingerprint = fingerprint(values, upstream)
        self._manifest = self.folder / "manifest.json"
        self._t0 = 0.0

    def read_manifest(self) -> dict[str, Any] | None:
        if not self._manifest.exists():
            return None
        return json.loads(self._manifest.read_text())

    @property
    def done(self) -> bool:
        """Finished with the current fingerprint."""
        m = self.read_manifest()
        return bool(m and m.get("fingerprint") == self.fingerprint and m.get("complete"))

    @property
    def status(self) -> str:
        """``"done"``, ``"partial"`` (same fingerprint, unfinished), ``"stale"`` or ``"new"``."""
        m = self.read_manifest()
        if m is None:
            return "new"
        if m.get("fingerprint") != self.fingerprint:
            return "stale"
        return "done" if m.get("complete") else "partial"

    def begin(self, clear: bool = True) -> str:
        """Prepare the folder; returns the status it had.

        A stale folder is emptied, unless ``clear=False`` (for a stage whose parts keep
        fingerprints of their own and decide for themselves).
        """
        status = self.status
        if status == "stale" and clear:
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        if status in ("new", "stale"):
            write_json(self._manifest, {"stage": self.name, "fingerprint": self.fingerprint,
                                        "values": self.values, "complete": False}, default=str)
        self._t0 = time.perf_counter()
        return status

    def finish(self, summary: dict[str, Any] | None = None) -> float:
        """Mark complete with a summary and this session's seconds; returns the seconds."""
        seconds = time.perf_counter() - self._t0
        old = self.read_manifest() or {}
        total = float(old.get("seconds_total", 0.0)) + seconds
        write_json(self._manifest, {
            "stage": self.name, "fingerprint": self.fingerprint, "values": self.values,
            "complete": True, "seconds": seconds, "seconds_total": total,
            "summary": summary or {},
        }, default=str)
        return seconds

    def summary(self) -> dict[str, Any]:
        m = self.read_manifest() or {}
        return m.get("summary", {})

    def seconds(self) -> float:
        """Wall time the stage took to finish (all sessions together)."""
        m = self.read_manifest() or {}
        return float(m.get("seconds_total", 0.0))

"""The configuration of a ``graphtag run`` and which stage reads which setting.

Declared in :mod:`graphtag.config` (free of torch, so the command line is built from it
quickly); re-exported here, where the pipeline reads it.
"""

from __future__ import annotations

from graphtag.config import COMBINER_METHODS, GROUPING_METHODS, METHODS, STAGE_KEYS, RunConfig

__all__ = ["COMBINER_METHODS", "GROUPING_METHODS", "METHODS", "STAGE_KEYS", "RunConfig"]

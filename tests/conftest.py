"""Shared fixtures. Real datasets come from ``../shared/data`` beside the repo when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GRAPHTAG_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real-data folder; tests needing it skip when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"shared data folder {SHARED} not present")
    return SHARED


@pytest.fixture(scope="session")
def amazon_data(tmp_path_factory):
    """The shipped default dataset (amazon-top100), processed once per session."""
    from graphtag.datasets import SNAPCommunities

    root = tmp_path_factory.mktemp("data")
    return SNAPCommunities(root, "amazon-top100", log=False)[0]

"""Shared test fixtures. Real-data tests read ``$LESSON4_DATA`` (the shared datasets folder); without it they
skip with a reason, unless ``LESSON4_REQUIRE_DATA=1`` (set by .ci/run when CI=true), where they fail."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA_ENV = "LESSON4_DATA"
REQUIRE_ENV = "LESSON4_REQUIRE_DATA"


def _data_root() -> Path | None:
    root = os.environ.get(DATA_ENV)
    return Path(root) if root else None


def require_data(*parts: str) -> Path:
    """Path to a shared dataset file or folder; skip (or fail in CI) when it is absent."""
    root = _data_root()
    path = None if root is None else root.joinpath(*parts)
    if path is not None and path.exists():
        return path
    why = (f"real data {'/'.join(parts)} not found: set {DATA_ENV} to the shared data folder"
           if root is None else f"real data {path} does not exist")
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{why} ({REQUIRE_ENV}=1, so real-data tests must run)")
    pytest.skip(why)


@pytest.fixture
def shared_data():
    """``shared_data('movielens', 'ml-100k')`` -> Path, or skip/fail as described above."""
    return require_data

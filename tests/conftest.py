"""Shared fixtures: where the real UCI data sets live, and skipping (or failing) without them."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("NNCLI_SHARED_DATA", ROOT.parent / "shared" / "data"))
REQUIRE_SHARED = os.environ.get("NNCLI_REQUIRE_SHARED_DATA") == "1"
REQUIRE_PLOT = os.environ.get("NNCLI_REQUIRE_PLOT") == "1"


def shared_csv(name: str) -> Path:
    """Path of ../shared/data/<name>; skips the test when absent, fails when CI requires it."""
    path = SHARED_DATA / name
    if not path.is_file():
        message = f"shared data set {path} is not available"
        if REQUIRE_SHARED:
            pytest.fail(message + " (NNCLI_REQUIRE_SHARED_DATA=1)")
        pytest.skip(message)
    return path


def require_matplotlib():
    """Skip a picture test without matplotlib (the plot extra); fail instead when CI requires it."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        message = "matplotlib (pip install 'nncli[plot]') is not installed"
        if REQUIRE_PLOT:
            pytest.fail(message + " (NNCLI_REQUIRE_PLOT=1)")
        pytest.skip(message)

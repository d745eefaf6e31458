"""Fixtures of the product tests: the shared folder of real CAD parts."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
"""The project's shared folder (next to the repository root); absent on most machines."""


@pytest.fixture(scope="session")
def shared_cad() -> Path:
    """The folder of real CAD parts (shared/cad); skips the test when it is absent."""
    folder = SHARED / "cad"
    if not folder.is_dir():
        pytest.skip(f"real CAD parts not found: {folder} is absent")
    return folder

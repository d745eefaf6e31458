"""Fixtures of the render tests: one renderer per session, skipped without OpenGL."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def renderer():
    """One PyrenderRenderer for the session; skips when no EGL context can be made."""
    try:
        from synthgen.render.pyrender_backend import PyrenderRenderer
    except ImportError as exc:  # pyrender missing, or PyOpenGL cannot load its platform
        pytest.skip(f"the pyrender backend cannot be imported: {exc}")
    try:
        r = PyrenderRenderer(64, 64)
    except Exception as exc:  # any EGL or driver failure means: no OpenGL here
        pytest.skip(f"cannot create an EGL OpenGL context: {exc}")
    yield r
    r.close()

"""The render package stays light to import; backends are built by name."""

from __future__ import annotations

import subprocess
import sys

import pytest

from synthgen.errors import ConfigError
from synthgen.render import RENDERERS, make_renderer


def test_importing_render_does_not_import_opengl():
    code = (
        "import sys, synthgen.render, synthgen.render.compositing, synthgen.render.masks\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('pyrender', 'OpenGL')]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registry():
    assert "pyrender" in RENDERERS
    with pytest.raises(ConfigError, match="pyrender"):
        make_renderer("no_such_backend")

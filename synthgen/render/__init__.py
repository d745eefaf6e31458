"""Render backends and the RenderResult contract.

Importing this package is cheap: backends import their heavy dependencies (pyrender,
PyOpenGL, bpy) only when `make_renderer` builds one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from synthgen.errors import MissingDependency
from synthgen.registry import Registry
from synthgen.render.result import Renderer, RenderResult

RENDERERS: Registry[Callable[..., Renderer]] = Registry("renderer")


@RENDERERS.register("pyrender")
def _pyrender(**options: Any) -> Renderer:
    """The default backend: pyrender through EGL (see `pyrender_backend.PyrenderRenderer`)."""
    try:
        from synthgen.render.pyrender_backend import PyrenderRenderer
    except MissingDependency:
        raise
    except ImportError as exc:
        raise MissingDependency("pyrender renderer", "gl", "pyrender") from exc
    return PyrenderRenderer(**options)


def make_renderer(name: str = "pyrender", **options: Any) -> Renderer:
    """Build a render backend by its registered name.

    Args:
        name: a name in `RENDERERS` ("pyrender").
        **options: passed to the backend's constructor (e.g. width, height).

    Raises:
        ConfigError: unknown name.
        MissingDependency: the backend's optional packages are not installed.
    """
    return RENDERERS.get(name)(**options)


__all__ = ["RENDERERS", "RenderResult", "Renderer", "make_renderer"]

"""Render backends and the RenderResult contract.

Importing this package is cheap: backends import their heavy dependencies (pyrender,
PyOpenGL, bpy) only when `make_renderer` builds one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from synthgen.errors import ConfigError, MissingDependency
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


@RENDERERS.register("blender")
def _blender(antialias: str = "auto", **options: Any) -> Renderer:
    """Blender (Cycles by default) through the bpy module (see `blender_backend`).

    Args:
        antialias: ignored (Cycles and Eevee filter every pixel); accepted so that a job's
            render options can be passed to any backend.
        **options: width, height, and the `BlenderSettings` fields (engine, samples,
            denoise, device, environment, environment_strength, max_bounces).
    """
    del antialias
    try:
        from synthgen.render.blender_backend import BlenderRenderer, BlenderSettings
    except MissingDependency:
        raise
    except ImportError as exc:
        raise MissingDependency("Blender renderer", "blender", "bpy") from exc
    size = {key: options.pop(key) for key in ("width", "height") if key in options}
    known = set(BlenderSettings.__dataclass_fields__)
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(
            f"blender renderer: unknown option(s) {', '.join(unknown)}; known: "
            f"width, height, {', '.join(sorted(known))}"
        )
    return BlenderRenderer(**size, settings=BlenderSettings(**options))


def make_renderer(name: str = "pyrender", **options: Any) -> Renderer:
    """Build a render backend by its registered name.

    Args:
        name: a name in `RENDERERS` ("pyrender" or "blender").
        **options: passed to the backend's constructor (e.g. width, height).

    Raises:
        ConfigError: unknown name.
        MissingDependency: the backend's optional packages are not installed.
    """
    return RENDERERS.get(name)(**options)


__all__ = ["RENDERERS", "RenderResult", "Renderer", "make_renderer"]

"""The scene data model: everything a renderer needs besides the part, as plain frozen data.

Frames: the part's object frame (mm, +Z up) is placed in the world by `Scene.object_pose`.
Cameras follow the OpenGL convention: the camera looks down its own -Z axis with +Y up, and
`Camera.pose` maps camera coordinates to world coordinates (mm). Image pixel (row 0, col 0)
is the top-left corner; pixel centres lie at integer + 0.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np


def _matrix(value: Any) -> np.ndarray:
    matrix = np.array(value, dtype=np.float64)
    if matrix.shape != (4, 4):
        raise ValueError(f"expected a (4, 4) matrix, got shape {matrix.shape}")
    matrix.flags.writeable = False
    return matrix


@dataclass(frozen=True, eq=False)
class Camera:
    """A pinhole camera.

    Attributes:
        pose: (4, 4) camera → world, mm.
        yfov: vertical field of view, radians.
        width, height: image size, pixels.
        znear, zfar: clip distances, mm.
    """

    pose: np.ndarray
    yfov: float
    width: int
    height: int
    znear: float
    zfar: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "pose", _matrix(self.pose))

    @property
    def focal_px(self) -> float:
        """Focal length in pixels (square pixels)."""
        return self.height / (2.0 * math.tan(self.yfov / 2.0))

    @property
    def intrinsics(self) -> np.ndarray:
        """(3, 3) K for the image convention x right, y down, origin at the top-left corner."""
        f = self.focal_px
        return np.array([[f, 0.0, self.width / 2.0], [0.0, f, self.height / 2.0], [0, 0, 1]])

    def project(self, points_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project world points to pixels.

        Args:
            points_world: (N, 3) mm.

        Returns:
            uv (N, 2) float pixel coordinates (x right, y down; centres at +0.5) and
            depth (N,) mm along the viewing direction (positive in front of the camera).
        """
        world_to_camera = np.linalg.inv(self.pose)
        pts = np.asarray(points_world, dtype=np.float64) @ world_to_camera[:3, :3].T
        pts += world_to_camera[:3, 3]
        depth = -pts[:, 2]
        f = self.focal_px
        with np.errstate(divide="ignore", invalid="ignore"):
            u = self.width / 2.0 + f * pts[:, 0] / depth
            v = self.height / 2.0 - f * pts[:, 1] / depth
        return np.stack([u, v], axis=1), depth

    def pixel_rays(self) -> np.ndarray:
        """(H, W, 3) camera-frame directions through pixel centres, with z = -1."""
        f = self.focal_px
        cols = (np.arange(self.width) + 0.5 - self.width / 2.0) / f
        rows = -(np.arange(self.height) + 0.5 - self.height / 2.0) / f
        x, y = np.meshgrid(cols, rows)
        return np.stack([x, y, -np.ones_like(x)], axis=-1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "pose": self.pose.tolist(),
            "yfov_deg": math.degrees(self.yfov),
            "width": self.width,
            "height": self.height,
            "znear": self.znear,
            "zfar": self.zfar,
            "intrinsics": self.intrinsics.tolist(),
        }


@dataclass(frozen=True)
class Light:
    """A light source.

    Attributes:
        kind: "directional" (sun-like) or "point".
        direction: (3,) unit vector, world frame, the direction the light travels
            (directional lights); for point lights the direction from the light to the
            scene centre.
        position: (3,) mm, world frame (point lights; ignored for directional ones).
        intensity: directional: irradiance in W/m² (pyrender's unit); point: candela-like.
        color: (3,) linear RGB in [0, 1].
        name: role in the rig ("key", "fill", "rim", "constant").
    """

    kind: Literal["directional", "point"]
    direction: tuple[float, float, float]
    intensity: float
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    name: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "direction": list(self.direction),
            "position": list(self.position),
            "intensity": self.intensity,
            "color": list(self.color),
        }


@dataclass(frozen=True)
class Material:
    """A physically based metallic-roughness material.

    Attributes:
        base_color: (3,) linear RGB in [0, 1].
        metallic: 0 (dielectric, e.g. plastic) to 1 (metal).
        roughness: 0 (mirror) to 1 (matte).
    """

    base_color: tuple[float, float, float]
    metallic: float
    roughness: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "base_color": list(self.base_color),
            "metallic": self.metallic,
            "roughness": self.roughness,
        }


@dataclass(frozen=True)
class Background:
    """What shows behind the part.

    Attributes:
        kind: "solid" (color_top only), "gradient" (top to bottom) or "image".
        color_top, color_bottom: (3,) sRGB in [0, 1].
        image_path: file of the background image (kind "image"); it is resized to cover
            the frame.
    """

    kind: Literal["solid", "gradient", "image"]
    color_top: tuple[float, float, float] = (0.0, 0.0, 0.0)
    color_bottom: tuple[float, float, float] = (0.0, 0.0, 0.0)
    image_path: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "color_top": list(self.color_top),
            "color_bottom": list(self.color_bottom),
            "image_path": self.image_path,
        }


@dataclass(frozen=True, eq=False)
class Scene:
    """One sample's scene: where the part is, how it is seen, lit and coloured.

    Attributes:
        object_pose: (4, 4) object → world, mm.
        camera: the camera.
        lights: the light rig.
        material: the part's material.
        background: the background.
        ambient: ambient light level in [0, 1] (pyrender's scene ambient).
        draws: the raw random draws that produced this scene (for the manifest).
    """

    object_pose: np.ndarray
    camera: Camera
    lights: tuple[Light, ...]
    material: Material
    background: Background
    ambient: float = 0.0
    draws: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "object_pose", _matrix(self.object_pose))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description of the whole scene."""
        return {
            "object_pose": self.object_pose.tolist(),
            "camera": self.camera.as_dict(),
            "lights": [light.as_dict() for light in self.lights],
            "material": self.material.as_dict(),
            "background": self.background.as_dict(),
            "ambient": self.ambient,
            "draws": self.draws,
        }

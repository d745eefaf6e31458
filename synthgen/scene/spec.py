"""The randomisation ranges of a scene, as validated recipe sections.

Every `Range` field is written in YAML as a number (fixed) or `[low, high]` (uniform draw).
Angles are in degrees; distances in multiples of the framing distance (see CameraSpec).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from synthgen.config import Range, StrictModel, within

RGB = tuple[float, float, float]


class PoseSpec(StrictModel):
    """How the part is posed in the world.

    Modes:
        upright: standing on its base, turned about +Z by `yaw_deg`, tilted by `tilt_deg`
            toward a random direction.
        random_plane: the founding method's set-up: the part is rotated by
            `plane_angle_deg` about the normal of a plane, `plane_normal` if given, else a
            plane drawn at random for each sample.
        uniform: a uniformly random orientation.
    """

    mode: Literal["upright", "random_plane", "uniform"] = "upright"
    yaw_deg: Range = (0.0, 360.0)
    tilt_deg: Range = (0.0, 10.0)
    plane_angle_deg: Range = (0.0, 360.0)
    plane_normal: RGB | None = None

    _yaw = field_validator("yaw_deg", "plane_angle_deg")(within(-360.0, 720.0))
    _tilt = field_validator("tilt_deg")(within(0.0, 180.0))

    @field_validator("plane_normal")
    @classmethod
    def _nonzero(cls, value: RGB | None) -> RGB | None:
        if value is not None and sum(v * v for v in value) < 1e-12:
            raise ValueError("plane_normal must not be the zero vector")
        return value


class CameraSpec(StrictModel):
    """Where the camera is and what it sees.

    Attributes:
        yfov_deg: vertical field of view.
        distance: camera distance as a multiple of the framing distance, the distance at
            which the part's bounding sphere just fills the narrower image side (1.0 fills
            the frame; larger is farther).
        elevation_deg: camera height angle above the world XY plane (90 looks straight down).
        azimuth_deg: camera direction about +Z.
        aim_jitter: offset of the aim point from the part centre, as a fraction of the
            part's bounding radius (random direction).
        roll_deg: rotation of the camera about its viewing axis.
        target: [x, y, z] mm in the part's frame that the camera aims at (turning with the
            part's pose), instead of the part's centre; for a close view of one feature,
            such as a cap's notch. Left unset it is not written into the recipe dump, so
            recipes without it keep their job hash.
    """

    yfov_deg: Range = (30.0, 40.0)
    distance: Range = (1.0, 1.3)
    elevation_deg: Range = (10.0, 50.0)
    azimuth_deg: Range = (0.0, 360.0)
    aim_jitter: Range = (0.0, 0.1)
    roll_deg: Range = (0.0, 0.0)
    target: RGB | None = None
    omit_at_default = ("target",)

    _fov = field_validator("yfov_deg")(within(1.0, 120.0))
    _distance = field_validator("distance")(within(0.05, 100.0))
    _elevation = field_validator("elevation_deg")(within(-90.0, 90.0))
    _azimuth = field_validator("azimuth_deg", "roll_deg")(within(-360.0, 720.0))
    _aim = field_validator("aim_jitter")(within(0.0, 1.0))

    @field_validator("target")
    @classmethod
    def _finite(cls, value: RGB | None) -> RGB | None:
        if value is not None and not all(math.isfinite(v) and abs(v) <= 1e5 for v in value):
            raise ValueError(f"target {list(value)} must be finite mm within ±100000")
        return value



class LightingSpec(StrictModel):
    """The light rig; directions are relative to the camera, so a fixed camera keeps
    the light fixed.

    Presets:
        constant: the founding method's constant illumination: one key light from
            `key_azimuth_deg`/`key_elevation_deg` off the camera axis at `key_intensity`,
            plus ambient light; with fixed (single-number) ranges nothing varies.
        three_point: randomised key, fill and rim lights (direction, intensity, colour
            temperature). The fill light sits at `fill_azimuth_deg` (negative: the other
            side from the key) near camera height, at key intensity × `fill_ratio`; the rim
            light shines from behind the part at `rim_elevation_deg`, at key × `rim_ratio`.
    """

    preset: Literal["constant", "three_point"] = "three_point"
    key_intensity: Range = (2.5, 4.5)
    key_azimuth_deg: Range = (20.0, 60.0)
    key_elevation_deg: Range = (20.0, 50.0)
    fill_ratio: Range = (0.2, 0.5)
    fill_azimuth_deg: Range = (-70.0, -20.0)
    rim_ratio: Range = (0.3, 1.0)
    rim_elevation_deg: Range = (20.0, 60.0)
    color_temperature_k: Range = (4500.0, 6500.0)
    ambient: Range = (0.15, 0.35)

    _intensity = field_validator("key_intensity")(within(0.0, 100.0))
    _angles = field_validator(
        "key_azimuth_deg", "key_elevation_deg", "fill_azimuth_deg", "rim_elevation_deg"
    )(within(-180.0, 180.0))
    _ratios = field_validator("fill_ratio", "rim_ratio")(within(0.0, 10.0))
    _temperature = field_validator("color_temperature_k")(within(1500.0, 12000.0))
    _ambient = field_validator("ambient")(within(0.0, 1.0))


class MaterialSpec(StrictModel):
    """The part's physically based material.

    Attributes:
        palette: sRGB base colours in [0, 1] to choose from; when empty, the colour is
            drawn from the HSV ranges instead.
        hue_deg, saturation, value: HSV ranges of the base colour.
        metallic: 0 plastic … 1 metal.
        roughness: 0 mirror … 1 matte.
    """

    palette: list[RGB] = Field(default_factory=list)
    hue_deg: Range = (0.0, 360.0)
    saturation: Range = (0.2, 0.8)
    value: Range = (0.35, 0.9)
    metallic: Range = (0.0, 0.1)
    roughness: Range = (0.3, 0.7)

    _hue = field_validator("hue_deg")(within(-360.0, 720.0))
    _unit = field_validator("saturation", "value", "metallic", "roughness")(within(0.0, 1.0))

    @field_validator("palette")
    @classmethod
    def _colours(cls, value: list[RGB]) -> list[RGB]:
        for colour in value:
            if not all(0.0 <= c <= 1.0 for c in colour):
                raise ValueError(f"palette colour {list(colour)} must have channels in [0, 1]")
        return value


class BackgroundSpec(StrictModel):
    """The background behind the part.

    Attributes:
        kind: "solid", "gradient" (vertical, two colours) or "image" (files from
            `image_dir`, chosen at random and resized to cover the frame).
        value: brightness range of solid and gradient colours.
        saturation: saturation range of solid and gradient colours.
        image_dir: folder of .png/.jpg/.jpeg/.bmp/.tif images (kind "image").
    """

    kind: Literal["solid", "gradient", "image"] = "gradient"
    value: Range = (0.05, 0.6)
    saturation: Range = (0.0, 0.3)
    image_dir: str | None = None

    _unit = field_validator("value", "saturation")(within(0.0, 1.0))

    @model_validator(mode="after")
    def _needs_dir(self) -> BackgroundSpec:
        if self.kind == "image" and not self.image_dir:
            raise ValueError("kind 'image' needs image_dir, a folder of background images")
        return self


class SceneSpec(StrictModel):
    """All randomisation ranges of a scene."""

    pose: PoseSpec = Field(default_factory=PoseSpec)
    camera: CameraSpec = Field(default_factory=CameraSpec)
    lighting: LightingSpec = Field(default_factory=LightingSpec)
    material: MaterialSpec = Field(default_factory=MaterialSpec)
    background: BackgroundSpec = Field(default_factory=BackgroundSpec)

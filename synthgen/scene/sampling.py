"""Scene sampling: SceneSpec ranges + one sample's rng → a Scene (pure data).

Every number is drawn from the rng passed in, in a fixed order, and recorded in
`Scene.draws`, so a scene is reproduced exactly from (spec, seed, index).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import numpy as np
from trimesh import transformations as tf

from synthgen.config import uniform
from synthgen.errors import ConfigError
from synthgen.scene.color import hsv_to_srgb, srgb_to_linear, temperature_to_rgb
from synthgen.scene.model import Background, Camera, Light, Material, Scene
from synthgen.scene.spec import (
    BackgroundSpec,
    CameraSpec,
    LightingSpec,
    MaterialSpec,
    PoseSpec,
    SceneSpec,
)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def _unit_vector(rng: np.random.Generator) -> np.ndarray:
    """A direction drawn uniformly on the unit sphere."""
    v = rng.normal(size=3)
    return v / np.linalg.norm(v)


def sample_pose(spec: PoseSpec, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """A (4, 4) object → world rotation and the draws that made it."""
    if spec.mode == "uniform":
        rand = rng.uniform(size=3)
        return tf.random_rotation_matrix(rand=rand), {"mode": "uniform", "rand": rand.tolist()}
    if spec.mode == "random_plane":
        normal = (
            np.asarray(spec.plane_normal, dtype=np.float64) / np.linalg.norm(spec.plane_normal)
            if spec.plane_normal is not None
            else _unit_vector(rng)
        )
        angle = uniform(rng, spec.plane_angle_deg)
        pose = tf.rotation_matrix(math.radians(angle), normal)
        return pose, {"mode": "random_plane", "plane_normal": normal.tolist(), "angle_deg": angle}
    yaw = uniform(rng, spec.yaw_deg)
    tilt = uniform(rng, spec.tilt_deg)
    tilt_dir = float(rng.uniform(0.0, 360.0))
    axis = [math.cos(math.radians(tilt_dir)), math.sin(math.radians(tilt_dir)), 0.0]
    pose = tf.rotation_matrix(math.radians(tilt), axis) @ tf.rotation_matrix(
        math.radians(yaw), [0.0, 0.0, 1.0]
    )
    draws = {"mode": "upright", "yaw_deg": yaw, "tilt_deg": tilt, "tilt_direction_deg": tilt_dir}
    return pose, draws


def look_at(eye: np.ndarray, target: np.ndarray, roll_deg: float = 0.0) -> np.ndarray:
    """(4, 4) camera → world pose of a camera at `eye` looking at `target`, +Z world up."""
    back = eye - target
    back = back / np.linalg.norm(back)
    up = np.array([0.0, 0.0, 1.0]) if abs(back[2]) < 0.999 else np.array([0.0, 1.0, 0.0])
    right = np.cross(up, back)
    right /= np.linalg.norm(right)
    true_up = np.cross(back, right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, true_up, back, eye
    if roll_deg:
        pose = pose @ tf.rotation_matrix(math.radians(roll_deg), [0.0, 0.0, 1.0])
    return pose


def sample_camera(
    spec: CameraSpec,
    radius: float,
    width: int,
    height: int,
    rng: np.random.Generator,
    target: np.ndarray | None = None,
) -> tuple[Camera, dict[str, Any]]:
    """A camera framing a part of bounding radius `radius` (mm) centred at the origin.

    Args:
        spec: the camera's ranges.
        radius: bounding radius of the part (mm).
        width, height: image size in pixels.
        rng: this sample's generator.
        target: (3,) float mm, world point aimed at (before aim jitter); None: the origin.
    """
    yfov = math.radians(uniform(rng, spec.yfov_deg))
    xfov = 2.0 * math.atan(math.tan(yfov / 2.0) * width / height)
    framing = radius / math.sin(min(xfov, yfov) / 2.0)
    factor = uniform(rng, spec.distance)
    elevation = uniform(rng, spec.elevation_deg)
    azimuth = uniform(rng, spec.azimuth_deg)
    jitter = uniform(rng, spec.aim_jitter)
    aim = _unit_vector(rng) * jitter * radius
    if target is not None:
        aim = aim + target
    roll = uniform(rng, spec.roll_deg)
    el, az = math.radians(elevation), math.radians(azimuth)
    direction = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    distance = factor * framing
    pose = look_at(aim + direction * distance, aim, roll)
    near = max(distance - 1.5 * radius - np.linalg.norm(aim), 0.01 * distance)
    far = distance + 1.5 * radius
    if target is not None:  # the part's far side may lie up to |target| beyond the aim
        far += float(np.linalg.norm(target))
    camera = Camera(pose, yfov, width, height, znear=near, zfar=far)
    draws = {
        "yfov_deg": math.degrees(yfov),
        "distance_factor": factor,
        "distance_mm": distance,
        "elevation_deg": elevation,
        "azimuth_deg": azimuth,
        "aim_offset_mm": aim.tolist(),
        "roll_deg": roll,
    }
    return camera, draws


def _light_from_camera(
    camera_pose: np.ndarray, azimuth_deg: float, elevation_deg: float
) -> tuple[float, float, float]:
    """World direction of travel of a light placed at (azimuth, elevation) off the camera
    axis; azimuth 0 / elevation 0 is a light at the camera, 180 is behind the part."""
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    toward_light = np.array(
        [math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)]
    )
    travel = -(camera_pose[:3, :3] @ toward_light)
    return tuple(float(v) for v in travel / np.linalg.norm(travel))


def sample_lights(
    spec: LightingSpec, camera_pose: np.ndarray, rng: np.random.Generator
) -> tuple[tuple[Light, ...], float, dict[str, Any]]:
    """The light rig, the ambient level and the draws."""
    key_intensity = uniform(rng, spec.key_intensity)
    key_az = uniform(rng, spec.key_azimuth_deg)
    key_el = uniform(rng, spec.key_elevation_deg)
    key_k = uniform(rng, spec.color_temperature_k)
    ambient = uniform(rng, spec.ambient)
    key = Light(
        "directional", _light_from_camera(camera_pose, key_az, key_el), key_intensity,
        temperature_to_rgb(key_k), name="key" if spec.preset == "three_point" else "constant",
    )
    draws: dict[str, Any] = {
        "preset": spec.preset,
        "key": {"intensity": key_intensity, "azimuth_deg": key_az, "elevation_deg": key_el,
                "temperature_k": key_k},
        "ambient": ambient,
    }
    if spec.preset == "constant":
        return (key,), ambient, draws
    fill_ratio, fill_az = uniform(rng, spec.fill_ratio), uniform(rng, spec.fill_azimuth_deg)
    fill_k = uniform(rng, spec.color_temperature_k)
    rim_ratio, rim_el = uniform(rng, spec.rim_ratio), uniform(rng, spec.rim_elevation_deg)
    rim_az = float(rng.uniform(150.0, 210.0))
    rim_k = uniform(rng, spec.color_temperature_k)
    fill = Light("directional", _light_from_camera(camera_pose, fill_az, 5.0),
                 key_intensity * fill_ratio, temperature_to_rgb(fill_k), name="fill")
    rim = Light("directional", _light_from_camera(camera_pose, rim_az, rim_el),
                key_intensity * rim_ratio, temperature_to_rgb(rim_k), name="rim")
    draws["fill"] = {"ratio": fill_ratio, "azimuth_deg": fill_az, "temperature_k": fill_k}
    draws["rim"] = {"ratio": rim_ratio, "azimuth_deg": rim_az, "elevation_deg": rim_el,
                    "temperature_k": rim_k}
    return (key, fill, rim), ambient, draws


def sample_material(spec: MaterialSpec, rng: np.random.Generator) -> Material:
    """A material; its base colour is stored linear, drawn as sRGB."""
    if spec.palette:
        srgb = spec.palette[int(rng.integers(len(spec.palette)))]
    else:
        srgb = hsv_to_srgb(
            uniform(rng, spec.hue_deg), uniform(rng, spec.saturation), uniform(rng, spec.value)
        )
    linear = srgb_to_linear(np.asarray(srgb))
    return Material(
        base_color=(float(linear[0]), float(linear[1]), float(linear[2])),
        metallic=uniform(rng, spec.metallic),
        roughness=uniform(rng, spec.roughness),
    )


@functools.lru_cache(maxsize=16)
def background_images(folder: str) -> tuple[str, ...]:
    """Sorted image files in `folder`; a ConfigError if there are none."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise ConfigError(f"background.image_dir: {folder!r} is not a folder")
    files = sorted(str(p) for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ConfigError(
            f"background.image_dir: {folder!r} holds no image ({', '.join(IMAGE_SUFFIXES)})"
        )
    return tuple(files)


def sample_background(spec: BackgroundSpec, rng: np.random.Generator) -> Background:
    """A background: colours as sRGB, or an image file."""
    if spec.kind == "image":
        files = background_images(spec.image_dir or "")
        return Background("image", image_path=files[int(rng.integers(len(files)))])
    hue = float(rng.uniform(0.0, 360.0))
    sat = uniform(rng, spec.saturation)
    top = hsv_to_srgb(hue, sat, uniform(rng, spec.value))
    if spec.kind == "solid":
        return Background("solid", color_top=top, color_bottom=top)
    bottom = hsv_to_srgb(hue, sat, uniform(rng, spec.value))
    return Background("gradient", color_top=top, color_bottom=bottom)


def sample_scene(
    spec: SceneSpec, radius: float, width: int, height: int, rng: np.random.Generator
) -> Scene:
    """One scene for a part of bounding radius `radius` (mm, about its origin).

    Args:
        spec: the randomisation ranges.
        radius: bounding radius of the nominal part (mm); frames the camera.
        width, height: image size in pixels.
        rng: this sample's generator.
    """
    if radius <= 0:
        raise ValueError(f"radius must be positive, got {radius}")
    object_pose, pose_draws = sample_pose(spec.pose, rng)
    target = None
    if spec.camera.target is not None:  # aim point in the part's frame, turned with it
        target = object_pose[:3, :3] @ np.asarray(spec.camera.target, dtype=np.float64)
    camera, camera_draws = sample_camera(spec.camera, radius, width, height, rng, target)
    lights, ambient, light_draws = sample_lights(spec.lighting, camera.pose, rng)
    material = sample_material(spec.material, rng)
    background = sample_background(spec.background, rng)
    return Scene(
        object_pose=object_pose,
        camera=camera,
        lights=lights,
        material=material,
        background=background,
        ambient=ambient,
        draws={"pose": pose_draws, "camera": camera_draws, "lighting": light_draws},
    )

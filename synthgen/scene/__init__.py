"""Scene data model and its sampling (pose, camera, lights, material, background)."""

from synthgen.scene.model import Background, Camera, Light, Material, Scene
from synthgen.scene.sampling import sample_scene
from synthgen.scene.spec import (
    BackgroundSpec,
    CameraSpec,
    LightingSpec,
    MaterialSpec,
    PoseSpec,
    SceneSpec,
)

__all__ = [
    "Background",
    "BackgroundSpec",
    "Camera",
    "CameraSpec",
    "Light",
    "LightingSpec",
    "Material",
    "MaterialSpec",
    "PoseSpec",
    "Scene",
    "SceneSpec",
    "sample_scene",
]

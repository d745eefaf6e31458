"""Convert a synthgen `Scene` into Blender data, and remove it again.

The Blender world is in metres (so light power and Cycles' ray offsets keep their physical
meaning); synthgen's scenes are in mm, so every position is scaled by 1/1000. Meshes keep
their vertices in mm and their objects get the scale in their matrix.

Camera: synthgen's `Camera` is an OpenGL pinhole camera (looking down -Z, +Y up, square
pixels, principal point at the image centre, vertical field of view `yfov`), which is
Blender's camera convention too: the object matrix is the camera pose (translation scaled),
the sensor is fitted vertically with `angle_y = yfov`, and the lens shift moves the
principal point (zero for synthgen's centred intrinsics). Clip planes are znear/zfar.

Lights: a directional light becomes a sun of strength = irradiance (W/m², as pyrender's
directional intensity); a point light becomes a point lamp whose power gives the same
irradiance as pyrender's `intensity / distance²` (distance in mm), see `POINT_POWER_SCALE`.

`SceneBuilder` records every data-block it creates and `clear()` removes exactly those, so
nothing grows over a long run and a user's own data in a running Blender is never touched.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix

from synthgen.part import Part
from synthgen.scene.model import Camera, Light, Material

log = logging.getLogger(__name__)

#: mm → Blender units (metres).
MM = 1e-3
#: Edges sharper than this are shaded flat, degrees (as the pyrender backend).
CREASE_ANGLE_DEG = 30.0
#: Cycles point-lamp power (W) per unit of pyrender point intensity (irradiance·mm²):
#: Cycles gives irradiance P / (4π r²) for power P at r metres (measured against pyrender's
#: I / r² with r in mm, see tests/render/test_blender_backend.py), so P = 4π · I · 1e-6.
POINT_POWER_SCALE = 4.0 * math.pi * 1e-6
#: Prefix of every data-block name this module creates.
PREFIX = "synthgen"


def _matrix_rows(matrix: np.ndarray) -> Matrix:
    """A mathutils Matrix of a (4, 4) numpy matrix (RNA matrix properties given plain
    nested lists read them column by column)."""
    return Matrix(np.asarray(matrix, dtype=np.float64).tolist())


def metres_pose(pose: np.ndarray, scale_object: bool) -> np.ndarray:
    """(4, 4) Blender matrix_world of a synthgen pose (mm).

    Args:
        pose: (4, 4) object → world, mm.
        scale_object: also scale the object's own axes by 1/1000 (meshes whose vertices are
            in mm); False for cameras and lights.
    """
    out = np.array(pose, dtype=np.float64)
    out[:3, 3] *= MM
    if scale_object:
        out[:3, :3] *= MM
    return out


def lens_shift(camera: Camera) -> tuple[float, float]:
    """Blender's (shift_x, shift_y) for the camera's principal point.

    Blender measures the shift in units of the larger image side, +x right, +y up; the
    principal point (cx, cy) is in pixels from the top-left corner.
    """
    k = camera.intrinsics
    side = float(max(camera.width, camera.height))
    return (camera.width / 2.0 - k[0, 2]) / -side, (k[1, 2] - camera.height / 2.0) / side


def light_direction_matrix(direction: np.ndarray, position: np.ndarray) -> np.ndarray:
    """(4, 4) matrix (metres) whose -Z axis is `direction` and origin `position` (mm)."""
    z = -np.asarray(direction, dtype=np.float64)
    z /= max(float(np.linalg.norm(z)), 1e-12)
    helper = np.array([0.0, 1.0, 0.0]) if abs(z[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    out = np.eye(4)
    out[:3, 0], out[:3, 1], out[:3, 2] = x, np.cross(z, x), z
    out[:3, 3] = np.asarray(position, dtype=np.float64) * MM
    return out


@dataclass
class SceneBuilder:
    """Builds one sample's Blender objects inside a dedicated Blender scene.

    Attributes:
        scene: the Blender scene drawn into (made by the renderer, not by this class).
        created: every data-block made for the current sample, removed by `clear`.
    """

    scene: bpy.types.Scene
    created: list = field(default_factory=list)

    def _link(self, name: str, data) -> bpy.types.Object:
        obj = bpy.data.objects.new(f"{PREFIX}_{name}", data)
        self.scene.collection.objects.link(obj)
        self.created.append(obj)
        return obj

    def add_mesh(self, part: Part, pose: np.ndarray, material: bpy.types.Material,
                 name: str = "part", index: int = 1) -> bpy.types.Object:
        """Add a part (mesh in mm) posed by `pose` (mm); smooth shading, sharp creases.

        Args:
            index: the object's pass index (Cycles' object-index pass).
        """
        vertices = np.asarray(part.mesh.vertices, dtype=np.float32)
        faces = np.asarray(part.mesh.faces, dtype=np.int32)
        mesh = bpy.data.meshes.new(f"{PREFIX}_{name}")
        self.created.append(mesh)
        mesh.vertices.add(len(vertices))
        mesh.vertices.foreach_set("co", vertices.ravel())
        mesh.loops.add(faces.size)
        mesh.loops.foreach_set("vertex_index", faces.ravel())
        mesh.polygons.add(len(faces))
        mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
        mesh.update(calc_edges=True)
        mesh.shade_smooth()
        mesh.set_sharp_from_angle(angle=math.radians(CREASE_ANGLE_DEG))
        mesh.materials.append(material)
        obj = self._link(name, mesh)
        obj.matrix_world = _matrix_rows(metres_pose(pose, scale_object=True))
        obj.pass_index = index
        return obj

    def add_material(self, material: Material, double_sided: bool) -> bpy.types.Material:
        """A Principled BSDF material: base colour (linear), metallic, roughness.

        Plastic is metallic 0 with the default dielectric specular (IOR 1.5), metal is
        metallic 1 (the base colour tints the reflection), as in the glTF model pyrender
        uses.
        """
        mat = bpy.data.materials.new(f"{PREFIX}_material")
        self.created.append(mat)
        if mat.node_tree is None:  # Blender < 5 makes node trees on request only
            mat.use_nodes = True
        bsdf = next(n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
        bsdf.inputs["Base Color"].default_value = (*material.base_color, 1.0)
        bsdf.inputs["Metallic"].default_value = float(material.metallic)
        bsdf.inputs["Roughness"].default_value = float(material.roughness)
        mat.use_backface_culling = not double_sided
        return mat

    def add_camera(self, camera: Camera) -> bpy.types.Object:
        """The scene camera (see the module docstring for the model)."""
        data = bpy.data.cameras.new(f"{PREFIX}_camera")
        self.created.append(data)
        data.type = "PERSP"
        data.sensor_fit = "VERTICAL"
        data.angle_y = float(camera.yfov)
        data.shift_x, data.shift_y = lens_shift(camera)
        data.clip_start = float(camera.znear) * MM
        data.clip_end = float(camera.zfar) * MM
        obj = self._link("camera", data)
        obj.matrix_world = _matrix_rows(metres_pose(camera.pose, scale_object=False))
        self.scene.camera = obj
        render = self.scene.render
        render.resolution_x, render.resolution_y = camera.width, camera.height
        render.resolution_percentage = 100
        render.pixel_aspect_x = render.pixel_aspect_y = 1.0
        return obj

    def add_light(self, light: Light, index: int) -> bpy.types.Object:
        """A sun (directional light) or a point lamp, as the module docstring states."""
        name = f"light{index}_{light.name or light.kind}"
        if light.kind == "directional":
            data = bpy.data.lights.new(f"{PREFIX}_{name}", "SUN")
            data.energy = float(light.intensity)
            data.angle = 0.0
        elif light.kind == "point":
            data = bpy.data.lights.new(f"{PREFIX}_{name}", "POINT")
            data.energy = float(light.intensity) * POINT_POWER_SCALE
            data.shadow_soft_size = 0.0
        else:
            raise ValueError(f"light kind {light.kind!r} is unknown; use directional or point")
        self.created.append(data)
        data.color = tuple(float(c) for c in light.color)
        obj = self._link(name, data)
        obj.matrix_world = _matrix_rows(light_direction_matrix(light.direction, light.position))
        return obj

    def clear(self) -> None:
        """Remove every data-block made since the last `clear` (objects first)."""
        collections = {
            bpy.types.Object: bpy.data.objects,
            bpy.types.Mesh: bpy.data.meshes,
            bpy.types.Material: bpy.data.materials,
            bpy.types.Camera: bpy.data.cameras,
            bpy.types.Light: bpy.data.lights,
        }
        objects = [b for b in self.created if isinstance(b, bpy.types.Object)]
        rest = [b for b in self.created if not isinstance(b, bpy.types.Object)]
        for block in objects + rest:
            for kind, collection in collections.items():
                if isinstance(block, kind):
                    collection.remove(block, do_unlink=True)
                    break
        self.created.clear()


def setup_world(world: bpy.types.World, environment: str, strength: float,
                ambient: float, image_cache: dict) -> None:
    """Set the world shader: the lighting a part gets besides the scene's lights.

    Args:
        world: the renderer's own world.
        environment: "ambient" (a uniform world of the scene's ambient level, as pyrender's
            ambient term), "none" (black) or the path of an equirectangular image (.hdr,
            .exr, .png, .jpg) lighting the part and seen in its reflections.
        strength: multiplier of the world's emission.
        ambient: the scene's ambient level in [0, 1].
        image_cache: {path: bpy image} kept by the renderer (one image per path).
    """
    if world.node_tree is None:
        world.use_nodes = True
    nodes, links = world.node_tree.nodes, world.node_tree.links
    background = next(n for n in nodes if n.type == "BACKGROUND")
    for node in [n for n in nodes if n.type == "TEX_ENVIRONMENT"]:
        nodes.remove(node)
    if environment in ("ambient", "none"):
        level = float(ambient) if environment == "ambient" else 0.0
        background.inputs["Color"].default_value = (1.0, 1.0, 1.0, 1.0)
        background.inputs["Strength"].default_value = level * float(strength)
        return
    image = image_cache.get(environment)
    if image is None:
        image = bpy.data.images.load(str(Path(environment)), check_existing=False)
        image.name = f"{PREFIX}_environment"
        image_cache[environment] = image
    texture = nodes.new("ShaderNodeTexEnvironment")
    texture.image = image
    links.new(texture.outputs["Color"], background.inputs["Color"])
    background.inputs["Strength"].default_value = float(strength)

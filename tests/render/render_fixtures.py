"""Tiny fixtures for the render tests: an icosphere part, hand-made defects, direct scenes.

Plain functions (imported by the test modules), so the tests can build variants.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import trimesh

from synthgen.part import DefectRecord, Part
from synthgen.scene.model import Background, Camera, Light, Material, Scene

RADIUS = 20.0  # mm, sphere radius
DISTANCE = 120.0  # mm, camera to object origin
YFOV = math.radians(30.0)


def sphere_part(subdivisions: int = 4) -> Part:
    """An icosphere of radius RADIUS mm centred on the origin, one region, no defects."""
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=RADIUS)
    return Part(
        mesh=mesh,
        face_region=np.zeros(len(mesh.faces), dtype=np.int16),
        region_names=("surface",),
        product="sphere",
    )


def bulge(nominal: Part, direction, radius: float, height: float) -> Part:
    """Push vertices within `radius` mm of the surface point along `direction` outward.

    Displacement is height · (1 − (d / radius)²)² along the radial direction; faces with a
    moved vertex are labelled 1.
    """
    n = np.asarray(direction, dtype=np.float64)
    n /= np.linalg.norm(n)
    centre = n * RADIUS
    vertices = nominal.mesh.vertices.copy()
    dist = np.linalg.norm(vertices - centre, axis=1)
    moved = dist < radius
    push = height * (1.0 - (dist[moved] / radius) ** 2) ** 2
    unit = vertices[moved] / np.linalg.norm(vertices[moved], axis=1, keepdims=True)
    vertices[moved] += unit * push[:, None]
    mesh = trimesh.Trimesh(vertices, nominal.mesh.faces.copy(), process=False)
    face_defect = moved[mesh.faces].any(axis=1).astype(np.int16)
    record = DefectRecord(
        type="bulge",
        instance=1,
        params={"radius": radius, "height": height},
        location=tuple(centre),
        normal=tuple(n),
        extent=radius + height,
        size_mm=2 * radius,
        n_faces=int(face_defect.sum()),
    )
    return nominal.with_defect(mesh, nominal.face_region, face_defect, record)


def tunnel(nominal: Part, radius: float) -> Part:
    """Remove the faces within `radius` mm of the Z axis: a through hole along Z.

    No face is labelled (material is missing, nothing was added); the record sits on the
    +Z side, where the camera of `make_scene` looks.
    """
    mesh = nominal.mesh
    keep = np.linalg.norm(mesh.triangles_center[:, :2], axis=1) >= radius
    cut = trimesh.Trimesh(mesh.vertices.copy(), mesh.faces[keep], process=False)
    record = DefectRecord(
        type="hole",
        instance=1,
        params={"radius": radius},
        location=(0.0, 0.0, RADIUS),
        normal=(0.0, 0.0, 1.0),
        extent=radius * 1.5,
        size_mm=2 * radius,
        n_faces=0,
    )
    part = nominal.with_defect(
        cut, nominal.face_region[keep], np.zeros(int(keep.sum()), dtype=np.int16), record
    )
    return replace(part, watertight=False)


def make_scene(
    size: int = 96,
    object_pose: np.ndarray | None = None,
    background: Background | None = None,
) -> Scene:
    """The camera on +Z at DISTANCE mm looking at the origin, one key light, grey plastic."""
    pose = np.eye(4)
    pose[2, 3] = DISTANCE
    camera = Camera(pose=pose, yfov=YFOV, width=size, height=size, znear=10.0, zfar=1000.0)
    light = Light(kind="directional", direction=(0.3, -0.4, -1.0), intensity=3.0, name="key")
    return Scene(
        object_pose=np.eye(4) if object_pose is None else object_pose,
        camera=camera,
        lights=(light,),
        material=Material(base_color=(0.6, 0.6, 0.65), metallic=0.0, roughness=0.5),
        background=background or Background(kind="solid", color_top=(0.1, 0.2, 0.3)),
        ambient=0.2,
    )

"""Glue between the panel's settings and the synthgen library (no UI code here).

- `recipe_from_settings` turns `scene.synthgen` into a recipe dict that goes through the
  library's own validation (`synthgen.job.parse_recipe`), so the panel accepts exactly what
  a YAML recipe accepts and reports the same errors.
- `part_from_object` / `mesh_from_part` move meshes between Blender (object units) and
  synthgen (mm).
- `DatasetRun` makes a dataset one sample per `step()` with the CLI's machinery
  (`synthgen.generate.prepare_output`, `JobRunner`, `finalize`), so a modal operator can
  run it from a timer and stop between samples.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import bpy
import numpy as np
import trimesh

from synthgen.errors import ConfigError
from synthgen.job import Job, parse_recipe
from synthgen.part import Part
from synthgen.products import build_product

from .properties import RANGES, range_property

log = logging.getLogger(__name__)

#: Custom property naming the parametric product an object was made from.
PRODUCT_KEY = "synthgen_product"


def output_path(settings) -> Path:
    """The output folder, with Blender's // (relative to the .blend file) resolved."""
    if not settings.output_dir.strip():
        raise ConfigError("output folder: empty; choose a folder to write the dataset to")
    return Path(bpy.path.abspath(settings.output_dir)).expanduser().resolve()


def part_from_object(obj: bpy.types.Object, mm_per_unit: float) -> Part:
    """The object's evaluated mesh as a Part (mm, the object's own frame).

    An object made by the add-on from a parametric product is rebuilt by the library (so
    its named face regions and notch are there); any other mesh becomes a one-region part.

    Raises:
        ConfigError: not a mesh object, or a mesh without faces.
    """
    if obj is None or obj.type != "MESH":
        raise ConfigError("select a mesh object to use as the product")
    product = obj.get(PRODUCT_KEY)
    if product and obj.data.get(PRODUCT_KEY) == product:
        return build_product(product)
    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    try:
        mesh.calc_loop_triangles()
        vertices = np.empty(len(mesh.vertices) * 3, dtype=np.float64)
        mesh.vertices.foreach_get("co", vertices)
        faces = np.empty(len(mesh.loop_triangles) * 3, dtype=np.int64)
        mesh.loop_triangles.foreach_get("vertices", faces)
    finally:
        evaluated.to_mesh_clear()
    if len(faces) == 0:
        raise ConfigError(f"object {obj.name!r} has no faces to use as a product")
    tri = trimesh.Trimesh(vertices.reshape(-1, 3) * mm_per_unit, faces.reshape(-1, 3))
    return Part(mesh=tri, face_region=np.zeros(len(tri.faces), dtype=np.int16),
                region_names=("surface",), product="cad", watertight=bool(tri.is_watertight))


def mesh_from_part(part: Part, name: str, mm_per_unit: float) -> bpy.types.Mesh:
    """A new Blender mesh of the part, in object units (mm / mm_per_unit), flat shaded."""
    vertices = np.asarray(part.mesh.vertices, dtype=np.float64) / mm_per_unit
    faces = np.asarray(part.mesh.faces, dtype=np.int32)
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(vertices))
    mesh.vertices.foreach_set("co", vertices.astype(np.float32).ravel())
    mesh.loops.add(faces.size)
    mesh.loops.foreach_set("vertex_index", faces.ravel())
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    mesh.update(calc_edges=True)
    return mesh


def _defect_entry(entry) -> dict[str, Any]:
    out: dict[str, Any] = {"type": entry.type, "probability": entry.probability,
                           "count": [int(entry.count[0]), int(entry.count[1])]}
    for param in entry.params:
        out[param.name] = [param.low, param.high] if param.is_range else param.low
    regions = [r.strip() for r in entry.regions.split(",") if r.strip()]
    if regions:
        out["regions"] = regions
    return out


def recipe_from_settings(settings, product_file: Path | None = None) -> dict[str, Any]:
    """The recipe dict the panel describes.

    Args:
        settings: `scene.synthgen`.
        product_file: for "Selected object": the mesh file (mm) the object was written to.
    """
    if settings.product_source == "PARAMETRIC":
        product = {"type": settings.product_type}
    else:
        if product_file is None:
            raise ConfigError("the selected object must be written to a file first")
        product = {"type": "cad", "params": {"path": str(product_file), "units": "mm"}}
    scene: dict[str, dict[str, Any]] = {}
    for section, field, _ in RANGES:
        low, high = getattr(settings, range_property(section, field))
        scene.setdefault(section, {})[field] = [float(low), float(high)]
    formats = [f for f in ("mvtec", "coco", "yolo", "yolo_detect") if f in settings.formats]
    return {
        "product": product,
        "defects": [_defect_entry(entry) for entry in settings.defects],
        "good_fraction": settings.good_fraction,
        "scene": scene,
        "render": {
            "renderer": settings.renderer,
            "size": settings.image_size,
            "blender": {"engine": settings.engine, "samples": settings.render_samples,
                        "denoise": settings.denoise, "device": settings.device},
        },
        "output": {"formats": formats},
        "samples": settings.samples,
        "seed": settings.seed,
    }


def write_product_file(obj: bpy.types.Object, mm_per_unit: float, path: Path) -> Path:
    """Write the selected object's mesh (mm) to `path` (STL) for a `cad` recipe."""
    part = part_from_object(obj, mm_per_unit)
    path.parent.mkdir(parents=True, exist_ok=True)
    part.mesh.export(path)
    return path


def job_from_settings(context, out: Path | None) -> Job:
    """The validated Job of the panel (the selected object, if used, written next to
    `out` as `<out>.product.stl`, or into Blender's temp folder for previews)."""
    settings = context.scene.synthgen
    product_file = None
    if settings.product_source == "SELECTED":
        folder = Path(bpy.app.tempdir or bpy.utils.user_resource("SCRIPTS"))
        target = (out.with_name(out.name + ".product.stl") if out is not None
                  else folder / "synthgen_preview_product.stl")
        product_file = write_product_file(context.active_object, settings.mm_per_unit, target)
    return parse_recipe(recipe_from_settings(settings, product_file))


class DatasetRun:
    """A dataset job made one sample at a time (resumable, cancellable between samples).

    Args:
        job: the validated job.
        out: output folder (empty, or holding this job when `resume`).
        resume: continue a job already started in `out`.

    Attributes:
        todo: indices still to make, in order.
        made: samples made so far by this run.
    """

    def __init__(self, job: Job, out: Path, resume: bool):
        from synthgen.generate import JobRunner, prepare_output

        self.job, self.out = job, Path(out)
        done = prepare_output(job, self.out, resume)
        self.todo = [i for i in range(job.samples) if i not in done]
        self.total = len(self.todo)
        self.made = 0
        self._runner = JobRunner(job, self.out) if self.todo else None

    @property
    def finished(self) -> bool:
        return self.made >= self.total

    def step(self) -> None:
        """Make and write the next sample."""
        self._runner.produce(self.todo[self.made])
        self.made += 1

    def close(self) -> list[dict[str, Any]]:
        """Release the renderer and write the dataset-level files from what is on disk
        (also after a cancel: the folder is then a consistent, resumable partial job)."""
        from synthgen.generate import finalize

        if self._runner is not None:
            self._runner.close()
            self._runner = None
        return finalize(self.job, self.out)

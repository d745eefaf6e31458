"""The `cad` product: the user's own CAD file as a nominal Part.

Reads STL, OBJ, PLY, GLB/glTF and 3MF through trimesh, and STEP/STP through trimesh's
cascadio (OpenCASCADE) loader. Every body of a multi-body file or scene is kept, with its
scene transform applied. The result is in millimetres, +Z up, its bounding-box centre on the
origin, and watertight with outward normals unless the user accepted a broken mesh.

Units: `units` states what one file unit is. When it is left unset, STEP files use the units
they declare (cascadio hands over metres), 3MF files the `unit` attribute of their model, and
every other format millimetres (glTF is metres by its specification, but trimesh writes
millimetre numbers to it unchanged, so its claim is not trusted: set `units: m` for a glTF
written in metres). `target_size` instead scales the part so that its largest bounding-box
side is that many mm; it cannot be combined with `units`. An explicit `units` overrides a 3MF
file's declaration; for STEP it is ignored with a warning, since the geometry arrives already
converted to metres.

Regions: a file holding one geometry gets the regions "top" (face normal within 45 degrees of
+Z), "bottom" (within 45 degrees of -Z) and "side" (the rest), all three always present even
if one is empty. A scene holding several named geometries (glTF nodes, OBJ objects or groups,
3MF or STEP bodies) gets one region per scene node instead, named after the node.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
import trimesh
from pydantic import Field, model_validator

from synthgen.config import StrictModel
from synthgen.errors import MeshError, MissingDependency
from synthgen.part import Part
from synthgen.products.base import register_product

logger = logging.getLogger(__name__)

FORMATS: dict[str, str] = {
    "stl": "STL",
    "obj": "OBJ",
    "ply": "PLY",
    "glb": "glTF binary",
    "gltf": "glTF",
    "3mf": "3MF",
    "step": "STEP",
    "stp": "STEP",
}
"""File extension (lower case, no dot) → format name used in messages."""

UNIT_MM: dict[str, float] = {
    "mm": 1.0,
    "cm": 10.0,
    "m": 1000.0,
    "um": 1e-3,
    "in": 25.4,
    "ft": 304.8,
}
"""Millimetres per file unit, for each value `units` accepts."""

UP_ROTATIONS: dict[str, np.ndarray] = {
    "z": np.eye(3),
    "-z": np.array([[1.0, 0, 0], [0, -1, 0], [0, 0, -1]]),  # 180 degrees about X
    "y": np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]),  # +90 degrees about X
    "-y": np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]]),  # -90 degrees about X
    "x": np.array([[0.0, 0, -1], [0, 1, 0], [1, 0, 0]]),  # -90 degrees about Y
    "-x": np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]]),  # +90 degrees about Y
}
"""(3, 3) proper rotation for each `up_axis` that turns that file axis into +Z."""

REGION_COS = math.cos(math.radians(45.0))
"""A face is "top" when its normal's z is above this, "bottom" when below minus this."""

SOUP_FRACTION = 0.5
"""A mesh is refused as a triangle soup when more than this share of its triangles share no
edge with any other triangle after duplicate vertices are merged."""

MERGE_TOLERANCE = 1e-6
"""When repairing, vertices closer than this fraction of the bounding-box diagonal merge."""

_DECLARES_UNITS = ("3mf", "step", "stp")
_STEP = ("step", "stp")


class CadParams(StrictModel):
    """Parameters of the `cad` product.

    Attributes:
        path: the CAD file; a relative path is taken from the current working directory.
        units: length of one file unit (mm, cm, m, um, in, ft). Unset: the file's declared
            units for STEP and 3MF, mm otherwise.
        target_size: mm, scale the part so its largest bounding-box side is this long
            (instead of `units`; setting both is an error).
        up_axis: the file's up axis (x, y, z, -x, -y, -z), rotated onto +Z.
        repair: merge near-duplicate vertices, drop degenerate and duplicate faces, make the
            winding consistent and the normals outward, fill small holes.
        max_hole_edges: the longest boundary loop (in edges) that repair fills.
        accept_broken: keep a mesh still not a closed, consistently wound solid after repair
            (Part.watertight = False, with a logged warning) instead of refusing it.
    """

    path: str = Field(min_length=1, description="CAD file (STL, OBJ, PLY, GLB, glTF, 3MF, STEP)")
    units: Literal["mm", "cm", "m", "um", "in", "ft"] | None = Field(
        None, description="length of one file unit; unset: the file's own (STEP, 3MF) or mm"
    )
    target_size: float | None = Field(
        None, gt=0, le=1e6, description="mm, largest bounding-box side after scaling"
    )
    up_axis: Literal["x", "y", "z", "-x", "-y", "-z"] = Field(
        "z", description="file axis that becomes +Z"
    )
    repair: bool = Field(True, description="fix duplicates, winding, normals and small holes")
    max_hole_edges: int = Field(
        16, ge=3, le=100_000, description="edges in the longest boundary loop repair fills"
    )
    accept_broken: bool = Field(
        False, description="keep a mesh that is still open after repair (marked not watertight)"
    )

    @model_validator(mode="after")
    def _one_scale(self) -> CadParams:
        if self.units is not None and self.target_size is not None:
            raise ValueError(
                "set units or target_size, not both: target_size scales the part to that "
                "size whatever its units"
            )
        return self


def _check_file(path: Path) -> str:
    """The lower-case extension of `path` after checking that it is a readable, known file."""
    ext = path.suffix.lower().lstrip(".")
    if ext not in FORMATS:
        known = ", ".join(sorted({f".{e}" for e in FORMATS}))
        raise MeshError(
            f"{path.name}: unknown CAD file extension {path.suffix or '(none)'!r}; "
            f"accepted: {known}"
        )
    if not path.exists():
        raise MeshError(f"{path}: no such file")
    if not path.is_file():
        raise MeshError(f"{path}: is not a file")
    if path.stat().st_size == 0:
        raise MeshError(f"{path.name}: the file is empty (0 bytes)")
    return ext


def _require(ext: str) -> None:
    """Raise MissingDependency when the optional package that reads `ext` is missing."""
    if ext in _STEP:
        try:
            import cascadio  # noqa: F401
        except ImportError:
            raise MissingDependency("STEP import", "cad", "cascadio") from None
    elif ext == "3mf":
        try:
            import lxml  # noqa: F401
        except ImportError:
            raise MissingDependency("3MF import", "cad", "lxml") from None


def _read_scene(path: Path, ext: str) -> trimesh.Scene:
    """The file as a trimesh Scene (file units, file axes), or one MeshError saying why not."""
    _require(ext)
    if ext == "stl":
        _check_stl(path)
    kwargs: dict[str, Any] = {"split_objects": True, "split_groups": True} if ext == "obj" else {}
    try:
        return trimesh.load_scene(str(path), file_type=ext, process=False, **kwargs)
    except Exception as error:  # trimesh's parsers raise anything from ValueError to KeyError
        if ext in _STEP:
            detail = "OpenCASCADE could not parse it as a STEP B-rep"
        elif isinstance(error, ImportError | UnicodeError):
            detail = "it is neither valid binary data nor text of this format"
        else:
            detail = f"{type(error).__name__}: {error}"
        raise MeshError(f"{path.name}: cannot be read as {FORMATS[ext]} ({detail})") from None


def _check_stl(path: Path) -> None:
    """Refuse a file that is neither ASCII STL nor a binary STL of consistent length.

    A binary STL is an 80-byte header, a uint32 triangle count n and 50 bytes per triangle;
    trimesh versions differ in what they make of a file that fits neither form.
    """
    size = path.stat().st_size
    with path.open("rb") as file:
        head = file.read(84)
    if head.lstrip()[:5].lower() == b"solid":
        return  # ASCII (or a binary file whose header starts with "solid": checked below)
    count = int.from_bytes(head[80:84], "little") if len(head) == 84 else -1
    if count < 0 or size != 84 + 50 * count:
        raise MeshError(
            f"{path.name}: cannot be read as STL (not ASCII STL, and a binary STL of "
            f"{'?' if count < 0 else count} triangles would be "
            f"{'?' if count < 0 else 84 + 50 * count} bytes, not {size})"
        )


def _flatten(
    scene: trimesh.Scene, name: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Concatenate every triangle geometry of `scene` with its node transform applied.

    Returns:
        vertices (V, 3) float64 in file units, faces (F, 3) int64, node (F,) int64 index into
        the node names, and the node names (one per scene node that holds triangles).
    """
    vertices, faces, nodes, names = [], [], [], []
    offset = 0
    skipped = 0
    for node in scene.graph.nodes_geometry:
        transform, geom_name = scene.graph[node]
        geom = scene.geometry.get(geom_name)
        if not isinstance(geom, trimesh.Trimesh) or len(geom.faces) == 0:
            skipped += 1
            continue
        v = np.asarray(geom.vertices, dtype=np.float64)
        f = np.asarray(geom.faces, dtype=np.int64)
        if f.ndim != 2 or f.shape[1] != 3 or f.min() < 0 or f.max() >= len(v):
            raise MeshError(f"{name}: geometry {geom_name!r} has faces indexing missing vertices")
        matrix = np.asarray(transform, dtype=np.float64)
        v = v @ matrix[:3, :3].T + matrix[:3, 3]
        if np.linalg.det(matrix[:3, :3]) < 0:  # a mirroring node flips the winding
            f = f[:, ::-1]
        vertices.append(v)
        faces.append(f + offset)
        nodes.append(np.full(len(f), len(names), dtype=np.int64))
        names.append(str(node))
        offset += len(v)
    if not faces:
        what = f" (only {skipped} point or line geometries)" if skipped else ""
        raise MeshError(f"{name}: the file contains no triangles{what}")
    vertices_all = np.concatenate(vertices)
    if not np.isfinite(vertices_all).all():
        raise MeshError(f"{name}: the file has vertices with NaN or infinite coordinates")
    return vertices_all, np.concatenate(faces), np.concatenate(nodes), names


def _mm_per_unit(
    params: CadParams, ext: str, declared: str | None, name: str
) -> tuple[float | None, str]:
    """(mm per file unit or None when target_size decides, where the units came from)."""
    if params.target_size is not None:
        return None, "target_size"
    if ext in _STEP:
        if params.units is not None:
            logger.warning(
                "%s: units=%s ignored: STEP geometry arrives converted to metres",
                name,
                params.units,
            )
        return UNIT_MM["m"] if declared is None else _declared_mm(declared, name), "file"
    if params.units is not None:
        return UNIT_MM[params.units], "units"
    if ext in _DECLARES_UNITS and declared:
        return _declared_mm(declared, name), "file"
    return 1.0, "default mm"


def _declared_mm(declared: str, name: str) -> float:
    try:
        return float(trimesh.units.unit_conversion(declared, "millimeters"))
    except (ValueError, KeyError, TypeError):
        raise MeshError(
            f"{name}: the file declares unknown units {declared!r}; set units or target_size"
        ) from None


def _boundary(mesh: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Open edges of `mesh` grouped into loops.

    Returns:
        edge (B,) int64 indices into `mesh.edges` (directed, face order: edge e lies on face
        e // 3) used by one face only; loop (B,) int64 loop id per open edge; the number of
        loops; the number of edges shared by more than two faces.
    """
    sorted_edges = mesh.edges_sorted
    n = max(len(mesh.vertices), 1)
    key = sorted_edges[:, 0].astype(np.int64) * n + sorted_edges[:, 1]
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    edge = np.flatnonzero(counts[inverse] == 1)
    nonmanifold = int((counts > 2).sum())
    if len(edge) == 0:
        return edge, edge.copy(), 0, nonmanifold
    a, b = sorted_edges[edge, 0], sorted_edges[edge, 1]
    component = trimesh.graph.connected_component_labels(np.column_stack([a, b]), n)
    _, loop = np.unique(component[a], return_inverse=True)
    return edge, loop, int(loop.max()) + 1, nonmanifold


def _isolated_faces(mesh: trimesh.Trimesh) -> np.ndarray:
    """(F,) bool, faces that share no edge with any other face."""
    counts = np.bincount(mesh.edges_unique_inverse, minlength=len(mesh.edges_unique))
    return (counts[mesh.edges_unique_inverse] == 1).reshape(-1, 3).all(axis=1)


def _fill_holes(
    mesh: trimesh.Trimesh, labels: np.ndarray, max_edges: int
) -> tuple[trimesh.Trimesh, np.ndarray, int]:
    """Close every boundary loop of at most `max_edges` edges with a fan of triangles.

    Each loop gets a new vertex at the mean of its vertices and one triangle per open edge,
    wound against that edge, so a consistently wound mesh stays consistent; each new face
    takes the label of the face across its open edge. Open edges of isolated triangles are
    never filled (that would make flat double-sided slivers).

    Returns:
        the mesh, the (F',) labels and the number of holes filled.
    """
    edge, loop, n_loops, _ = _boundary(mesh)
    keep = ~_isolated_faces(mesh)[edge // 3]
    edge, loop = edge[keep], loop[keep]
    keep = np.bincount(loop, minlength=n_loops)[loop] <= max_edges
    edge, loop = edge[keep], loop[keep]
    if len(edge) == 0:
        return mesh, labels, 0
    directed = mesh.edges[edge]
    loops, loop = np.unique(loop, return_inverse=True)
    centres = np.zeros((len(loops), 3))
    np.add.at(centres, loop, mesh.vertices[directed[:, 0]])
    centres /= np.bincount(loop, minlength=len(loops))[:, None]
    apex = len(mesh.vertices) + loop
    fan = np.column_stack([directed[:, 1], directed[:, 0], apex])
    filled = trimesh.Trimesh(
        np.concatenate([mesh.vertices, centres]),
        np.concatenate([mesh.faces, fan]),
        process=False,
    )
    return filled, np.concatenate([labels, labels[edge // 3]]), len(loops)


def _clean(
    mesh: trimesh.Trimesh, labels: np.ndarray, name: str, repair: bool
) -> tuple[trimesh.Trimesh, np.ndarray, dict[str, int]]:
    """Merge vertices; when repairing, also drop degenerate and duplicate faces."""
    diagonal = float(np.linalg.norm(mesh.extents))
    if repair and diagonal > 0:
        digits = max(0, -math.floor(math.log10(diagonal * MERGE_TOLERANCE)))
        mesh.merge_vertices(merge_tex=True, merge_norm=True, digits_vertex=digits)
    else:
        mesh.merge_vertices(merge_tex=True, merge_norm=True)  # exact duplicates (STL)
    stats = {"degenerate_faces_dropped": 0, "duplicate_faces_dropped": 0}
    if repair:
        f = mesh.faces
        good = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 2] != f[:, 0])
        stats["degenerate_faces_dropped"] = int((~good).sum())
        mesh.update_faces(good)
        labels = labels[good]
        unique = np.zeros(len(mesh.faces), dtype=bool)
        unique[mesh.unique_faces()] = True
        stats["duplicate_faces_dropped"] = int((~unique).sum())
        mesh.update_faces(unique)
        labels = labels[unique]
        mesh.remove_unreferenced_vertices()
    if len(mesh.faces) == 0:
        raise MeshError(f"{name}: every triangle of the file is degenerate")
    isolated = int(_isolated_faces(mesh).sum())
    if isolated > SOUP_FRACTION * len(mesh.faces):
        raise MeshError(
            f"{name}: triangle soup: {isolated} of {len(mesh.faces)} triangles share no edge "
            "with another, even after merging duplicate vertices; export the part as "
            "a closed solid"
        )
    return mesh, labels, stats


def _signed_volume(mesh: trimesh.Trimesh) -> float:
    """mm^3, the volume enclosed by a closed mesh; negative when its normals point inward."""
    tri = mesh.triangles
    return float(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0)


def _problems(mesh: trimesh.Trimesh) -> list[str]:
    """What keeps `mesh` from being a closed, consistently wound, outward solid.

    Open and non-manifold edges come first (their texts contain "edges"); winding and
    orientation are only judged on a mesh without them.
    """
    edge, _, n_loops, nonmanifold = _boundary(mesh)
    found = []
    if len(edge):
        found.append(f"{len(edge)} open edges in {n_loops} boundary loops")
    if nonmanifold:
        found.append(f"{nonmanifold} edges shared by more than two faces")
    if not found and not mesh.is_winding_consistent:
        found.append("inconsistent face winding")
    if not found and _signed_volume(mesh) < 0:
        found.append("normals pointing inward")
    return found


def _repair(
    mesh: trimesh.Trimesh, labels: np.ndarray, max_hole_edges: int
) -> tuple[trimesh.Trimesh, np.ndarray, dict[str, Any]]:
    """Make winding consistent, fill small holes and point normals outward."""
    stats: dict[str, Any] = {"winding_fixed": False, "holes_filled": 0, "inverted": False}
    if not mesh.is_winding_consistent:
        trimesh.repair.fix_winding(mesh)
        stats["winding_fixed"] = True
    mesh, labels, stats["holes_filled"] = _fill_holes(mesh, labels, max_hole_edges)
    if mesh.is_watertight and mesh.is_winding_consistent:
        if stats["winding_fixed"]:  # each body was oriented on its own: point each outward
            before = mesh.faces.copy()
            trimesh.repair.fix_inversion(mesh, multibody=True)
            stats["inverted"] = bool((mesh.faces != before).any())
        elif _signed_volume(mesh) < 0:  # the file's own winding: trust its voids, flip all
            mesh.invert()
            stats["inverted"] = True
    return mesh, labels, stats


def _regions(mesh: trimesh.Trimesh, nodes: np.ndarray, names: list[str]) -> tuple:
    """(face_region (F,) int16, region names): by node when several, else by normal."""
    if 1 < len(names) < np.iinfo(np.int16).max:
        unique: list[str] = []
        for i, n in enumerate(names):
            n = n or f"geometry_{i}"
            unique.append(n if n not in unique else f"{n}_{i}")
        return nodes.astype(np.int16), tuple(unique)
    nz = mesh.face_normals[:, 2]
    region = np.full(len(nz), 2, dtype=np.int16)
    region[nz > REGION_COS] = 0
    region[nz < -REGION_COS] = 1
    return region, ("top", "bottom", "side")


def _to_mm(
    vertices: np.ndarray, params: CadParams, ext: str, declared: str | None, name: str
) -> tuple[np.ndarray, dict[str, Any]]:
    """Scale (file units → mm), rotate (up axis → +Z) and centre the (V, 3) vertices."""
    rotated = vertices if params.up_axis == "z" else vertices @ UP_ROTATIONS[params.up_axis].T
    mm, source = _mm_per_unit(params, ext, declared, name)
    if mm is None:
        largest = float(np.ptp(rotated, axis=0).max())
        if largest <= 0:
            raise MeshError(f"{name}: the part has zero size, it cannot be scaled")
        mm = params.target_size / largest
    scaled = rotated * mm
    centre = (scaled.min(axis=0) + scaled.max(axis=0)) / 2
    return scaled - centre, {"mm_per_file_unit": float(mm), "scale_from": source}


@register_product("cad", CadParams, "the user's own CAD file (STL, OBJ, PLY, GLB, glTF, 3MF, STEP)")
def build_cad(params: CadParams) -> Part:
    """Import `params.path` as a Part: mm, +Z up, bounding-box centre at the origin.

    Raises:
        MeshError: the file is missing, of an unknown type, empty, unreadable, a triangle
            soup, or still not a closed solid after repair (unless `accept_broken`).
        MissingDependency: a STEP file without cascadio, or a 3MF file without lxml.
    """
    path = Path(params.path).expanduser()
    ext = _check_file(path)
    name = path.name
    scene = _read_scene(path, ext)
    vertices, faces, nodes, names = _flatten(scene, name)
    vertices, measured = _to_mm(vertices, params, ext, scene.units, name)
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    measured["faces_in"] = len(faces)
    mesh, nodes, stats = _clean(mesh, nodes, name, params.repair)
    measured.update(stats)
    if params.repair:
        mesh, nodes, stats = _repair(mesh, nodes, params.max_hole_edges)
        measured.update(stats)
    problems = _problems(mesh)
    if problems and not params.accept_broken:
        hint = "set accept_broken: true to use it as is"
        if not params.repair:
            hint = "set repair: true to try to fix it, or accept_broken: true to use it as is"
        what = "not watertight" if "edges" in problems[0] else "not a valid solid"
        after = "after repair" if params.repair else "(repair is off)"
        raise MeshError(f"{name}: {what} {after}: {', '.join(problems)}; {hint}")
    if problems:
        logger.warning("%s: using a broken mesh as is: %s", name, ", ".join(problems))
    # re-centre: filled holes and dropped faces may move the bounding box a little
    mesh.apply_translation(-(mesh.bounds[0] + mesh.bounds[1]) / 2)
    region, region_names = _regions(mesh, nodes, names)
    measured.update(
        faces_out=len(mesh.faces),
        vertices_out=len(mesh.vertices),
        size_mm=[float(v) for v in mesh.extents],
        problems=problems,
        geometries=len(names),
    )
    logger.info(
        "%s: %d faces, %.4g mm per file unit, size %s mm, %s",
        name,
        len(mesh.faces),
        measured["mm_per_file_unit"],
        np.round(mesh.extents, 3).tolist(),
        "watertight" if not problems else "not watertight",
    )
    return Part(
        mesh=mesh,
        face_region=region,
        region_names=region_names,
        product="cad",
        params={**params.model_dump(), "measured": measured},
        watertight=not problems,
    )

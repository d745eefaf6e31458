"""The default render backend: pyrender (OpenGL through EGL, headless) plus an exact label pass.

One `PyrenderRenderer` holds one OpenGL context for its life. Each `render` call makes:

1. the RGB image: pyrender's forward pass with 4x MSAA over a transparent background,
   composited over the scene's background (`compositing`), so edges blend with it;
2. the labels: `label_pass.LabelPass` draws the defective part and, when it has records, the
   nominal part into a single-sample framebuffer in the same context with the same camera
   matrices: per pixel the face index + 1 covering the pixel centre and the view depth (mm);
3. the masks: `masks.defect_masks` compares the two label images (see that module).

Importing this module imports pyrender and PyOpenGL; it sets PYOPENGL_PLATFORM=egl first
unless the environment already names a platform.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from synthgen.errors import MissingDependency
from synthgen.part import Part
from synthgen.render.antialias import geometric_edges, smooth_edges
from synthgen.render.compositing import background_image, composite
from synthgen.render.placement import Placed, offsets, placed_masks, render_single
from synthgen.render.result import RenderResult
from synthgen.scene.model import Light, Scene

if "PYOPENGL_PLATFORM" not in os.environ and "OpenGL" in sys.modules:
    logging.getLogger(__name__).warning(
        "OpenGL was imported before synthgen's pyrender backend without PYOPENGL_PLATFORM; "
        "headless rendering may fail (set PYOPENGL_PLATFORM=egl before importing OpenGL)"
    )
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

try:
    import pyrender
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependency("pyrender renderer", "gl", "pyrender") from exc

from OpenGL import GL

from synthgen.render.label_pass import GpuMesh, LabelPass  # after the platform is set

log = logging.getLogger(__name__)

#: Edges whose dihedral angle exceeds this are shaded sharp (vertices split), degrees.
CREASE_ANGLE_DEG = 30.0


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cross product of (N, 3) arrays (np.cross has a large fixed overhead)."""
    out = np.empty_like(a)
    out[:, 0] = a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1]
    out[:, 1] = a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2]
    out[:, 2] = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    return out


def _smooth_corner_pairs(
    faces: np.ndarray, normals: np.ndarray, cos_crease: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of face corners (index 3·face + corner) to merge across smooth edges.

    Half-edge a→b of one face is matched with b→a of its neighbour (consistent winding);
    unmatched, non-manifold or sharp edges merge nothing.

    Returns:
        corner pairs (rows (P,), cols (P,)) and (V,) bool: vertices on an edge that is
        not smooth (sharp, open, non-manifold or inconsistently wound).
    """
    n_vertices = int(faces.max()) + 1
    start = faces.reshape(-1)
    end = faces[:, [1, 2, 0]].reshape(-1)
    key = np.minimum(start, end) * n_vertices + np.maximum(start, end)
    order = np.argsort(key)
    sorted_key = key[order]
    same = sorted_key[1:] == sorted_key[:-1]
    # Keep runs of exactly two half-edges: a manifold edge.
    alone_before = np.concatenate([[True], ~same[:-1]])
    alone_after = np.concatenate([~same[1:], [True]])
    i = np.flatnonzero(same & alone_before & alone_after)
    h, t = order[i], order[i + 1]
    ok = start[h] == end[t]  # opposite directions: consistent winding
    h, t = h[ok], t[ok]
    f, g = h // 3, t // 3
    ok = np.einsum("ij,ij->i", normals[f], normals[g]) > cos_crease
    h, t, f, g = h[ok], t[ok], f[ok], g[ok]
    smooth = np.zeros(len(start), dtype=bool)
    smooth[h] = smooth[t] = True
    crease = np.zeros(n_vertices, dtype=bool)
    crease[start[~smooth]] = True
    crease[end[~smooth]] = True
    # h runs a→b in f, t runs b→a in g: f's corner at a meets g's corner at a, same for b.
    next_h = 3 * f + (h + 1) % 3
    next_t = 3 * g + (t + 1) % 3
    return np.concatenate([h, next_h]), np.concatenate([next_t, t]), crease


def split_sharp_edges(
    mesh: trimesh.Trimesh, crease_angle_deg: float = CREASE_ANGLE_DEG
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vertices and normals for smooth shading that keeps sharp edges sharp.

    Face corners that share a vertex are merged into one render vertex when they are
    connected through edges whose dihedral angle is below `crease_angle_deg`; each render
    vertex gets the area-weighted mean normal of its faces. Faces keep their order. Only
    the corners at vertices on a crease need the connectivity search; every other vertex
    keeps all its corners together.

    Args:
        mesh: triangle mesh, mm, consistently wound.
        crease_angle_deg: dihedral angle above which an edge stays sharp, degrees.

    Returns:
        positions (V', 3) float32 mm, normals (V', 3) float32 unit, faces (F, 3) uint32,
        and the unit face normals (F, 3) float64.
    """
    faces = np.asarray(mesh.faces, dtype=np.int64)
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    tri = vertices[faces]
    cross = _cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # length = 2 · area
    length = np.linalg.norm(cross, axis=1, keepdims=True)
    unit = np.divide(cross, length, out=np.zeros_like(cross), where=length > 0)
    rows, cols, crease = _smooth_corner_pairs(
        faces, unit, math.cos(math.radians(crease_angle_deg))
    )
    corner_vertex_id = faces.reshape(-1)
    # Corners at smooth vertices: one render vertex per mesh vertex.
    plain = ~crease[corner_vertex_id]
    used = np.zeros(len(vertices), dtype=bool)
    used[corner_vertex_id[plain]] = True
    plain_index = np.cumsum(used) - 1
    n_plain = int(used.sum())
    corner_vertex = np.empty(len(corner_vertex_id), dtype=np.int64)
    corner_vertex[plain] = plain_index[corner_vertex_id[plain]]
    # Corners at crease vertices: connected components of the smooth-corner graph.
    split = np.flatnonzero(~plain)
    if len(split):
        local = np.full(len(corner_vertex_id), -1, dtype=np.int64)
        local[split] = np.arange(len(split))
        keep = local[rows] >= 0  # pairs join corners of one vertex: both ends are split
        graph = coo_matrix(
            (np.ones(int(keep.sum()), dtype=np.int8), (local[rows[keep]], local[cols[keep]])),
            (len(split),) * 2,
        )
        n_split, component = connected_components(graph, directed=False)
        corner_vertex[split] = n_plain + component
    else:
        n_split = 0
    n_out = n_plain + n_split
    weights = np.repeat(cross, 3, axis=0)
    normals = np.stack(
        [np.bincount(corner_vertex, weights[:, k], minlength=n_out) for k in range(3)], axis=1
    )
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.divide(normals, length, out=np.zeros_like(normals), where=length > 0)
    positions = np.empty((n_out, 3), dtype=np.float32)
    positions[corner_vertex] = tri.reshape(-1, 3)
    return (
        positions,
        normals.astype(np.float32),
        corner_vertex.reshape(-1, 3).astype(np.uint32),
        unit,
    )


@dataclass(eq=False)
class _MeshEntry:
    """Cached render data of one trimesh object (held, so its id() stays unique)."""

    mesh: trimesh.Trimesh
    gpu: GpuMesh | None = None
    pyrender_mesh: pyrender.Mesh | None = None
    face_normals: np.ndarray | None = None


def _light_node_pose(light: Light) -> np.ndarray:
    """(4, 4) pose whose -Z axis is the light's direction and origin its position."""
    pose = np.eye(4)
    pose[:3, 3] = light.position
    z = -np.asarray(light.direction, dtype=np.float64)
    norm = np.linalg.norm(z)
    if norm == 0:
        return pose
    z /= norm
    helper = np.array([0.0, 1.0, 0.0]) if abs(z[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    pose[:3, 0], pose[:3, 1], pose[:3, 2] = x, np.cross(z, x), z
    return pose


def _pyrender_light(light: Light) -> pyrender.light.Light:
    if light.kind == "directional":
        return pyrender.DirectionalLight(color=light.color, intensity=light.intensity)
    if light.kind == "point":
        return pyrender.PointLight(color=light.color, intensity=light.intensity)
    raise ValueError(f"light kind {light.kind!r} is unknown; use directional or point")


class _SingleSampleRenderer(pyrender.renderer.Renderer):
    """pyrender's renderer with its "multisample" framebuffer given one sample per pixel.

    pyrender always draws into a 4x multisampled framebuffer; this re-specifies the storage
    of those renderbuffers (which stay attached) right after pyrender creates them.
    """

    def _configure_main_framebuffer(self) -> None:
        fresh = self._main_fb is None or self._main_fb_dims != (
            self.viewport_width,
            self.viewport_height,
        )
        super()._configure_main_framebuffer()
        if fresh:
            size = (self.viewport_width, self.viewport_height)
            for buffer, fmt in ((self._main_cb_ms, GL.GL_RGBA), (self._main_db_ms,
                                                                  GL.GL_DEPTH_COMPONENT24)):
                GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, buffer)
                GL.glRenderbufferStorageMultisample(GL.GL_RENDERBUFFER, 0, fmt, *size)


def _software_gl() -> bool:
    """Whether the current OpenGL context is a software rasteriser (Mesa llvmpipe etc.)."""
    name = GL.glGetString(GL.GL_RENDERER) or b""
    return any(soft in name.decode(errors="replace").lower()
               for soft in ("llvmpipe", "softpipe", "swrast", "software"))


def _delete_offscreen(offscreen: pyrender.OffscreenRenderer) -> None:
    """Free pyrender's GL objects and its EGL context, but keep the EGL display.

    pyrender's own `delete` terminates the EGL display, which Mesa shares between every
    context of the process: it would break any other renderer still open (a preview and a
    dataset job in one program, two renderers in tests). The display is freed at exit.
    """
    platform = offscreen._platform
    platform.make_current()
    offscreen._renderer.delete()
    platform.make_uncurrent()
    display = getattr(platform, "_egl_display", None)
    context = getattr(platform, "_egl_context", None)
    if display is not None and context is not None:
        from OpenGL.EGL import eglDestroyContext

        eglDestroyContext(display, context)
        # Forget the display too: pyrender's platform terminates it when collected.
        platform._egl_context = platform._egl_display = None
    elif display is None:  # not EGL (OSMesa, a window): pyrender's own clean-up is safe
        platform.delete_context()
    offscreen._renderer = None
    offscreen._platform = None


def _hide_triton() -> None:
    """Keep torch from loading triton in this process.

    Mesa's llvmpipe and triton each bundle their own LLVM; once an llvmpipe context exists,
    loading triton's library crashes the process (it happens when torch first imports
    torch._dynamo, for example in an optimizer step). synthgen never uses torch.compile, so
    a process that renders in software simply does without triton. Loaded before the
    context, triton is harmless and stays.
    """
    if "triton" not in sys.modules:
        sys.modules["triton"] = None  # makes `import triton` raise ImportError
        log.debug("software OpenGL in use: triton hidden from torch in this process")


class PyrenderRenderer:
    """Renders labelled views with pyrender; implements `synthgen.render.result.Renderer`.

    Holds one EGL context; not thread-safe. Meshes are cached on the GPU keyed by the
    trimesh object (treat meshes as immutable); the least recently used entries beyond
    `cache_size` are freed, so a long run does not grow.

    Args:
        width, height: initial viewport, pixels (each render resizes to its camera).
        crease_angle_deg: edges sharper than this are shaded flat, degrees.
        cache_size: number of meshes kept on the GPU.
        antialias: "msaa" (4x hardware multisampling), "edge" (one sample per pixel, then
            the pixels on exact geometric edges are smoothed: see `antialias.py`; 2-3x
            faster on a software rasteriser), "none", or "auto": "edge" on a software
            rasteriser such as Mesa llvmpipe, "msaa" on a GPU.

    Attributes:
        antialias: the mode in use ("msaa", "edge" or "none").
        last_timings: seconds spent per stage of the latest `render` call.
    """

    def __init__(
        self,
        width: int = 256,
        height: int = 256,
        crease_angle_deg: float = CREASE_ANGLE_DEG,
        cache_size: int = 4,
        antialias: Literal["auto", "msaa", "edge", "none"] = "auto",
    ):
        if antialias not in ("auto", "msaa", "edge", "none"):
            raise ValueError(f"antialias must be auto, msaa, edge or none, got {antialias!r}")
        self.crease_angle_deg = float(crease_angle_deg)
        self.cache_size = max(2, int(cache_size))
        self._cache: OrderedDict[int, _MeshEntry] = OrderedDict()
        self._pending_free: list[GpuMesh] = []
        self._last_labels: tuple | None = None
        self.last_timings: dict[str, float] = {}
        self._offscreen = pyrender.OffscreenRenderer(width, height)
        self._offscreen._platform.make_current()
        try:
            self._labels = LabelPass()
            software = _software_gl()
            if antialias == "auto":
                antialias = "edge" if software else "msaa"
            if software:
                _hide_triton()
        finally:
            self._offscreen._platform.make_uncurrent()
        self.antialias = antialias
        if antialias != "msaa":
            self._offscreen._renderer.__class__ = _SingleSampleRenderer
        log.debug("pyrender renderer ready (%dx%d, antialias %s)", width, height, antialias)

    # -- caching ---------------------------------------------------------------------------

    def _entry(self, mesh: trimesh.Trimesh) -> _MeshEntry:
        key = id(mesh)
        entry = self._cache.get(key)
        if entry is not None and entry.mesh is mesh:
            self._cache.move_to_end(key)
            return entry
        entry = _MeshEntry(mesh=mesh)
        self._cache[key] = entry
        while len(self._cache) > self.cache_size:
            _, old = self._cache.popitem(last=False)
            if old.gpu is not None:
                self._pending_free.append(old.gpu)
        return entry

    def _pyrender_mesh(self, entry: _MeshEntry) -> pyrender.Mesh:
        if entry.pyrender_mesh is None:
            positions, normals, faces, entry.face_normals = split_sharp_edges(
                entry.mesh, self.crease_angle_deg
            )
            primitive = pyrender.Primitive(
                positions=positions,
                normals=normals,
                indices=faces,
                material=pyrender.MetallicRoughnessMaterial(),
            )
            entry.pyrender_mesh = pyrender.Mesh([primitive])
        return entry.pyrender_mesh

    def _gpu_mesh(self, entry: _MeshEntry) -> GpuMesh:
        """Needs the context current."""
        if entry.gpu is None:
            entry.gpu = LabelPass.upload(entry.mesh.vertices, entry.mesh.faces)
        return entry.gpu

    # -- passes ----------------------------------------------------------------------------

    def _rgb_pass(self, scene: Scene, placed: Sequence[Placed]) -> np.ndarray:
        """(H, W, 4) uint8 premultiplied RGBA of the parts over a transparent background."""
        material = scene.material
        a = float(scene.ambient)
        world = pyrender.Scene(bg_color=(0.0, 0.0, 0.0, 0.0), ambient_light=(a, a, a))
        for obj in placed:
            mesh = self._pyrender_mesh(self._entry(obj.part.mesh))
            mesh.primitives[0].material = pyrender.MetallicRoughnessMaterial(
                baseColorFactor=(*material.base_color, 1.0),
                metallicFactor=material.metallic,
                roughnessFactor=material.roughness,
                doubleSided=not obj.part.watertight,
            )
            world.add(mesh, pose=np.array(obj.pose))
        world.add(self._pyrender_camera(scene), pose=np.array(scene.camera.pose))
        for light in scene.lights:
            world.add(_pyrender_light(light), pose=_light_node_pose(light))
        color, _ = self._offscreen.render(world, flags=pyrender.RenderFlags.RGBA)
        return color

    @staticmethod
    def _pyrender_camera(scene: Scene) -> pyrender.PerspectiveCamera:
        camera = scene.camera
        return pyrender.PerspectiveCamera(
            yfov=camera.yfov,
            znear=camera.znear,
            zfar=camera.zfar,
            aspectRatio=camera.width / camera.height,
        )

    def _label_pass(self, scene: Scene, parts: Sequence[Part], poses: Sequence[np.ndarray]):
        """Combined face ids (offset per part, see placement.py) and depths of `parts`.

        The result for the same meshes in the same scene object as the last call is reused
        (a defect placed with `face_visibility` then costs no extra pass in `render`).
        """
        key = (id(scene), *(id(p.mesh) for p in parts))
        if self._last_labels is not None and self._last_labels[0] == key:
            return self._last_labels[1]
        camera = scene.camera
        size = (camera.width, camera.height)
        projection = self._pyrender_camera(scene).get_projection_matrix(*size)
        view = np.linalg.inv(camera.pose)
        self._offscreen._platform.make_current()
        try:
            self._free_pending()
            meshes = [(self._gpu_mesh(self._entry(p.mesh)), view @ pose)
                      for p, pose in zip(parts, poses, strict=True)]
            closed = all(p.watertight for p in parts)
            return self._labels.draw_many(meshes, projection, size, closed)
        finally:
            self._offscreen._platform.make_uncurrent()

    def face_visibility(self, scene: Scene, part: Part) -> np.ndarray:
        """How many pixel centres see each face of `part` in `scene` (posed by
        scene.object_pose).

        Returns:
            (F,) int64 pixel counts (0 for faces the camera does not see).
        """
        return self.placed_visibility(scene, [part], [scene.object_pose])[0]

    def placed_visibility(
        self, scene: Scene, parts: Sequence[Part], poses: Sequence[np.ndarray]
    ) -> list[np.ndarray]:
        """Per part, how many pixel centres see each of its faces when all `parts` are in
        the view together (so occlusion by the others counts).

        Returns:
            One (F_k,) int64 array of pixel counts per part.
        """
        if self._offscreen is None:
            raise RuntimeError("this renderer has been closed")
        labels = self._label_pass(scene, parts, poses)
        # Keep the scene and meshes alive with the key so their ids cannot be reused.
        key = (id(scene), *(id(p.mesh) for p in parts))
        self._last_labels = (key, labels, scene, [p.mesh for p in parts])
        ids = labels.face_id[labels.face_id > 0].astype(np.int64) - 1
        counts = np.bincount(ids, minlength=int(offsets(parts)[-1]))
        starts = offsets(parts)
        return [counts[starts[k] : starts[k + 1]] for k in range(len(parts))]

    def _free_pending(self) -> None:
        """Free evicted GPU buffers; needs the context current."""
        for gpu in self._pending_free:
            LabelPass.free(gpu)
        self._pending_free.clear()

    # -- the protocol ----------------------------------------------------------------------

    def render(self, scene: Scene, part: Part, nominal: Part | None = None) -> RenderResult:
        """Render `part` in `scene`, with defect masks measured against `nominal`.

        Args:
            scene: the scene; its camera sets the image size.
            part: the (possibly defective) part, posed by scene.object_pose.
            nominal: the defect-free twin; required when `part.records` is not empty
                (ignored otherwise).

        Returns:
            The RenderResult (see its docstring for shapes, units and the mask rule).
        """
        return render_single(self, scene, part, nominal)

    def render_placed(self, scene: Scene, placed: Sequence[Placed]) -> RenderResult:
        """Render several objects in one view (each with its own pose and nominal twin).

        Returns:
            A RenderResult with `instance_masks` (one per object, occlusion included) and
            `defect_owner` (the object of each defect mask, records in object order).
        """
        if self._offscreen is None:
            raise RuntimeError("this renderer has been closed")
        camera = scene.camera
        t0 = time.perf_counter()
        entries = [self._entry(obj.part.mesh) for obj in placed]
        for entry in entries:
            self._pyrender_mesh(entry)
        self._offscreen.viewport_width = camera.width
        self._offscreen.viewport_height = camera.height
        t1 = time.perf_counter()
        rgba = self._rgb_pass(scene, placed)
        t2 = time.perf_counter()
        poses = [obj.pose for obj in placed]
        defective = self._label_pass(scene, [obj.part for obj in placed], poses)
        nominal = None
        if any(obj.part.records for obj in placed):
            nominal = self._label_pass(scene, [obj.nominal for obj in placed], poses)
        t3 = time.perf_counter()
        object_mask, instances, masks, owners = placed_masks(
            (defective.face_id, defective.depth),
            None if nominal is None else (nominal.face_id, nominal.depth),
            placed,
            camera,
        )
        t4 = time.perf_counter()
        rgb = composite(rgba, background_image(scene.background, camera.width, camera.height))
        if self.antialias == "edge":
            normals = np.concatenate([entry.face_normals for entry in entries])
            edges = geometric_edges(
                defective.face_id, defective.depth, normals, self.crease_angle_deg
            )
            rgb = smooth_edges(rgb, edges)
        t5 = time.perf_counter()
        self.last_timings = {
            "prepare": t1 - t0,
            "rgb": t2 - t1,
            "labels": t3 - t2,
            "masks": t4 - t3,
            "composite": t5 - t4,
            "total": t5 - t0,
        }
        return RenderResult(
            rgb=rgb,
            depth=np.ascontiguousarray(defective.depth),
            object_mask=object_mask,
            defect_masks=masks,
            defect_visible=masks.any(axis=(1, 2)),
            camera=camera,
            instance_masks=instances,
            defect_owner=owners,
        )

    def close(self) -> None:
        """Free the GPU buffers and the OpenGL context. Safe to call twice."""
        if self._offscreen is None:
            return
        self._offscreen._platform.make_current()
        try:
            for entry in self._cache.values():
                if entry.gpu is not None:
                    self._pending_free.append(entry.gpu)
            self._free_pending()
            self._labels.delete()
        finally:
            self._cache.clear()
            self._last_labels = None
            _delete_offscreen(self._offscreen)
            self._offscreen = None

    def __enter__(self) -> PyrenderRenderer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

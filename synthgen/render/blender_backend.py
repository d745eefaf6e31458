"""The Blender render backend: Cycles (or Eevee) images with exact, geometric labels.

One `BlenderRenderer` owns a Blender scene of its own (named "synthgen_render") and a world;
each `render` call:

1. converts the `Scene` into that Blender scene (`blender_scene.SceneBuilder`: meshes in mm
   under a 1/1000 object scale, the OpenGL camera, suns / point lamps, a Principled BSDF
   material, the world for the environment option);
2. renders it with a transparent film (Cycles: path tracing with the configured samples and
   OpenImageDenoise; Eevee on request) and composites it over the scene's background as the
   pyrender backend does (`compositing`);
3. labels it without any render pass: face ids and depth per pixel centre by ray casting
   the parts' own triangles (`blender_labels`), then the one mask rule of `masks.py`
   through `placement.placed_masks` — the same geometric method as the pyrender backend;
4. removes every data-block it made (`SceneBuilder.clear`), so a long run does not grow and
   a running Blender's own data is never touched.

Works in the `bpy` module (headless, in-process) and inside a running Blender (the add-on).
Importing this module imports bpy.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from synthgen.errors import ConfigError, MissingDependency, SynthgenError
from synthgen.part import Part
from synthgen.render.compositing import background_image, composite
from synthgen.render.placement import Placed, offsets, placed_masks, render_single
from synthgen.render.result import RenderResult
from synthgen.scene.model import Scene

try:
    import bpy
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependency("Blender renderer", "blender", "bpy") from exc

from synthgen.render.blender_labels import RayLabels, build_tree, ray_labels
from synthgen.render.blender_scene import PREFIX, SceneBuilder, setup_world

log = logging.getLogger(__name__)

ENGINES = {"cycles": "CYCLES", "eevee": "BLENDER_EEVEE"}
DEVICES = ("auto", "cpu", "cuda", "optix")


@dataclass(frozen=True)
class BlenderSettings:
    """How Blender renders (see `synthgen.job.BlenderSpec` for the recipe fields).

    Attributes:
        engine: "cycles" (path tracing) or "eevee" (rasterised; needs a GPU context).
        samples: samples per pixel.
        denoise: OpenImageDenoise on the Cycles result.
        device: "auto" (OptiX, then CUDA, then the CPU), "cpu", "cuda" or "optix".
        environment: "ambient", "none" or the path of an equirectangular image.
        environment_strength: multiplier of the environment's light.
        max_bounces: Cycles' total light-path bounces (diffuse and glossy: at most 2).
    """

    engine: Literal["cycles", "eevee"] = "cycles"
    samples: int = 32
    denoise: bool = True
    device: Literal["auto", "cpu", "cuda", "optix"] = "auto"
    environment: str = "ambient"
    environment_strength: float = 1.0
    max_bounces: int = 4

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ConfigError(f"engine {self.engine!r} is unknown; use cycles or eevee")
        if self.device not in DEVICES:
            raise ConfigError(f"device {self.device!r} is unknown; use {', '.join(DEVICES)}")
        if not 1 <= int(self.samples) <= 65536:
            raise ConfigError(f"samples must lie within [1, 65536], got {self.samples}")
        if self.environment not in ("ambient", "none") and not Path(self.environment).is_file():
            raise ConfigError(
                f"environment {self.environment!r} is neither ambient, none nor an image file"
            )


@contextmanager
def _quiet_stdout(enabled: bool = True) -> Iterator[None]:
    """Send file descriptor 1 to /dev/null for the block: Blender's renderer prints
    "Fra:… | Saved: …" lines straight to the C stdout, which would tear a CLI progress bar."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _user_gpu(prefs) -> bool:
    """Whether Cycles' preferences already name a GPU backend with a device in use."""
    kind = prefs.compute_device_type
    return kind != "NONE" and any(d.use and d.type == kind for d in prefs.devices)


def _select_device(scene: bpy.types.Scene, device: str) -> str:
    """Point Cycles at the device asked for; returns what is used ("CPU", "OPTIX", "CUDA").

    Raises:
        SynthgenError: cuda or optix asked for and Blender finds no such device.
    """
    if device == "cpu":
        scene.cycles.device = "CPU"
        return "CPU"
    try:
        prefs = bpy.context.preferences.addons["cycles"].preferences
    except KeyError:
        prefs = None
    if device == "auto" and prefs is not None and _user_gpu(prefs):
        # Inside a running Blender whose user already picked a GPU: keep their choice.
        scene.cycles.device = "GPU"
        return prefs.compute_device_type
    kinds = ["OPTIX", "CUDA"] if device == "auto" else [device.upper()]
    previous = prefs.compute_device_type if prefs is not None else None
    for kind in kinds:
        if prefs is None:
            break
        try:
            prefs.compute_device_type = kind
        except TypeError:  # this Blender build lacks the backend
            continue
        refresh = getattr(prefs, "refresh_devices", None) or prefs.get_devices
        refresh()
        found = [d for d in prefs.devices if d.type == kind]
        if found:
            for d in prefs.devices:
                d.use = d.type == kind
            scene.cycles.device = "GPU"
            return kind
    if prefs is not None:
        prefs.compute_device_type = previous  # leave the user's preferences as they were
    if device != "auto":
        raise SynthgenError(
            f"render.blender.device: {device} was asked for but Blender finds no "
            f"{device.upper()} device; use auto or cpu"
        )
    scene.cycles.device = "CPU"
    return "CPU"


def _configure(scene: bpy.types.Scene, settings: BlenderSettings) -> str:
    """Set the render engine, sampling, denoising and colour management of `scene`."""
    render = scene.render
    render.engine = ENGINES[settings.engine]
    render.film_transparent = True
    render.use_compositing = False
    render.use_sequencer = False
    render.use_persistent_data = False  # True keeps growing memory as scenes change
    render.image_settings.file_format = "PNG"
    render.image_settings.color_mode = "RGBA"
    render.image_settings.color_depth = "8"
    scene.view_settings.view_transform = "Standard"  # plain sRGB, as pyrender's output
    scene.view_settings.look = "None"
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0
    if settings.engine == "eevee":
        scene.eevee.taa_render_samples = int(settings.samples)
        return "EEVEE"
    cycles = scene.cycles
    cycles.samples = int(settings.samples)
    cycles.use_adaptive_sampling = True
    cycles.use_denoising = bool(settings.denoise)
    if settings.denoise:
        cycles.denoiser = "OPENIMAGEDENOISE"
        cycles.denoising_input_passes = "RGB_ALBEDO_NORMAL"
        # "FAST" feeds the albedo and normal passes to OIDN as they are; "ACCURATE" (the
        # default) denoises each of them first: three OIDN runs, ~1 s more per 256² image
        # on two CPU cores, for no visible gain on noise-free auxiliary passes.
        cycles.denoising_prefilter = "FAST"
    bounces = int(settings.max_bounces)
    cycles.max_bounces = bounces
    cycles.diffuse_bounces = cycles.glossy_bounces = min(bounces, 2)
    cycles.transmission_bounces = cycles.volume_bounces = 0
    cycles.transparent_max_bounces = 2
    cycles.caustics_reflective = cycles.caustics_refractive = False
    cycles.use_light_tree = False  # a handful of lights: the tree costs ~7 % and buys nothing
    return _select_device(scene, settings.device)


class BlenderRenderer:
    """Renders labelled views with Blender; implements `synthgen.render.result.Renderer`.

    Not thread-safe (neither is bpy). Part BVHs are cached by mesh object (treat meshes as
    immutable), the least recently used beyond `cache_size` dropped.

    Args:
        width, height: unused defaults (each render takes its size from the scene camera);
            accepted for the `make_renderer` interface.
        settings: engine, samples, denoising, device and environment.
        cache_size: number of part BVHs kept.
        quiet: silence Blender's per-frame console lines while rendering.

    Attributes:
        device: the Cycles device in use ("CPU", "CUDA", "OPTIX") or "EEVEE".
        last_timings: seconds spent per stage of the latest `render` call.
        last_alpha: (H, W) uint8 coverage of the latest render (Cycles' alpha: 255 where the
            parts cover the whole pixel, 0 where only background shows).
    """

    def __init__(self, width: int = 256, height: int = 256,
                 settings: BlenderSettings | None = None, cache_size: int = 4,
                 quiet: bool = True):
        self.settings = settings or BlenderSettings()
        self.cache_size = max(2, int(cache_size))
        self.quiet = bool(quiet)
        self._trees: OrderedDict[int, tuple[object, object]] = OrderedDict()
        self._last_labels: tuple | None = None
        self._images: dict = {}
        self._tmp = Path(tempfile.mkdtemp(prefix="synthgen_blender_"))
        self.last_timings: dict[str, float] = {}
        self.last_alpha: np.ndarray | None = None
        self._scene = bpy.data.scenes.new(f"{PREFIX}_render")
        self._world = bpy.data.worlds.new(f"{PREFIX}_world")
        self._scene.world = self._world
        self._builder = SceneBuilder(self._scene)
        try:
            self.device = _configure(self._scene, self.settings)
        except BaseException:
            self.close()
            raise
        log.debug("Blender renderer ready (%s, device %s)", self.settings.engine, self.device)

    # -- labels ----------------------------------------------------------------------------

    def _tree(self, part: Part):
        key = id(part.mesh)
        entry = self._trees.get(key)
        if entry is not None and entry[0] is part.mesh:
            self._trees.move_to_end(key)
            return entry[1]
        tree = build_tree(part)
        self._trees[key] = (part.mesh, tree)
        while len(self._trees) > self.cache_size:
            self._trees.popitem(last=False)
        return tree

    def _labels(self, scene: Scene, parts: Sequence[Part],
                poses: Sequence[np.ndarray]) -> RayLabels:
        """Combined labels of `parts`; the last call's result is reused for the same
        scene object and meshes (as the pyrender backend does)."""
        key = (id(scene), *(id(p.mesh) for p in parts))
        if self._last_labels is not None and self._last_labels[0] == key:
            return self._last_labels[1]
        labels = ray_labels(scene.camera, parts, poses, [self._tree(p) for p in parts])
        # Keep the scene and meshes alive with the key so their ids cannot be reused.
        self._last_labels = (key, labels, scene, [p.mesh for p in parts])
        return labels

    def face_visibility(self, scene: Scene, part: Part) -> np.ndarray:
        """(F,) int64: how many pixel centres see each face of `part` (posed by
        scene.object_pose)."""
        return self.placed_visibility(scene, [part], [scene.object_pose])[0]

    def placed_visibility(self, scene: Scene, parts: Sequence[Part],
                          poses: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per part, (F_k,) int64 pixel counts of its faces with all `parts` in view."""
        self._check_open()
        labels = self._labels(scene, parts, poses)
        starts = offsets(parts)
        ids = labels.face_id[labels.face_id > 0].astype(np.int64) - 1
        counts = np.bincount(ids, minlength=int(starts[-1]))
        return [counts[starts[k]: starts[k + 1]] for k in range(len(parts))]

    # -- drawing ---------------------------------------------------------------------------

    def _build(self, scene: Scene, placed: Sequence[Placed]) -> None:
        """Fill the Blender scene with the objects, camera, lights and world of `scene`."""
        double_sided = not all(obj.part.watertight for obj in placed)
        material = self._builder.add_material(scene.material, double_sided)
        for k, obj in enumerate(placed):
            self._builder.add_mesh(obj.part, obj.pose, material, f"part{k}", k + 1)
        self._builder.add_camera(scene.camera)
        for i, light in enumerate(scene.lights):
            self._builder.add_light(light, i)
        settings = self.settings
        setup_world(self._world, settings.environment, settings.environment_strength,
                    scene.ambient, self._images)

    def _draw(self) -> np.ndarray:
        """Render the Blender scene; (H, W, 4) uint8 premultiplied sRGB RGBA."""
        path = self._tmp / "render.png"
        self._scene.render.filepath = str(path)
        try:
            with _quiet_stdout(self.quiet):
                bpy.ops.render.render(write_still=True, scene=self._scene.name)
        except RuntimeError as error:
            raise SynthgenError(
                f"Blender could not render with engine {self.settings.engine} ({error}); "
                "Eevee needs a GPU context: use engine cycles on a headless machine"
            ) from None
        with Image.open(path) as image:
            rgba = np.asarray(image.convert("RGBA"), dtype=np.uint16)
        alpha = rgba[..., 3:4]
        premultiplied = (rgba[..., :3] * alpha + 127) // 255
        return np.concatenate([premultiplied, alpha], axis=2).astype(np.uint8)

    # -- the protocol ----------------------------------------------------------------------

    def render(self, scene: Scene, part: Part, nominal: Part | None = None) -> RenderResult:
        """Render `part` in `scene`, with defect masks measured against `nominal`.

        Args:
            scene: the scene; its camera sets the image size.
            part: the (possibly defective) part, posed by scene.object_pose.
            nominal: the defect-free twin; required when `part.records` is not empty.

        Returns:
            The RenderResult (see its docstring for shapes, units and the mask rule).
        """
        return render_single(self, scene, part, nominal)

    def render_placed(self, scene: Scene, placed: Sequence[Placed]) -> RenderResult:
        """Render several objects in one view (each with its own pose and nominal twin).

        Returns:
            A RenderResult with `instance_masks` and `defect_owner` (see the protocol).
        """
        self._check_open()
        camera = scene.camera
        t0 = time.perf_counter()
        try:
            self._build(scene, placed)
            t1 = time.perf_counter()
            rgba = self._draw()
            self.last_alpha = rgba[..., 3].copy()
        finally:
            self._builder.clear()
        t2 = time.perf_counter()
        poses = [obj.pose for obj in placed]
        nominal = None
        if any(obj.part.records for obj in placed):
            # First: a defect placed with `face_visibility` left these labels in the cache.
            nominal = self._labels(scene, [obj.nominal for obj in placed], poses)
        defective = self._labels(scene, [obj.part for obj in placed], poses)
        t3 = time.perf_counter()
        object_mask, instances, masks, owners = placed_masks(
            (defective.face_id, defective.depth),
            None if nominal is None else (nominal.face_id, nominal.depth),
            placed, camera,
        )
        rgb = composite(rgba, background_image(scene.background, camera.width, camera.height))
        t4 = time.perf_counter()
        self.last_timings = {"prepare": t1 - t0, "rgb": t2 - t1, "labels": t3 - t2,
                             "masks": t4 - t3, "total": t4 - t0}
        return RenderResult(
            rgb=rgb, depth=np.ascontiguousarray(defective.depth), object_mask=object_mask,
            defect_masks=masks, defect_visible=masks.any(axis=(1, 2)), camera=camera,
            instance_masks=instances, defect_owner=owners,
        )

    def _check_open(self) -> None:
        if self._scene is None:
            raise RuntimeError("this renderer has been closed")

    def close(self) -> None:
        """Remove the renderer's scene, world, images and temporary folder. Safe twice."""
        if self._scene is None:
            return
        self._builder.clear()
        for image in self._images.values():
            bpy.data.images.remove(image)
        self._images.clear()
        bpy.data.scenes.remove(self._scene)
        bpy.data.worlds.remove(self._world)
        self._scene = self._world = None
        self._trees.clear()
        self._last_labels = None
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> BlenderRenderer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

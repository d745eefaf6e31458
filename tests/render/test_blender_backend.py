"""The Blender backend: camera and masks agree with pyrender's, nothing leaks, bad settings
fail clearly.

Needs the bpy module (marker `blender`); the agreement test also needs an OpenGL context
(marker `gl`, the session `renderer` fixture of conftest.py skips without one).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from render_fixtures import bulge, make_scene, sphere_part, tunnel

from synthgen.errors import ConfigError, SynthgenError
from synthgen.products import build_product
from synthgen.scene import SceneSpec
from synthgen.scene.sampling import sample_scene

pytestmark = pytest.mark.blender

bpy = pytest.importorskip("bpy", reason="the Blender backend needs the bpy module")


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.fixture(scope="module")
def blender():
    from synthgen.render import make_renderer

    # 16 samples: enough for the alpha (coverage) at edge pixels to settle.
    renderer = make_renderer("blender", samples=16, denoise=False, device="cpu")
    yield renderer
    renderer.close()


def _scenes():
    """(scene, part, nominal) triples: a bulged and a holed sphere seen off-axis, and the
    capped bottle under two sampled scenes."""
    nominal = sphere_part(3)
    tilt = np.eye(4)
    angle = math.radians(25.0)
    tilt[:3, :3] = [[1, 0, 0], [0, math.cos(angle), -math.sin(angle)],
                    [0, math.sin(angle), math.cos(angle)]]
    tilt[:3, 3] = (4.0, -3.0, 0.0)
    out = [
        (make_scene(80, object_pose=tilt), bulge(nominal, (0.2, -0.5, 1.0), 9.0, 3.0), nominal),
        (make_scene(64), tunnel(nominal, 6.0), nominal),
    ]
    bottle = build_product("capped_bottle")
    for seed in (1, 2):
        rng = np.random.default_rng(seed)
        scene = sample_scene(SceneSpec(), bottle.bounding_radius, 96, 72, rng)
        out.append((scene, bottle, bottle))
    return out


@pytest.mark.gl
@pytest.mark.slow
def test_masks_agree_with_pyrender(blender, renderer):
    """Same scenes, both backends: object masks (the exact labels and Cycles' coverage)
    and defect masks agree; the depth images agree where both see the part."""
    for scene, part, nominal in _scenes():
        ours = blender.render(scene, part, nominal)
        theirs = renderer.render(scene, part, nominal)
        assert ours.rgb.shape == theirs.rgb.shape == (scene.camera.height,
                                                      scene.camera.width, 3)
        assert theirs.object_mask.sum() > 200
        assert _iou(ours.object_mask, theirs.object_mask) >= 0.98
        # Cycles' own coverage (its alpha) checks Blender's camera, not only the labels; it
        # is compared with the pixels that see the defective part (the object mask also
        # holds the material a hole removed).
        coverage = blender.last_alpha >= 128
        assert _iou(coverage, theirs.depth > 0) >= 0.98
        both = ours.object_mask & theirs.object_mask
        assert np.median(np.abs(ours.depth[both] - theirs.depth[both])) < 0.05
        assert len(ours.defect_masks) == len(theirs.defect_masks) == len(part.records)
        for mine, ref in zip(ours.defect_masks, theirs.defect_masks, strict=True):
            assert ref.sum() > 20
            assert _iou(mine, ref) >= 0.95


@pytest.mark.gl
def test_lights_match_pyrender_photometry(renderer):
    """A grey matte sphere lit by one sun or one point light: the pixels facing the light
    have the brightness pyrender gives them (within the two renderers' tone curves)."""
    from dataclasses import replace

    from synthgen.render import make_renderer
    from synthgen.scene.model import Light, Material

    part = sphere_part(3)
    material = Material(base_color=(0.5, 0.5, 0.5), metallic=0.0, roughness=1.0)
    lights = (Light("directional", (0.0, 0.0, -1.0), 2.0),
              Light("point", (0.0, 0.0, -1.0), 2.0 * 80.0**2, position=(0.0, 0.0, 100.0)))
    photo = make_renderer("blender", samples=16, denoise=True, device="cpu")
    try:
        for light in lights:
            scene = replace(make_scene(48), lights=(light,), material=material, ambient=0.0)
            centre = (slice(21, 27),) * 2
            ours = photo.render(scene, part).rgb[centre].mean()
            theirs = renderer.render(scene, part).rgb[centre].mean()
            assert abs(ours - theirs) < 0.1 * theirs, (light.kind, ours, theirs)
    finally:
        photo.close()


def test_no_growth_over_samples(blender):
    """Data-block counts and the scene's objects are the same after every render, and
    closing a renderer removes everything it made."""
    from synthgen.render import make_renderer

    part = sphere_part(2)
    collections = ("objects", "meshes", "materials", "lights", "cameras", "images",
                   "worlds", "scenes", "node_groups")

    def counts():
        return {name: len(getattr(bpy.data, name)) for name in collections}

    before = counts()
    counts_after = []
    for k in range(6):
        pose = np.eye(4)
        pose[:3, 3] = (k - 3.0, 0.0, 0.0)
        blender.render(make_scene(24, object_pose=pose), part)
        counts_after.append(counts())
    assert all(c == before for c in counts_after)
    extra = make_renderer("blender", samples=1, denoise=False, device="cpu")
    extra.render(make_scene(16), part)
    assert counts() != before  # its scene and world exist while it is open
    extra.close()
    extra.close()
    assert counts() == before


def test_render_result_contract(blender):
    scene = make_scene(40)
    nominal = sphere_part(2)
    part = bulge(nominal, (0.0, 0.0, 1.0), 8.0, 2.0)
    result = blender.render(scene, part, nominal)
    assert result.rgb.dtype == np.uint8 and result.rgb.shape == (40, 40, 3)
    assert result.depth.dtype == np.float32
    assert result.defect_masks.shape == (1, 40, 40) and result.defect_visible.tolist() == [True]
    assert (result.defect_masks[0] <= result.object_mask).all()
    # Far from the part, the image is the background exactly; the alpha covers the part.
    from synthgen.render.compositing import background_image

    far = blender.last_alpha == 0
    assert far.sum() > 800
    assert (result.rgb[far] == background_image(scene.background, 40, 40)[far]).all()
    assert (blender.last_alpha[result.object_mask] > 0).all()
    counts = blender.face_visibility(scene, part)
    assert counts.sum() == result.object_mask.sum()
    with pytest.raises(ValueError, match="nominal"):
        blender.render(scene, part)


def test_bad_settings_are_clear():
    from synthgen.render import make_renderer
    from synthgen.render.blender_backend import BlenderSettings

    with pytest.raises(ConfigError, match="engine"):
        BlenderSettings(engine="luxcore")
    with pytest.raises(ConfigError, match="samples"):
        BlenderSettings(samples=0)
    with pytest.raises(ConfigError, match="environment"):
        BlenderSettings(environment="/nowhere/sky.hdr")
    with pytest.raises(ConfigError, match="unknown option"):
        make_renderer("blender", spp=4)
    prefs = bpy.context.preferences.addons["cycles"].preferences
    try:
        prefs.compute_device_type = "CUDA"
        prefs.get_devices()
        has_cuda = any(d.type == "CUDA" for d in prefs.devices)
    except TypeError:
        has_cuda = False
    prefs.compute_device_type = "NONE"
    if not has_cuda:
        scenes = len(bpy.data.scenes)
        with pytest.raises(SynthgenError, match="no CUDA device"):
            make_renderer("blender", device="cuda", samples=1)
        assert len(bpy.data.scenes) == scenes  # the failed renderer removed its scene
        # "auto" falls back to the CPU and leaves the user's Cycles preferences alone
        fallback = make_renderer("blender", device="auto", samples=1)
        assert fallback.device in ("CPU", "OPTIX")
        if fallback.device == "CPU":
            assert prefs.compute_device_type == "NONE"
        fallback.close()


def test_environment_option(tmp_path):
    """An environment image lights the part (a warm sky makes it warmer than the uniform
    ambient world) and is never composited behind it; "none" is darker than "ambient"."""
    from PIL import Image

    from synthgen.render import make_renderer

    sky = np.zeros((32, 64, 3), dtype=np.uint8)
    sky[:16] = (255, 170, 90)
    Image.fromarray(sky).save(tmp_path / "sky.png")
    scene, part = make_scene(32), sphere_part(2)
    colours = {}
    for environment in ("ambient", "none", str(tmp_path / "sky.png")):
        photo = make_renderer("blender", samples=4, denoise=False, device="cpu",
                              environment=environment)
        try:
            result = photo.render(scene, part)
        finally:
            photo.close()
        colours[environment] = result.rgb[result.object_mask].mean(axis=0)
        assert (result.rgb[0, 0] == (26, 51, 76)).all()  # the scene's background
    warm = colours[str(tmp_path / "sky.png")]
    assert warm[0] - warm[2] > colours["ambient"][0] - colours["ambient"][2] + 10
    assert colours["none"].mean() < colours["ambient"].mean() - 5


@pytest.mark.gl
def test_several_objects_agree_with_pyrender(blender, renderer):
    """render_placed: two spheres, one bulged and partly hiding the other; instance masks,
    defect masks and owners agree with pyrender's."""
    from synthgen.render.placement import Placed

    nominal = sphere_part(3)
    defective = bulge(nominal, (0.3, 0.2, 1.0), 8.0, 3.0)
    near, far = np.eye(4), np.eye(4)
    near[:3, 3] = (-12.0, 0.0, 10.0)
    far[:3, 3] = (14.0, 4.0, -15.0)
    placed = [Placed(defective, nominal, near), Placed(nominal, nominal, far)]
    scene = make_scene(72)
    ours = blender.render_placed(scene, placed)
    theirs = renderer.render_placed(scene, placed)
    assert ours.instance_masks.shape == theirs.instance_masks.shape == (2, 72, 72)
    for mine, ref in zip(ours.instance_masks, theirs.instance_masks, strict=True):
        assert ref.sum() > 300 and _iou(mine, ref) >= 0.98
    assert ours.defect_owner.tolist() == theirs.defect_owner.tolist() == [0]
    assert _iou(ours.defect_masks[0], theirs.defect_masks[0]) >= 0.95

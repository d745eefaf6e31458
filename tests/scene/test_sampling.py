"""Scene sampling: determinism, framing, valid rotations and lights, recipe errors."""

import json

import numpy as np
import pytest
from PIL import Image

from synthgen.config import validate
from synthgen.errors import ConfigError
from synthgen.rng import sample_rng
from synthgen.scene import SceneSpec, sample_scene
from synthgen.scene.color import linear_to_srgb, srgb_to_linear, temperature_to_rgb


def _scene(spec=None, index=0, radius=50.0, size=(320, 240)):
    return sample_scene(spec or SceneSpec(), radius, size[0], size[1], sample_rng(7, index))


def test_same_seed_gives_same_scene_and_different_index_differs():
    a, b, c = _scene(index=3), _scene(index=3), _scene(index=4)
    assert json.dumps(a.as_dict()) == json.dumps(b.as_dict())
    assert json.dumps(a.as_dict()) != json.dumps(c.as_dict())


@pytest.mark.parametrize("mode", ["upright", "random_plane", "uniform"])
def test_object_pose_is_a_proper_rotation(mode):
    spec = validate(SceneSpec, {"pose": {"mode": mode}})
    for index in range(5):
        pose = _scene(spec, index).object_pose
        rotation = pose[:3, :3]
        np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(rotation) == pytest.approx(1.0)
        np.testing.assert_allclose(pose[:3, 3], 0.0)


def test_random_plane_with_fixed_normal_rotates_about_it():
    spec = validate(SceneSpec, {"pose": {"mode": "random_plane", "plane_normal": [1, 1, 0]}})
    normal = np.array([1.0, 1.0, 0.0]) / np.sqrt(2)
    for index in range(4):
        pose = _scene(spec, index).object_pose
        np.testing.assert_allclose(pose[:3, :3] @ normal, normal, atol=1e-12)


def test_upright_pose_without_tilt_keeps_z_up():
    spec = validate(SceneSpec, {"pose": {"mode": "upright", "tilt_deg": 0}})
    pose = _scene(spec).object_pose
    np.testing.assert_allclose(pose[:3, 2], [0, 0, 1], atol=1e-12)


@pytest.mark.parametrize("size", [(320, 240), (240, 320), (256, 256)])
def test_camera_frames_the_bounding_sphere(size):
    """With distance factor >= 1 every point of the bounding sphere projects into the image."""
    spec = validate(SceneSpec, {"camera": {"distance": [1.0, 1.05], "aim_jitter": 0}})
    radius = 40.0
    directions = np.random.default_rng(0).normal(size=(2000, 3))
    points = radius * directions / np.linalg.norm(directions, axis=1, keepdims=True)
    for index in range(5):
        camera = _scene(spec, index, radius, size).camera
        uv, depth = camera.project(points)
        assert (depth > camera.znear).all() and (depth < camera.zfar).all()
        assert (uv[:, 0] >= 0).all() and (uv[:, 0] <= size[0]).all()
        assert (uv[:, 1] >= 0).all() and (uv[:, 1] <= size[1]).all()
        # ...and nearly fills the narrower side.
        spans = uv.max(axis=0) - uv.min(axis=0)
        assert max(spans[0] / size[0], spans[1] / size[1]) > 0.85


def test_camera_looks_at_the_aim_point():
    scene = _scene(validate(SceneSpec, {"camera": {"aim_jitter": 0}}))
    uv, _ = scene.camera.project(np.zeros((1, 3)))
    np.testing.assert_allclose(uv[0], [160, 120], atol=1e-9)


def test_camera_target_is_aimed_at_and_turns_with_the_part():
    """camera.target (part frame) projects to the image centre whatever the pose."""
    spec = validate(SceneSpec, {"pose": {"yaw_deg": [0, 360], "tilt_deg": [0, 20]},
                                "camera": {"aim_jitter": 0, "target": [30, 0, 10],
                                           "distance": 0.1}})
    for index in range(4):
        scene = _scene(spec, index)
        point = scene.object_pose[:3, :3] @ np.array([30.0, 0.0, 10.0])
        uv, depth = scene.camera.project(point[None])
        np.testing.assert_allclose(uv[0], [160, 120], atol=1e-9)
        assert scene.camera.znear < depth[0] < scene.camera.zfar
        # the part's far side still lies before the far plane
        far = scene.camera.project(-point[None] / np.linalg.norm(point) * 50.0)[1][0]
        assert far < scene.camera.zfar


def test_camera_target_unset_keeps_the_recipe_dump_and_scene():
    """Recipes without camera.target dump and sample exactly as before the option."""
    plain = validate(SceneSpec, {})
    assert "target" not in plain.camera.model_dump()
    assert validate(SceneSpec, {"camera": {"target": [1, 2, 3]}}).camera.model_dump()[
        "target"] == (1.0, 2.0, 3.0)
    origin = validate(SceneSpec, {"camera": {"target": [0, 0, 0]}})
    a, b = _scene(plain, 2), _scene(origin, 2)
    assert json.dumps(a.as_dict()) == json.dumps(b.as_dict())


def test_three_point_rig_and_constant_preset():
    rig = _scene().lights
    assert [light.name for light in rig] == ["key", "fill", "rim"]
    for light in rig:
        assert np.linalg.norm(light.direction) == pytest.approx(1.0)
        assert light.intensity > 0
    constant = validate(
        SceneSpec,
        {"lighting": {"preset": "constant", "key_intensity": 3, "key_azimuth_deg": 30,
                      "key_elevation_deg": 30, "ambient": 0.2, "color_temperature_k": 6500},
         "camera": {"azimuth_deg": 0, "elevation_deg": 20, "yfov_deg": 35, "distance": 1.2,
                    "aim_jitter": 0}},
    )
    a, b = _scene(constant, 0).lights, _scene(constant, 9).lights
    assert len(a) == 1 and a == b


def test_colour_helpers():
    x = np.linspace(0, 1, 11)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-12)
    warm, cold = temperature_to_rgb(3000), temperature_to_rgb(10000)
    assert warm[0] > warm[2] and cold[2] > cold[0]


def test_palette_material_and_image_background(tmp_path):
    Image.new("RGB", (8, 8), (10, 20, 30)).save(tmp_path / "a.png")
    spec = validate(SceneSpec, {
        "material": {"palette": [[1.0, 0.0, 0.0]]},
        "background": {"kind": "image", "image_dir": str(tmp_path)},
    })
    scene = _scene(spec)
    assert scene.material.base_color == (1.0, 0.0, 0.0)
    assert scene.background.image_path == str(tmp_path / "a.png")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"camera": {"fov": 30}}, "camera.fov: unknown key"),
        ({"camera": {"yfov_deg": [10, 170]}}, "camera.yfov_deg"),
        ({"material": {"roughness": [0.5, 1.5]}}, "material.roughness"),
        ({"lighting": {"preset": "studio"}}, "lighting.preset"),
        ({"pose": {"plane_normal": [0, 0, 0]}}, "pose.plane_normal"),
        ({"background": {"kind": "image"}}, "image_dir"),
        ({"camera": {"target": [0, 0]}}, "camera.target"),
        ({"camera": {"target": [0, 0, float("nan")]}}, "camera.target"),
        ({"camera": {"distance": 0.01}}, "camera.distance"),
    ],
)
def test_bad_recipe_values_name_the_field(data, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        validate(SceneSpec, data)


def test_missing_background_folder_is_a_clear_error(tmp_path):
    spec = validate(SceneSpec, {"background": {"kind": "image", "image_dir": str(tmp_path / "x")}})
    with pytest.raises(ConfigError, match="is not a folder"):
        _scene(spec)

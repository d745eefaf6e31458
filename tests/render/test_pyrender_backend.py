"""The pyrender backend on an icosphere: geometry-exact labels, masks, depth and compositing.

Needs an OpenGL context (EGL); the `renderer` fixture skips when none can be made.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import trimesh
from PIL import Image
from render_fixtures import DISTANCE, RADIUS, bulge, make_scene, sphere_part, tunnel

from synthgen.scene.model import Background

pytestmark = pytest.mark.gl


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _ray_cast(mesh: trimesh.Trimesh, scene) -> tuple[np.ndarray, np.ndarray]:
    """Reference labels by ray casting every pixel centre: (H, W) face index (-1 = miss)
    and (H, W) depth along -Z in mm (0 = miss). Assumes an identity object pose."""
    camera = scene.camera
    rays = camera.pixel_rays().reshape(-1, 3)
    origins = np.broadcast_to(camera.pose[:3, 3], rays.shape)
    dirs = rays @ camera.pose[:3, :3].T
    hits, index_ray, index_tri = mesh.ray.intersects_location(
        origins, dirs, multiple_hits=False
    )
    face = np.full(len(rays), -1, dtype=np.int64)
    depth = np.zeros(len(rays))
    face[index_ray] = index_tri
    depth[index_ray] = camera.pose[2, 3] - hits[:, 2]  # camera looks down world -Z
    shape = (camera.height, camera.width)
    return face.reshape(shape), depth.reshape(shape)


def _interior(mask: np.ndarray) -> np.ndarray:
    """Pixels whose 3x3 neighbourhood lies entirely in `mask`."""
    out = mask.copy()
    out[1:-1, 1:-1] &= (
        mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
        & mask[:-2, :-2] & mask[:-2, 2:] & mask[2:, :-2] & mask[2:, 2:]
    )
    out[[0, -1], :] = False
    out[:, [0, -1]] = False
    return out


def test_good_part_has_no_masks_and_a_real_image(renderer):
    scene = make_scene(64)
    result = renderer.render(scene, sphere_part())
    assert result.rgb.shape == (64, 64, 3) and result.rgb.dtype == np.uint8
    assert result.defect_masks.shape == (0, 64, 64)
    assert result.defect_visible.shape == (0,)
    assert not result.defect_mask.any()
    assert result.object_mask.sum() > 200
    background = np.array([26, 51, 76])  # (0.1, 0.2, 0.3) · 255, rounded
    inside = result.rgb[result.object_mask].astype(int)
    assert np.abs(inside - background).sum(axis=1).min() > 30
    assert inside.std() > 1.0  # shaded, not flat
    assert (result.depth[~result.object_mask] == 0).all()
    assert (result.depth[result.object_mask] > 0).all()


def test_depth_matches_analytic_sphere_and_ray_cast(renderer):
    part = sphere_part()
    scene = make_scene(64)
    result = renderer.render(scene, part)
    rays = scene.camera.pixel_rays()
    r2 = (rays**2).sum(axis=2)
    disc = DISTANCE**2 - r2 * (DISTANCE**2 - RADIUS**2)
    analytic = (DISTANCE - np.sqrt(np.maximum(disc, 0.0))) / r2
    inner = _interior(result.object_mask)
    # The icosphere lies between its inscribed sphere and the true sphere, so its depth
    # exceeds the sphere's by at most gap / cos(incidence); check where cos > 0.5.
    normals = part.mesh.face_normals
    inradius = float(np.min(np.einsum("ij,ij->i", normals, part.mesh.triangles[:, 0])))
    hit = rays * analytic[..., None] - np.array([0.0, 0.0, -DISTANCE])
    cos_incidence = -(hit * rays).sum(axis=2) / (RADIUS * np.sqrt(r2))
    steep = inner & (cos_incidence > 0.5)
    err = result.depth[steep] - analytic[steep]
    assert steep.sum() > 500
    assert err.min() > -1e-3
    assert err.max() < 2.0 * (RADIUS - inradius) + 1e-3
    _, reference = _ray_cast(part.mesh, scene)
    assert np.abs(result.depth[inner] - reference[inner]).max() < 2e-3


def test_object_mask_matches_projected_disc(renderer):
    scene = make_scene(96)
    result = renderer.render(scene, sphere_part())
    f = scene.camera.focal_px
    radius_px = f * RADIUS / math.sqrt(DISTANCE**2 - RADIUS**2)
    rows, cols = np.mgrid[0:96, 0:96] + 0.5
    r = np.hypot(cols - 48.0, rows - 48.0)
    disc = r < radius_px
    assert _iou(result.object_mask, disc) > 0.97
    wrong = result.object_mask != disc
    assert (np.abs(r[wrong] - radius_px) < 1.0).all()


def test_projected_centre_is_mask_centroid(renderer):
    pose = np.eye(4)
    pose[:3, 3] = (12.0, -7.0, 5.0)
    scene = make_scene(96, object_pose=pose)
    result = renderer.render(scene, sphere_part())
    uv, _ = scene.camera.project(pose[:3, 3][None, :])
    rows, cols = np.nonzero(result.object_mask)
    centroid = np.array([cols.mean() + 0.5, rows.mean() + 0.5])
    assert np.abs(centroid - uv[0]).max() < 1.0
    assert uv[0, 0] > 48 and uv[0, 1] > 48  # +x is right, -y is down


def test_bulge_mask_matches_supersampled_reference(renderer):
    """The 96 px mask against the 384 px mask reduced by majority over 4x4 blocks.

    A pixel centre sits at the middle of its 4x4 block, so "at least half of the block's
    sub-pixels are in the mask" is the reduction that best predicts it.
    """
    nominal = sphere_part()
    part = bulge(nominal, (0.3, 0.2, 1.0), radius=8.0, height=2.0)
    low = renderer.render(make_scene(96), part, nominal)
    high = renderer.render(make_scene(384), part, nominal)
    blocks = high.defect_masks[0].reshape(96, 4, 96, 4).sum(axis=(1, 3))
    reference = blocks >= 8
    assert low.defect_visible.tolist() == [True]
    assert low.defect_masks[0].sum() > 50
    assert _iou(low.defect_masks[0], reference) >= 0.9


def test_bulge_mask_matches_ray_cast_labels(renderer):
    """Independent reference: ray-cast both meshes at pixel centres and apply the rule."""
    nominal = sphere_part()
    part = bulge(nominal, (0.3, 0.2, 1.0), radius=8.0, height=2.0)
    scene = make_scene(64)
    result = renderer.render(scene, part, nominal)
    face_def, depth_def = _ray_cast(part.mesh, scene)
    _, depth_nom = _ray_cast(nominal.mesh, scene)
    labelled = (face_def >= 0) & (part.face_defect[np.maximum(face_def, 0)] == 1)
    differ = np.abs(depth_def - depth_nom) > 1e-4 * np.maximum(depth_def, depth_nom) + 1e-3
    reference = labelled | differ
    mask = result.defect_masks[0]
    # Pixel centres exactly on a triangle edge may go either way.
    assert (mask != reference).sum() <= max(2, int(0.02 * reference.sum()))
    assert _iou(mask, reference) > 0.95


def test_defect_pixels_lie_inside_object_mask(renderer):
    nominal = sphere_part()
    for part in (bulge(nominal, (0.0, 0.6, 1.0), 7.0, 2.5), tunnel(nominal, 5.0)):
        result = renderer.render(make_scene(64), part, nominal)
        assert result.defect_mask.any()
        assert not (result.defect_mask & ~result.object_mask).any()


def test_defect_on_far_side_gives_empty_mask(renderer):
    nominal = sphere_part()
    part = bulge(nominal, (0.1, 0.0, -1.0), radius=6.0, height=1.5)
    result = renderer.render(make_scene(64), part, nominal)
    assert result.defect_masks.shape == (1, 64, 64)
    assert not result.defect_masks.any()
    assert result.defect_visible.tolist() == [False]


def test_hole_where_material_is_missing(renderer):
    nominal = sphere_part()
    part = tunnel(nominal, radius=5.0)
    scene = make_scene(64)
    result = renderer.render(scene, part, nominal)
    good = renderer.render(scene, nominal)
    see_through = good.object_mask & (result.depth == 0)
    assert see_through[32, 32] and see_through.sum() > 20
    # Pixels that lost their surface are in the defect mask and in the object mask.
    assert result.defect_masks[0][see_through].all()
    assert result.object_mask[see_through].all()
    assert result.defect_visible.tolist() == [True]
    # The background shows through the hole in the RGB image.
    assert (result.rgb[32, 32] == np.array([26, 51, 76])).all()


def test_render_is_deterministic(renderer):
    nominal = sphere_part()
    part = bulge(nominal, (0.3, 0.2, 1.0), radius=8.0, height=2.0)
    scene = make_scene(64)
    first = renderer.render(scene, part, nominal)
    second = renderer.render(scene, part, nominal)
    for name in ("rgb", "depth", "object_mask", "defect_masks", "defect_visible"):
        assert np.array_equal(getattr(first, name), getattr(second, name)), name


@pytest.mark.parametrize("kind", ["solid", "gradient", "image"])
def test_background_shows_in_the_corners(renderer, tmp_path, kind):
    path = tmp_path / "bg.png"
    image = np.zeros((40, 80, 3), dtype=np.uint8)
    image[:, :40] = (200, 10, 10)
    image[:, 40:] = (10, 10, 200)
    Image.fromarray(image).save(path)
    background = Background(
        kind=kind, color_top=(1.0, 0.5, 0.0), color_bottom=(0.0, 0.25, 1.0), image_path=str(path)
    )
    result = renderer.render(make_scene(64, background=background), sphere_part())
    corners = result.rgb[[0, 0, -1, -1], [0, -1, 0, -1]]
    expected = {
        "solid": [(255, 128, 0)] * 4,
        "gradient": [(255, 128, 0)] * 2 + [(0, 64, 255)] * 2,
        "image": [(200, 10, 10), (10, 10, 200)] * 2,
    }[kind]
    assert corners.tolist() == [list(c) for c in expected]


def test_size_changes_and_cache_stays_bounded(renderer):
    nominal = sphere_part(2)
    for i, size in enumerate((48, 80, 48, 64, 72, 56, 64)):
        part = bulge(nominal, (0.0, 0.0, 1.0), 6.0 + i, 1.0)
        result = renderer.render(make_scene(size), part, nominal)
        assert result.rgb.shape == (size, size, 3)
        assert result.defect_masks.shape == (1, size, size)
    assert len(renderer._cache) <= renderer.cache_size


def test_records_need_the_nominal_part(renderer):
    part = bulge(sphere_part(2), (0.0, 0.0, 1.0), 6.0, 1.0)
    with pytest.raises(ValueError, match="nominal"):
        renderer.render(make_scene(32), part)


def test_split_sharp_edges_keeps_creases():
    try:
        from synthgen.render.pyrender_backend import split_sharp_edges
    except ImportError as exc:
        pytest.skip(f"the pyrender backend cannot be imported: {exc}")

    positions, normals, faces, _ = split_sharp_edges(trimesh.creation.box((10, 20, 30)))
    assert positions.shape == (24, 3)  # 6 sides x 4 corners
    assert faces.shape == (12, 3)
    face_normals = trimesh.creation.box((10, 20, 30)).face_normals
    assert np.allclose(normals[faces], face_normals[:, None, :], atol=1e-6)
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=5.0)
    positions, normals, faces, _ = split_sharp_edges(sphere)
    assert len(positions) == len(sphere.vertices)  # all smooth
    radial = positions / np.linalg.norm(positions, axis=1, keepdims=True)
    assert np.abs(normals - radial).max() < 0.02
    assert np.array_equal(positions[faces], sphere.triangles.astype(np.float32))


def test_split_sharp_edges_matches_the_corner_graph_on_a_real_part():
    """Splitting only crease vertices gives the same render vertices as running the
    connected-components search over every face corner."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    try:
        from synthgen.render.pyrender_backend import _smooth_corner_pairs, split_sharp_edges
    except ImportError as exc:
        pytest.skip(f"the pyrender backend cannot be imported: {exc}")
    from synthgen.products import build_product

    mesh = build_product("hex_nut").mesh
    positions, _, faces, unit = split_sharp_edges(mesh)
    rows, cols, _ = _smooth_corner_pairs(mesh.faces, unit, np.cos(np.radians(30.0)))
    n = 3 * len(mesh.faces)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), (n, n))
    count, labels = connected_components(graph, directed=False)
    assert len(positions) == count
    # Same partition of the corners: a render vertex is one graph component and back.
    pairs = np.unique(np.stack([faces.reshape(-1), labels], axis=1), axis=0)
    assert len(pairs) == count
    assert np.array_equal(positions[faces], mesh.triangles.astype(np.float32))


def test_closing_one_renderer_leaves_another_working(renderer):
    from synthgen.render.pyrender_backend import PyrenderRenderer

    part = sphere_part(2)
    scene = make_scene(32)
    before = renderer.render(scene, part)
    other = PyrenderRenderer(32, 32)
    other.render(scene, part)
    other.close()
    after = renderer.render(scene, part)  # the session renderer still works
    np.testing.assert_array_equal(before.rgb, after.rgb)

"""Defect masks on the real products with the real defects (pyrender backend).

The unit tests beside this file check the mask rule on hand-made parts; these check that
products, defects and renderer together give the labels the issue promises.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from synthgen.defects import DEFECTS, make_defect
from synthgen.part import Part
from synthgen.pipeline import make_sample
from synthgen.products import PRODUCTS, build_product, product_defect
from synthgen.scene import Background, Camera, Light, Material, Scene, SceneSpec
from synthgen.scene.sampling import look_at

pytestmark = pytest.mark.gl

SHIPPED_CAD = Path(__file__).resolve().parents[2] / "meshes" / "bracket.stl"


def _scene(eye: np.ndarray, target: np.ndarray, size: int, yfov_deg: float = 20.0) -> Scene:
    """A fixed scene: the part at the origin unrotated, the camera at `eye` (mm)."""
    distance = float(np.linalg.norm(eye - target))
    camera = Camera(look_at(eye, target), np.radians(yfov_deg), size, size,
                    znear=distance * 0.2, zfar=distance * 3.0)
    light = Light("directional", tuple(-(eye - target) / distance), 3.0, name="key")
    return Scene(np.eye(4), camera, (light,), Material((0.5, 0.5, 0.55), 0.0, 0.5),
                 Background("solid", (0.1, 0.1, 0.1)), ambient=0.3)


def _block_majority(mask: np.ndarray, factor: int) -> np.ndarray:
    h, w = mask.shape
    blocks = mask.reshape(h // factor, factor, w // factor, factor)
    return blocks.mean(axis=(1, 3)) >= 0.5


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.fixture(scope="module")
def cap() -> Part:
    return build_product("bottle_cap")


@pytest.fixture(scope="module")
def bulged_cap(cap):
    bulge = make_defect("bulge", radius=3.0, height=0.5, regions=["cap_top"])
    return bulge.apply(cap, bulge.sample(cap, np.random.default_rng(4)))


def _facing(part: Part, distance: float = 60.0) -> tuple[np.ndarray, np.ndarray]:
    """Eye and target of a camera looking straight at the part's first defect."""
    record = part.records[0]
    location, normal = np.array(record.location), np.array(record.normal)
    return location + distance * normal, location


def test_bulge_mask_matches_a_4x_reference(renderer, cap, bulged_cap):
    eye, target = _facing(bulged_cap)
    low = renderer.render(_scene(eye, target, 96), bulged_cap, cap)
    high = renderer.render(_scene(eye, target, 384), bulged_cap, cap)
    assert bulged_cap.records[0].params["radius"] == 3.0
    assert low.defect_visible[0] and low.defect_masks[0].sum() > 50
    reference = _block_majority(high.defect_masks[0], 4)
    assert _iou(low.defect_masks[0], reference) >= 0.9
    # The mask is the 3 mm disc seen face on: its area matches π r² in pixels.
    pixel_mm = 2 * 60.0 * np.tan(np.radians(10.0)) / 384
    expected = np.pi * 3.0**2 / pixel_mm**2
    assert high.defect_masks[0].sum() == pytest.approx(expected, rel=0.1)


def test_good_part_gives_no_defect_mask(renderer, cap):
    result = renderer.render(_scene(np.array([60.0, 20.0, 30.0]), np.zeros(3), 64), cap, cap)
    assert result.defect_masks.shape == (0, 64, 64)
    assert not result.defect_visible.any()
    assert result.object_mask.sum() > 500


def test_hidden_defect_gives_an_empty_mask(renderer, cap, bulged_cap):
    eye, _ = _facing(bulged_cap)
    record = bulged_cap.records[0]
    below = np.array([0.0, 0.0, -1.0]) * 70.0  # under the cap, looking up into the shell
    side = np.array(record.location) * np.array([-1, -1, 0]) * 4.0  # from the far side
    for eye in (below, side):
        result = renderer.render(_scene(eye, np.zeros(3), 64, 35.0), bulged_cap, cap)
        assert result.object_mask.sum() > 300
        assert not result.defect_visible[0] and result.defect_masks[0].sum() == 0


def test_notch_shortened_by_1mm_is_masked_at_its_end(renderer, cap):
    notch = cap.notch
    shorter = make_defect("short_notch", length=1.0)
    defective = shorter.apply(cap, shorter.sample(cap, np.random.default_rng(0)))
    axes = np.array(notch.axes)
    end = np.array(notch.open_end) + axes[0] * (notch.length - 0.5)
    eye = end - axes[2] * 60.0  # axes[2] points into the material: look from outside
    scene = _scene(eye, end, 128, 15.0)
    result = renderer.render(scene, defective, cap)
    mask = result.defect_masks[0]
    assert result.defect_visible[0] and mask.sum() >= 10
    assert not (mask & ~result.object_mask).any()
    # Every mask pixel lies on the filled slice (1 mm along the notch at its closed end).
    corners = np.array([
        np.array(notch.open_end) + axes[0] * a + axes[1] * b + axes[2] * c
        for a in (notch.length - 1.0, notch.length)
        for b in (-notch.width / 2, notch.width / 2)
        for c in (0.0, notch.depth)
    ])
    uv, _ = scene.camera.project(corners)
    rows, cols = np.nonzero(mask)
    assert cols.min() >= uv[:, 0].min() - 1.5 and cols.max() <= uv[:, 0].max() + 1.5
    assert rows.min() >= uv[:, 1].min() - 1.5 and rows.max() <= uv[:, 1].max() + 1.5


@pytest.fixture(scope="module")
def nominals():
    parts = {name: build_product(name) for name in PRODUCTS.names() if name != "cad"}
    parts["cad"] = build_product("cad", {"path": str(SHIPPED_CAD)})
    return parts


@pytest.mark.parametrize("defect", DEFECTS.names())
@pytest.mark.parametrize("product", PRODUCTS.names())
def test_every_product_and_defect_renders_masks_inside_the_object(
    renderer, nominals, product, defect
):
    nominal = nominals[product]
    kind = product_defect(product, defect)
    visible = 0
    for index in range(3):
        sample = make_sample(nominal, [kind], SceneSpec(), renderer, seed=1, index=index,
                             size=(128, 128))
        masks, obj = sample.render.defect_masks, sample.render.object_mask
        assert masks.shape == (len(sample.part.records), 128, 128)
        assert not (masks & ~obj[None]).any(), "a defect pixel lies outside the object"
        np.testing.assert_array_equal(sample.render.defect_visible, masks.any(axis=(1, 2)))
        if not sample.part.records:  # refused: the reason names the defect
            assert product == "cad" or defect == "short_notch" or sample.refused
            assert all(defect in reason for _, reason in sample.refused)
        visible += int(sample.render.defect_visible.any())
    if defect != "short_notch" or nominal.notch is not None:
        assert visible >= 1, f"{defect} on {product} was never visible in 3 views"


def test_same_seed_gives_identical_samples(renderer, nominals):
    defects = [product_defect("capped_bottle", name) for name in DEFECTS.names()]
    nominal = nominals["capped_bottle"]
    for index in (0, 5):
        a = make_sample(nominal, defects, SceneSpec(), renderer, seed=9, index=index)
        b = make_sample(nominal, defects, SceneSpec(), renderer, seed=9, index=index)
        np.testing.assert_array_equal(a.part.mesh.vertices, b.part.mesh.vertices)
        np.testing.assert_array_equal(a.render.rgb, b.render.rgb)
        np.testing.assert_array_equal(a.render.defect_masks, b.render.defect_masks)
        assert json.dumps(a.record()) == json.dumps(b.record())

"""Masks → boxes, areas, RLE, polygons and components, checked on masks with known labels."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils

from synthgen import labels

H, W = 40, 56


def _disc(cy, cx, r):
    yy, xx = np.mgrid[:H, :W]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _rect(r0, c0, r1, c1):
    m = np.zeros((H, W), dtype=bool)
    m[r0:r1, c0:c1] = True
    return m


def _pixel(r, c):
    return _rect(r, c, r + 1, c + 1)


def _l_shape():
    return _rect(10, 10, 30, 16) | _rect(24, 10, 30, 40)


def _fill_holes(mask):
    """The mask with its holes (background not 4-connected to the border) filled."""
    pad = np.pad(~mask, 1, constant_values=True).astype(np.uint8)
    flood = np.zeros((pad.shape[0] + 2, pad.shape[1] + 2), np.uint8)
    cv2.floodFill(pad, flood, (0, 0), 2, flags=4)
    return mask | (pad[1:-1, 1:-1] == 1)


def _pil_raster(polys, scale=8):
    """Independent rasteriser: PIL at `scale`× then majority per pixel (COCO frame)."""
    im = Image.new("L", (W * scale, H * scale))
    draw = ImageDraw.Draw(im)
    for p in polys:
        draw.polygon([(x * scale, y * scale) for x, y in p], fill=1)
    big = np.asarray(im, dtype=np.float64).reshape(H, scale, W, scale)
    return big.mean(axis=(1, 3)) >= 0.5


def _iou(a, b):
    return float(np.logical_and(a, b).sum() / np.logical_or(a, b).sum())


SHAPES = {
    "disc": _disc(20, 28, 7),
    "rect": _rect(3, 5, 13, 25),
    "l_shape": _l_shape(),
    "thin_line": _rect(35, 2, 36, 54),
    "diagonal": np.eye(H, W, dtype=bool) & _rect(5, 0, 25, W),
}


def test_bbox_and_area_of_known_masks():
    assert labels.bbox(_pixel(7, 3)) == [3, 7, 1, 1]
    assert labels.area(_pixel(7, 3)) == 1
    assert labels.bbox(_rect(3, 5, 13, 25)) == [5, 3, 20, 10]
    assert labels.area(_rect(3, 5, 13, 25)) == 200
    assert labels.bbox(_pixel(0, 0) | _pixel(H - 1, W - 1)) == [0, 0, W, H]
    assert labels.bbox(np.zeros((H, W), bool)) == [0, 0, 0, 0]
    assert labels.area(np.zeros((H, W), bool)) == 0
    with pytest.raises(ValueError, match="2-D"):
        labels.bbox(np.zeros((H, W, 3), bool))


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_bbox_agrees_with_pycocotools(name):
    rle = mask_utils.encode(np.asfortranarray(SHAPES[name].astype(np.uint8)))
    assert labels.bbox(SHAPES[name]) == [int(v) for v in mask_utils.toBbox(rle)]
    assert labels.area(SHAPES[name]) == int(mask_utils.area(rle))


@pytest.mark.parametrize("name", [*sorted(SHAPES), "empty", "two", "random"])
def test_rle_round_trip(name):
    mask = {
        "empty": np.zeros((H, W), bool),
        "two": _rect(2, 2, 6, 6) | _disc(30, 40, 5),
        "random": np.random.default_rng(3).random((H, W)) < 0.4,
    }.get(name, SHAPES.get(name))
    rle = labels.rle_encode(mask)
    assert rle["size"] == [H, W]
    assert isinstance(rle["counts"], str)
    np.testing.assert_array_equal(labels.rle_decode(rle), mask)
    # pycocotools reads the str form as it is
    decoded = mask_utils.decode({"size": rle["size"], "counts": rle["counts"]})
    np.testing.assert_array_equal(decoded.astype(bool), mask)


def test_single_pixel_polygon_is_its_unit_square():
    (poly,) = labels.polygons(_pixel(7, 3))
    assert sorted(map(tuple, poly.tolist())) == [(3, 7), (3, 8), (4, 7), (4, 8)]


def test_rectangle_polygon_has_four_corners_on_pixel_edges():
    (poly,) = labels.polygons(_rect(3, 5, 13, 25))
    assert sorted(map(tuple, poly.tolist())) == [(5, 3), (5, 13), (25, 3), (25, 13)]


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_polygons_rasterise_back_to_the_mask(name):
    mask = SHAPES[name]
    polys = labels.polygons(mask)
    assert polys and all(p.ndim == 2 and p.shape[1] == 2 and len(p) >= 3 for p in polys)
    # exact with the half-open rasteriser
    np.testing.assert_array_equal(labels.rasterize_polygons(polys, H, W), mask)
    # and close with an independent one (PIL), for masks of 50 px or more
    if mask.sum() >= 50:
        assert _iou(_pil_raster(polys), mask) >= 0.9


def test_polygons_one_per_component_and_holes_filled():
    two = _rect(2, 2, 6, 6) | _disc(30, 40, 5)
    polys = labels.polygons(two)
    assert len(polys) == 2
    assert polys[0][:, 1].min() == 2  # raster order: the top component first
    ring = _rect(5, 5, 25, 25) & ~_rect(10, 10, 20, 20)
    (outer,) = labels.polygons(ring)
    np.testing.assert_array_equal(labels.rasterize_polygons([outer], H, W), _rect(5, 5, 25, 25))
    assert labels.polygons(np.zeros((H, W), bool)) == []


def test_polygons_of_random_masks_cover_exactly_the_filled_mask():
    rng = np.random.default_rng(0)
    for _ in range(200):
        mask = rng.random((H, W)) < rng.uniform(0.05, 0.9)
        out = labels.rasterize_polygons(labels.polygons(mask), H, W)
        np.testing.assert_array_equal(out, _fill_holes(mask))


def test_simplified_polygons_have_fewer_vertices_and_stay_close():
    mask = _disc(20, 28, 12)
    exact = labels.polygons(mask)
    simple = labels.polygons(mask, tolerance=1.0)
    assert sum(map(len, simple)) < sum(map(len, exact))
    assert _iou(labels.rasterize_polygons(simple, H, W), mask) >= 0.9


def test_components_in_raster_order_and_connectivity():
    a, b = _rect(20, 2, 26, 8), _rect(2, 30, 6, 40)
    comps = labels.components(a | b)
    assert len(comps) == 2
    np.testing.assert_array_equal(comps[0], b)  # b's first pixel comes first in raster order
    np.testing.assert_array_equal(comps[1], a)
    diag = _pixel(3, 3) | _pixel(4, 4)
    assert len(labels.components(diag)) == 1
    assert len(labels.components(diag, connectivity=4)) == 2
    assert labels.components(np.zeros((H, W), bool)) == []


def test_visible_instances_drops_flagged_but_empty_masks(caplog):
    shown = SimpleNamespace(visible=True, mask=_pixel(1, 1), instance=1, defect_type="dent")
    hidden = SimpleNamespace(visible=False, mask=_pixel(1, 1), instance=2, defect_type="dent")
    empty = SimpleNamespace(
        visible=True, mask=np.zeros((H, W), bool), instance=3, defect_type="bulge"
    )
    with caplog.at_level(logging.WARNING, logger="synthgen.labels"):
        assert labels.visible_instances([shown, hidden, empty]) == [shown]
    assert "instance 3 (bulge)" in caplog.text


def test_check_aligned_names_the_bad_shape():
    rgb = np.zeros((H, W, 3), np.uint8)
    assert labels.check_aligned(rgb, [np.zeros((H, W), bool)]) == (H, W)
    with pytest.raises(ValueError, match=r"\(10, 10\)"):
        labels.check_aligned(rgb, [np.zeros((10, 10), bool)])
    with pytest.raises(ValueError, match="uint8"):
        labels.check_aligned(rgb.astype(np.float32), [])

"""Backgrounds and alpha compositing (no OpenGL)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from synthgen.errors import ConfigError
from synthgen.render.compositing import background_image, composite
from synthgen.scene.model import Background


def test_solid_and_gradient():
    solid = background_image(Background(kind="solid", color_top=(1.0, 0.0, 0.5)), 5, 4)
    assert solid.shape == (4, 5, 3) and (solid == (255, 0, 128)).all()
    grad = background_image(
        Background(kind="gradient", color_top=(0, 0, 0), color_bottom=(1, 1, 1)), 3, 4
    )
    assert grad[:, 0, 0].tolist() == [0, 85, 170, 255]
    assert (grad[:, 0] == grad[:, 2]).all()


def test_image_covers_the_frame_and_keeps_aspect(tmp_path):
    image = np.zeros((20, 60, 3), np.uint8)
    image[:, :20] = (255, 0, 0)  # this third is cropped away when covering a square
    image[:, 20:40] = (0, 255, 0)
    image[:, 40:] = (0, 0, 255)
    Image.fromarray(image).save(tmp_path / "bg.png")
    out = background_image(Background(kind="image", image_path=str(tmp_path / "bg.png")), 8, 8)
    assert out.shape == (8, 8, 3)
    assert (out[:, 3:5] == (0, 255, 0)).all()  # the middle third fills the square
    assert out[..., 0].max() < 60 and out[..., 2].max() < 60  # (resampling rings a little)


def test_image_background_errors(tmp_path):
    with pytest.raises(ConfigError, match="image_path"):
        background_image(Background(kind="image"), 4, 4)
    with pytest.raises(ConfigError, match=r"missing\.png"):
        background_image(Background(kind="image", image_path=str(tmp_path / "missing.png")), 4, 4)


def test_composite_premultiplied():
    background = np.full((1, 3, 3), 200, np.uint8)
    rgba = np.array([[[0, 0, 0, 0], [100, 50, 0, 255], [50, 25, 0, 128]]], np.uint8)
    out = composite(rgba, background)
    assert out[0, 0].tolist() == [200, 200, 200]
    assert out[0, 1].tolist() == [100, 50, 0]
    assert out[0, 2].tolist() == [50 + 100, 25 + 100, 0 + 100]
    assert composite(np.zeros((2, 2, 4), np.uint8), np.full((2, 2, 3), 7, np.uint8)).max() == 7


def test_edge_smoothing_is_the_tent_filter_on_edge_pixels_only():
    from synthgen.render.antialias import geometric_edges, smooth_edges

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(12, 10, 3), dtype=np.uint8)
    edges = np.zeros((12, 10), dtype=bool)
    edges[[0, 5, 11], [0, 4, 9]] = True  # corners and the middle
    out = smooth_edges(rgb, edges)
    np.testing.assert_array_equal(out[~edges], rgb[~edges])
    padded = np.pad(rgb.astype(np.float64), ((1, 1), (1, 1), (0, 0)), mode="edge")
    kernel = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    for r, c in zip(*np.nonzero(edges), strict=True):
        expected = np.einsum("ij,ijk->k", kernel, padded[r : r + 3, c : c + 3])
        np.testing.assert_allclose(out[r, c], np.floor(expected + 0.5), atol=1)

    # Edges: the silhouette of a square and the crease between its two halves.
    face_id = np.zeros((8, 8), dtype=np.uint32)
    face_id[2:6, 2:4] = 1
    face_id[2:6, 4:6] = 2
    depth = np.where(face_id > 0, 10.0, 0.0).astype(np.float32)
    normals = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    found = geometric_edges(face_id, depth, normals)
    assert found[1, 2] and found[2, 2] and found[3, 3] and found[3, 4]
    assert not found[0, 0] and not found[7, 7]

"""Tests of the parametric product families and their construction helpers."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from synthgen.errors import ConfigError
from synthgen.products import PRODUCTS, build_product
from synthgen.products.shapes import (
    Profile,
    Solid,
    combine,
    finish_part,
    grid_levels,
    prism,
    regular_polygon,
    revolve,
    uniform_levels,
)

FAMILIES = ("bottle_cap", "capped_bottle", "hex_nut", "wheel")
NOTCHED = ("bottle_cap", "capped_bottle")
FACE_BUDGET = {"bottle_cap": 12_000, "capped_bottle": 25_000, "hex_nut": 12_000, "wheel": 12_000}

SMALL_BOTTLE = {
    "body_diameter": 20.0, "body_height": 10.0, "base_radius": 0.5, "shoulder_height": 5.0,
    "neck_diameter": 8.0, "neck_height": 3.0, "ring_diameter": 9.0, "ring_thickness": 0.3,
    "ring_gap": 0.5, "cap_diameter": 10.0, "cap_height": 4.0, "cap_edge_radius": 0.2,
    "rib_count": 0, "notch_length": 0.5, "notch_width": 0.3, "notch_depth": 0.1,
    "segments": 24,
}  # fmt: skip
SMALL_WHEEL = {
    "rim_diameter": 250.0, "rim_width": 100.0, "hub_diameter": 100.0,
    "center_bore_diameter": 40.0, "bolt_circle_diameter": 72.0, "bolt_hole_diameter": 8.0,
    "spoke_width": 20.0, "spoke_rim_width": 30.0, "face_inset": 2.0, "spoke_thickness": 6.0,
    "hub_thickness": 8.0, "segments": 24,
}  # fmt: skip

CASES = [
    ("bottle_cap", {}),
    ("bottle_cap", {"dome_height": 0.5, "notch_length": 5.0}),
    (
        "bottle_cap",
        {"outer_diameter": 8.0, "skirt_height": 2.0, "dome_height": 4.0, "wall_thickness": 0.3,
         "notch_length": 0.5, "notch_width": 0.3, "segments": 24},
    ),
    (
        "bottle_cap",
        {"outer_diameter": 150.0, "skirt_height": 100.0, "dome_height": 75.0,
         "wall_thickness": 10.0, "notch_length": 90.0, "notch_width": 40.0, "segments": 256},
    ),
    ("capped_bottle", {}),
    ("capped_bottle", {"rib_count": 0}),
    ("capped_bottle", {"rib_count": 150, "rib_width": 0.2, "rib_height": 3.0}),
    ("capped_bottle", SMALL_BOTTLE),
    ("hex_nut", {}),
    ("hex_nut", {"bearing_diameter": 18.0, "chamfer_angle": 10.0, "segments": 24}),
    ("hex_nut", {"across_flats": 3.0, "height": 1.0, "bore_diameter": 1.6,
                 "bearing_diameter": 2.5}),
    (
        "hex_nut",
        {"across_flats": 150.0, "height": 120.0, "bore_diameter": 100.0,
         "bearing_diameter": 140.0, "chamfer_angle": 60.0, "segments": 256},
    ),
    ("wheel", {}),
    ("wheel", {"spoke_count": 3}),
    ("wheel", {"spoke_count": 12, "spoke_width": 15.0, "spoke_rim_width": 25.0,
               "bolt_count": 4, "bolt_circle_diameter": 100.0}),
    ("wheel", {"rim_diameter": 560.0, "rim_width": 330.0, "hub_diameter": 320.0,
               "bolt_count": 10, "bolt_circle_diameter": 250.0}),
    ("wheel", SMALL_WHEEL),
]  # fmt: skip
CASE_IDS = [f"{name}-{i}" for i, (name, _) in enumerate(CASES)]

_CACHE: dict[int, object] = {}


def _build(index: int):
    """Build CASES[index] once per test session."""
    if index not in _CACHE:
        name, params = CASES[index]
        _CACHE[index] = build_product(name, params)
    return _CACHE[index]


def _triangles(part) -> set[tuple[float, ...]]:
    """The part's faces as a set of rounded vertex-coordinate tuples (order-free)."""
    tri = np.round(part.mesh.vertices[part.mesh.faces], 9).reshape(len(part.mesh.faces), -1)
    return {tuple(row) for row in tri}


def test_every_family_is_registered_with_a_described_model():
    for name in FAMILIES:
        product = PRODUCTS.get(name)
        assert product.description
        for field_name, field in product.params_model.model_fields.items():
            assert field.description, f"{name}.{field_name} has no description"
            assert any(unit in field.description for unit in ("(mm)", "(deg)", "(count)"))
            bounds = {type(m).__name__ for m in field.metadata}
            assert {"Ge", "Le"} <= bounds, f"{name}.{field_name} has no validated range"


@pytest.mark.parametrize("index", range(len(CASES)), ids=CASE_IDS)
def test_mesh_is_a_clean_centred_solid(index):
    name, params = CASES[index]
    part = _build(index)
    mesh = part.mesh
    assert part.product == name
    assert dict(part.params) == PRODUCTS.get(name).params_model(**params).model_dump()
    assert mesh.is_watertight
    assert mesh.is_winding_consistent
    assert mesh.volume > 0
    assert mesh.area_faces.min() > 0
    np.testing.assert_allclose(mesh.bounds.mean(axis=0), 0.0, atol=1e-9)
    # No duplicate faces, no unused vertices.
    assert len(np.unique(np.sort(mesh.faces, axis=1), axis=0)) == len(mesh.faces)
    assert len(np.unique(mesh.faces)) == len(mesh.vertices)


@pytest.mark.parametrize("index", range(len(CASES)), ids=CASE_IDS)
def test_regions_cover_every_face(index):
    part = _build(index)
    counts = np.bincount(part.face_region, minlength=len(part.region_names))
    assert len(counts) == len(part.region_names)
    empty = [n for n, c in zip(part.region_names, counts, strict=True) if c == 0]
    assert not empty, f"regions without faces: {empty}"


@pytest.mark.parametrize("name", FAMILIES)
def test_build_is_deterministic(name):
    first, second = build_product(name), build_product(name)
    assert np.array_equal(first.mesh.vertices, second.mesh.vertices)
    assert np.array_equal(first.mesh.faces, second.mesh.faces)
    assert np.array_equal(first.face_region, second.face_region)
    assert first.notch == second.notch


@pytest.mark.parametrize("name", FAMILIES)
def test_face_count_within_budget(name):
    assert len(build_product(name).mesh.faces) <= FACE_BUDGET[name]


def _region_normal(part, region: str) -> np.ndarray:
    """Area-weighted mean unit normal of a region's faces."""
    faces = part.region_faces([region])
    normal = (part.mesh.face_normals[faces] * part.mesh.area_faces[faces, None]).sum(axis=0)
    return normal / np.linalg.norm(normal)


def _region_z(part, region: str) -> np.ndarray:
    return part.mesh.triangles_center[part.region_faces([region]), 2]


@pytest.mark.parametrize("name", FAMILIES)
def test_plus_z_is_up_and_regions_are_where_named(name):
    part = build_product(name)
    lo, hi = part.mesh.bounds
    if name != "hex_nut":
        assert hi[0] - lo[0] == pytest.approx(hi[1] - lo[1], rel=0.01)  # round about Z
    if name == "bottle_cap":
        assert _region_normal(part, "cap_top")[2] > 0.5
        np.testing.assert_allclose(_region_z(part, "rim"), lo[2], atol=1e-9)
        assert np.allclose(part.mesh.face_normals[part.region_faces(["rim"])], [0, 0, -1])
    elif name == "capped_bottle":
        assert hi[2] - lo[2] > 2 * (hi[0] - lo[0])  # tall along Z
        np.testing.assert_allclose(_region_z(part, "bottom"), lo[2], atol=1e-9)
        assert _region_z(part, "cap_top").min() > _region_z(part, "body").max()
        assert _region_normal(part, "cap_top")[2] > 0.9
    elif name == "hex_nut":
        np.testing.assert_allclose(hi - lo, [16 / np.cos(np.pi / 6), 16.0, 8.4])
        assert np.allclose(part.mesh.face_normals[part.region_faces(["top"])], [0, 0, 1])
        assert np.allclose(part.mesh.face_normals[part.region_faces(["bottom"])], [0, 0, -1])
        flats = part.mesh.face_normals[part.region_faces(["flats"])]
        assert np.abs(flats[:, 2]).max() < 1e-9
        bore = part.region_faces(["bore"])
        radial = part.mesh.triangles_center[bore, :2]
        assert np.all(np.einsum("ij,ij->i", part.mesh.face_normals[bore, :2], radial) < 0)
    else:
        assert _region_z(part, "spokes").mean() > 0  # the face of the wheel is up
        walls = part.mesh.face_normals[part.region_faces(["bolt_holes", "bore"])]
        assert np.abs(walls[:, 2]).max() < 1e-9


@pytest.mark.parametrize(
    "index", [i for i, (name, _) in enumerate(CASES) if name in NOTCHED], ids=lambda i: CASE_IDS[i]
)
def test_notch_box_holds_the_notch_faces(index):
    part = _build(index)
    notch = part.notch
    assert notch is not None and notch.length_param == "notch_length"
    assert notch.length == part.params["notch_length"]
    assert notch.width == part.params["notch_width"]
    axes = np.asarray(notch.axes)
    np.testing.assert_allclose(axes @ axes.T, np.eye(3), atol=1e-12)
    faces = part.region_faces(["notch"])
    points = part.mesh.vertices[part.mesh.faces[faces]].reshape(-1, 3)
    assert notch.box_contains(points, 0.0, notch.length).all()
    local = (points - np.asarray(notch.open_end)) @ axes.T
    assert local[:, 0].max() == pytest.approx(notch.length, abs=1e-9)  # closed end
    assert local[:, 0].min() == pytest.approx(0.0, abs=1e-9)  # open at the edge
    # No other region's face lies strictly inside the slot.
    others = np.setdiff1d(np.arange(len(part.mesh.faces)), faces)
    inner = part.mesh.triangles_center[others]
    box = notch.box_contains(inner, 0.0, notch.length, margin=-1e-3)
    assert not box.any()


@pytest.mark.parametrize("name", NOTCHED)
@pytest.mark.parametrize("fraction", [0.8, 0.4])
def test_shorter_notch_changes_only_the_mesh_near_its_end(name, fraction):
    nominal = build_product(name)
    length = nominal.notch.length
    short = build_product(name, {"notch_length": length * fraction})
    assert short.notch.open_end == nominal.notch.open_end
    assert short.notch.axes == nominal.notch.axes
    assert short.notch.length == pytest.approx(length * fraction)
    changed = _triangles(nominal) ^ _triangles(short)
    assert changed, "the notch length did not change the mesh"
    points = np.array(sorted(changed)).reshape(-1, 3)
    notch = nominal.notch
    local = (points - np.asarray(notch.open_end)) @ np.asarray(notch.axes).T
    row = 1.5  # mm, the skirt row height the products use at most
    assert local[:, 0].min() >= length * fraction - 2 * row
    assert local[:, 0].max() <= length + row + 1e-6
    assert np.abs(local[:, 1]).max() <= notch.width / 2 + 2.0
    assert len(changed) < 0.05 * len(nominal.mesh.faces)


@pytest.mark.parametrize("name", ["hex_nut", "wheel"])
def test_families_without_a_notch(name):
    assert build_product(name).notch is None


BAD_PARAMS = [
    ("bottle_cap", {"outer_diameter": 1.0}, "outer_diameter"),
    ("bottle_cap", {"notch_length": 13.0}, "notch_length"),
    ("bottle_cap", {"dome_height": 16.0}, "dome_height"),
    ("bottle_cap", {"notch_width": 20.0}, "notch_width"),
    ("bottle_cap", {"colour": "red"}, "colour"),
    ("capped_bottle", {"rib_count": -1}, "rib_count"),
    ("capped_bottle", {"notch_depth": 3.0}, "notch_depth"),
    ("capped_bottle", {"neck_diameter": 70.0}, "neck_diameter"),
    ("capped_bottle", {"notch_length": 15.5}, "notch_length"),
    ("capped_bottle", {"rib_count": 150}, "rib_count"),
    ("capped_bottle", {"segments": 8}, "segments"),
    ("hex_nut", {"height": 0.0}, "height"),
    ("hex_nut", {"bearing_diameter": 8.0}, "bearing_diameter"),
    ("hex_nut", {"bore_diameter": 15.0}, "bore_diameter"),
    ("hex_nut", {"thread": True}, "thread"),
    ("wheel", {"spoke_count": 2}, "spoke_count"),
    ("wheel", {"face_inset": 150.0}, "face_inset"),
    ("wheel", {"bolt_circle_diameter": 150.0, "bolt_hole_diameter": 25.0}, "bolt_circle"),
    ("wheel", {"spoke_count": 20}, "spoke_count"),
    ("wheel", {"hub": 3}, "hub"),
]


@pytest.mark.parametrize(("name", "params", "field"), BAD_PARAMS)
def test_bad_params_raise_config_error_naming_the_field(name, params, field):
    with pytest.raises(ConfigError, match=field):
        build_product(name, params)


# --- construction helpers -------------------------------------------------------------------


def test_revolve_makes_poles_and_rings_into_a_closed_solid():
    points, labels = Profile(0.0, 0.0).line(2.0, 0.0, 0).line(2.0, 3.0, 1).line(0.0, 3.0, 2)\
        .close(3)  # fmt: skip
    solid = revolve(points, labels, 32)
    assert solid.mesh.is_watertight and solid.mesh.volume > 0
    assert solid.mesh.volume == pytest.approx(np.pi * 4 * 3, rel=0.01)
    assert set(np.unique(solid.region)) == {0, 1, 2}  # the axis segment makes no faces
    assert solid.mesh.area_faces.min() > 0
    # A ring (no point on the axis), profile given clockwise: still outward.
    ring_points, ring_labels = Profile(1.0, 0.0).line(1.0, 1.0, 0).line(2.0, 1.0, 0)\
        .line(2.0, 0.0, 0).close(0)  # fmt: skip
    ring = revolve(ring_points, ring_labels, 48)
    assert ring.mesh.is_watertight and ring.mesh.volume > 0


def test_combine_keeps_each_face_on_its_source_face():
    square = regular_polygon(np.sqrt(2), 4, 45.0)
    block = prism(square, np.linspace(0.0, 2.0, 5), [0, 1, 2, 3], 4, 5)
    pin = prism(regular_polygon(0.4, 24) + 1.0, np.array([-1.0, 3.0]), 6, 6, 6)
    for op in ("union", "difference", "intersection"):
        result = combine(block, pin, op)
        assert result.mesh.is_watertight and result.mesh.volume > 0
        # Each region of the block is one plane: its faces in the result stay on it.
        for region in range(6):
            source = np.flatnonzero(block.region == region)[0]
            normal = block.mesh.face_normals[source]
            origin = block.mesh.vertices[block.mesh.faces[source, 0]]
            faces = result.mesh.faces[result.region == region]
            if op != "intersection" or region >= 4:  # the pin lies inside the block's sides
                assert len(faces), (op, region)
            distance = (result.mesh.vertices[faces.ravel()] - origin) @ normal
            assert np.all(np.abs(distance) < 1e-9), (op, region)
        pin_faces = result.region == 6
        assert pin_faces.any()
        radial = result.mesh.triangles_center[pin_faces, :2] - 1.0
        on_wall = np.abs(result.mesh.face_normals[pin_faces, 2]) < 1e-9
        assert np.all(np.linalg.norm(radial[on_wall], axis=1) < 0.41)


def test_finish_part_order_does_not_depend_on_input_order():
    part = build_product("bottle_cap")
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(part.mesh.vertices))
    inverse = np.argsort(perm)
    faces = inverse[part.mesh.faces]
    faces = np.roll(faces, 1, axis=1)  # same winding, other start vertex
    shuffle = rng.permutation(len(faces))
    mesh = trimesh.Trimesh(part.mesh.vertices[perm], faces[shuffle], process=False)
    solid = Solid(mesh, part.face_region[shuffle])
    again = finish_part(solid, part.region_names, part.product, part.params, part.notch)
    assert np.array_equal(again.mesh.vertices, part.mesh.vertices)
    assert np.array_equal(again.mesh.faces, part.mesh.faces)
    assert np.array_equal(again.face_region, part.face_region)


def test_row_levels_share_a_grid():
    skirt = uniform_levels(0.0, 12.0, 1.5)
    assert len(skirt) == 9 and skirt[-1] == 12.0
    row = skirt[1] - skirt[0]
    cut = grid_levels(0.0, row, 5.0)
    assert cut[-1] == 5.0
    assert set(cut[:-1]) <= set(skirt)
    assert np.all(np.diff(cut) > row / 4)

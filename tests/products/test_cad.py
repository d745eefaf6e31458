"""The `cad` product: formats, units, up axis, repair, regions and errors, on tiny meshes
written to tmp_path, and on the real parts of the shared folder when it is present."""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import trimesh

from synthgen.errors import ConfigError, MeshError, MissingDependency
from synthgen.products import PRODUCTS, build_product

BOX = (10.0, 20.0, 30.0)
OFFSET = (5.0, -7.0, 9.0)
HAS_LXML = importlib.util.find_spec("lxml") is not None
HAS_CASCADIO = importlib.util.find_spec("cascadio") is not None


def _box() -> trimesh.Trimesh:
    """A 10 x 20 x 30 box whose centre is not at the origin."""
    box = trimesh.creation.box(BOX)
    box.apply_translation(OFFSET)
    return box


def _write_3mf(path: Path, mesh: trimesh.Trimesh, unit: str = "millimeter") -> Path:
    """A minimal 3MF package of `mesh` (written by hand: trimesh's writer needs lxml)."""
    vertices = "".join(f'<vertex x="{x}" y="{y}" z="{z}"/>' for x, y, z in mesh.vertices)
    triangles = "".join(f'<triangle v1="{a}" v2="{b}" v3="{c}"/>' for a, b, c in mesh.faces)
    model = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<model unit="{unit}" xmlns="http://schemas.microsoft.com/3dmanufacturing/core/2015/02">'
        f'<resources><object id="1" type="model"><mesh><vertices>{vertices}</vertices>'
        f"<triangles>{triangles}</triangles></mesh></object></resources>"
        '<build><item objectid="1"/></build></model>'
    )
    types = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="model" '
        'ContentType="application/vnd.ms-package.3dmanufacturing-3dmodel+xml"/></Types>'
    )
    rels = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Target="/3D/3dmodel.model" Id="rel0" '
        'Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/></Relationships>'
    )
    with zipfile.ZipFile(path, "w") as package:
        package.writestr("[Content_Types].xml", types)
        package.writestr("_rels/.rels", rels)
        package.writestr("3D/3dmodel.model", model)
    return path


def _write(tmp_path: Path, mesh: trimesh.Trimesh, ext: str, name: str = "part") -> Path:
    """`mesh` exported to tmp_path/name.ext."""
    path = tmp_path / f"{name}.{ext}"
    if ext == "3mf":
        return _write_3mf(path, mesh)
    mesh.export(path)
    return path


def _cad(path: Path, **params):
    return build_product("cad", {"path": str(path), **params})


def _assert_centred(part) -> None:
    np.testing.assert_allclose(part.mesh.bounds.sum(axis=0), 0.0, atol=1e-6)


def _region_area(part, name: str) -> float:
    return float(part.mesh.area_faces[part.region_faces([name])].sum())


def test_registered():
    assert "cad" in PRODUCTS
    assert PRODUCTS.get("cad").params_model.__name__ == "CadParams"


@pytest.mark.parametrize("ext", ["stl", "obj", "ply", "glb", "gltf", "3mf"])
def test_every_format_loads_watertight_centred_in_mm(tmp_path, ext):
    if ext == "3mf" and not HAS_LXML:
        pytest.skip("3MF import needs lxml (see test_3mf_without_lxml_names_the_extra)")
    part = _cad(_write(tmp_path, _box(), ext))
    assert part.product == "cad"
    assert part.watertight and part.mesh.is_watertight
    assert part.mesh.volume == pytest.approx(np.prod(BOX), rel=1e-6)
    np.testing.assert_allclose(part.mesh.extents, BOX, rtol=1e-6)
    _assert_centred(part)
    assert part.region_names == ("top", "bottom", "side")
    assert _region_area(part, "top") == pytest.approx(BOX[0] * BOX[1])
    assert _region_area(part, "bottom") == pytest.approx(BOX[0] * BOX[1])


@pytest.mark.parametrize(("units", "factor"), [("mm", 1.0), ("cm", 10.0), ("in", 25.4)])
def test_units_scale_to_mm(tmp_path, units, factor):
    part = _cad(_write(tmp_path, _box(), "stl"), units=units)
    np.testing.assert_allclose(part.mesh.extents, np.array(BOX) * factor, rtol=1e-6)
    assert part.params["measured"]["mm_per_file_unit"] == pytest.approx(factor)
    _assert_centred(part)


def test_target_size_sets_largest_side(tmp_path):
    part = _cad(_write(tmp_path, _box(), "ply"), target_size=60.0)
    np.testing.assert_allclose(part.mesh.extents, np.array(BOX) * 2.0, rtol=1e-6)
    assert part.params["measured"]["scale_from"] == "target_size"


def test_units_and_target_size_are_exclusive(tmp_path):
    with pytest.raises(ConfigError, match="units or target_size, not both"):
        _cad(_write(tmp_path, _box(), "stl"), units="cm", target_size=10.0)


@pytest.mark.parametrize("axis", ["x", "y", "z", "-x", "-y", "-z"])
def test_up_axis_turns_file_axis_to_plus_z(tmp_path, axis):
    # a cone standing on its base along the file's `axis`: after import its base must face -Z
    cone = trimesh.creation.cone(radius=5.0, height=20.0, sections=32)
    direction = np.zeros(3)
    direction["xyz".index(axis[-1])] = -1.0 if axis.startswith("-") else 1.0
    cone.apply_transform(trimesh.geometry.align_vectors([0, 0, 1], direction))
    part = _cad(_write(tmp_path, cone, "stl"), up_axis=axis)
    assert part.mesh.extents[2] == pytest.approx(20.0)
    base = part.mesh.area_faces[part.mesh.face_normals[:, 2] < -0.99].sum()
    assert base == pytest.approx(cone.area_faces[cone.face_normals @ direction < -0.99].sum())
    assert _region_area(part, "bottom") == pytest.approx(base)
    assert _region_area(part, "top") == 0.0
    assert part.watertight and part.mesh.volume > 0


def _two_part_scene() -> trimesh.Scene:
    scene = trimesh.Scene()
    scene.add_geometry(trimesh.creation.box((10, 10, 10)), node_name="housing", geom_name="housing")
    knob = trimesh.creation.icosphere(subdivisions=2, radius=2.0)
    scene.add_geometry(
        knob,
        node_name="knob",
        geom_name="knob",
        transform=trimesh.transformations.translation_matrix((20, 0, 0)),
    )
    return scene


@pytest.mark.parametrize("ext", ["glb", "obj"])
def test_multi_geometry_scene_gets_one_region_per_geometry(tmp_path, ext):
    path = tmp_path / f"scene.{ext}"
    _two_part_scene().export(path)
    part = _cad(path)
    assert sorted(part.region_names) == ["housing", "knob"]
    housing, knob = part.region_faces(["housing"]), part.region_faces(["knob"])
    assert len(housing) == 12 and len(knob) == 320
    assert len(housing) + len(knob) == len(part.mesh.faces)
    gap = part.mesh.triangles_center[knob].mean(axis=0) - part.mesh.vertices[
        np.unique(part.mesh.faces[housing])
    ].mean(axis=0)
    np.testing.assert_allclose(gap, (20.0, 0.0, 0.0), atol=1e-6)
    assert part.watertight and part.params["measured"]["geometries"] == 2
    _assert_centred(part)


def _box_with_hole() -> trimesh.Trimesh:
    """The box with the two triangles of its +X side removed: one 4-edge hole."""
    box = _box()
    keep = ~(box.face_normals[:, 0] > 0.99)
    return trimesh.Trimesh(box.vertices, box.faces[keep], process=False)


def test_repair_fills_a_small_hole(tmp_path):
    part = _cad(_write(tmp_path, _box_with_hole(), "stl"))
    assert part.watertight and part.mesh.is_watertight
    assert part.mesh.volume == pytest.approx(np.prod(BOX))
    measured = part.params["measured"]
    assert measured["holes_filled"] == 1
    assert (measured["faces_in"], measured["faces_out"]) == (10, 14)
    assert len(part.region_faces(["side"])) == 6 + 4  # three walls and the fan filling the fourth


def test_hole_longer_than_limit_is_refused(tmp_path):
    path = _write(tmp_path, _box_with_hole(), "stl", name="busted")
    with pytest.raises(MeshError) as error:
        _cad(path, max_hole_edges=3)
    assert str(error.value) == (
        "busted.stl: not watertight after repair: 4 open edges in 1 boundary loops; "
        "set accept_broken: true to use it as is"
    )


def test_open_mesh_without_repair_is_refused(tmp_path):
    with pytest.raises(MeshError, match=r"part\.stl: not watertight \(repair is off\).*repair"):
        _cad(_write(tmp_path, _box_with_hole(), "stl"), repair=False)


def test_accept_broken_keeps_the_open_mesh(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="synthgen.products.cad"):
        part = _cad(_write(tmp_path, _box_with_hole(), "stl"), repair=False, accept_broken=True)
    assert not part.watertight and not part.mesh.is_watertight
    assert len(part.mesh.faces) == 10
    assert "4 open edges" in caplog.text
    _assert_centred(part)


def test_repair_turns_inverted_normals_outward(tmp_path):
    box = _box()
    box.invert()
    path = _write(tmp_path, box, "stl")
    part = _cad(path)
    assert part.mesh.volume == pytest.approx(np.prod(BOX))
    assert part.params["measured"]["inverted"]
    with pytest.raises(
        MeshError, match=r"^part\.stl: not a valid solid \(repair is off\): normals pointing inward"
    ):
        _cad(path, repair=False)


def test_repair_fixes_inconsistent_winding(tmp_path):
    box = _box()
    faces = box.faces.copy()
    faces[[0, 5]] = faces[[0, 5], ::-1]
    path = _write(tmp_path, trimesh.Trimesh(box.vertices, faces, process=False), "obj")
    part = _cad(path)
    assert part.watertight and part.mesh.is_winding_consistent
    assert part.mesh.volume == pytest.approx(np.prod(BOX))
    assert part.params["measured"]["winding_fixed"]


def test_repair_drops_duplicate_and_degenerate_faces(tmp_path):
    box = _box()
    faces = np.concatenate([box.faces, box.faces[:1], [[0, 0, 1]]])
    path = _write(tmp_path, trimesh.Trimesh(box.vertices, faces, process=False), "ply")
    part = _cad(path)
    measured = part.params["measured"]
    assert measured["duplicate_faces_dropped"] == 1
    assert measured["degenerate_faces_dropped"] == 1
    assert len(part.mesh.faces) == 12 and part.watertight


def test_params_are_json_ready(tmp_path):
    path = _write(tmp_path, _box(), "stl")
    part = _cad(path, units="cm", up_axis="y")
    data = json.loads(json.dumps(dict(part.params)))
    assert data["path"] == str(path) and data["units"] == "cm" and data["up_axis"] == "y"
    assert data["measured"]["faces_in"] == 12
    np.testing.assert_allclose(data["measured"]["size_mm"], [100.0, 300.0, 200.0])


def test_triangle_soup_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    soup = trimesh.Trimesh(rng.uniform(0, 10, (60, 3)), np.arange(60).reshape(-1, 3))
    with pytest.raises(MeshError, match=r"^soup\.stl: triangle soup: 20 of 20 triangles"):
        _cad(_write(tmp_path, soup, "stl", name="soup"), accept_broken=True)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "part.xyz",
            b"1 2 3\n",
            r"part\.xyz: unknown CAD file extension '\.xyz'; accepted: .*\.stl",
        ),
        ("noext", b"", r"noext: unknown CAD file extension '\(none\)'"),
        ("empty.stl", b"", r"empty\.stl: the file is empty \(0 bytes\)"),
        ("text.stl", b"solid x\nendsolid x\n", r"text\.stl: the file contains no triangles"),
        ("junk.stl", bytes(range(256)) * 3, r"junk\.stl: cannot be read as STL"),
        ("junk.ply", b"ply\nformat nonsense\n", r"junk\.ply: cannot be read as PLY"),
        ("junk.glb", b"glTF" + bytes(40), r"junk\.glb: cannot be read as glTF binary"),
        ("nan.obj", b"v nan 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n", r"nan\.obj: .*NaN"),
        ("points.obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\n", r"points\.obj: the file contains no tri"),
    ],
)
def test_bad_files_raise_one_mesh_error_naming_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(MeshError, match=f"^{message}"):
        _cad(path)


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nowhere.stl"
    with pytest.raises(MeshError, match=f"^{path}: no such file$"):
        _cad(path)


def test_step_without_cascadio_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cascadio", None)
    path = tmp_path / "part.STEP"
    path.write_text("ISO-10303-21;\nEND-ISO-10303-21;\n")
    with pytest.raises(MissingDependency, match=r"synthgen\[cad\]") as error:
        _cad(path)
    assert "cascadio" in str(error.value) and "STEP import" in str(error.value)


def test_3mf_without_lxml_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "lxml", None)
    with pytest.raises(MissingDependency, match=r"3MF import .*lxml"):
        _cad(_write(tmp_path, _box(), "3mf"))


@pytest.mark.skipif(not HAS_LXML, reason="3MF import needs lxml")
def test_3mf_declared_units_are_used(tmp_path):
    path = _write_3mf(tmp_path / "part.3mf", _box(), unit="centimeter")
    np.testing.assert_allclose(_cad(path).mesh.extents, np.array(BOX) * 10, rtol=1e-6)
    np.testing.assert_allclose(_cad(path, units="mm").mesh.extents, BOX, rtol=1e-6)


@pytest.mark.skipif(not HAS_CASCADIO, reason="STEP import needs cascadio")
def test_bad_step_file_is_a_mesh_error(tmp_path):
    path = tmp_path / "broken.stp"
    path.write_text("ISO-10303-21;\nHEADER;\n")
    with pytest.raises(MeshError, match=r"^broken\.stp: cannot be read as STEP"):
        _cad(path)


# ---- the real parts of the shared folder (README.md there gives the expected behaviour) ----

FEATURETYPE_MM = (127.0, 63.5, 34.925)  # 5 x 2.5 x 1.375 inches


@pytest.mark.parametrize(
    ("name", "faces"),
    [
        ("featuretype.STL", 3476),
        ("angle_block.STL", 704),
        ("plate_holes.STL", 1252),
        ("octagonal_pocket.stl", 3262),
        ("busted.STL", 3878),  # a valid solid once its unshared STL vertices are merged
    ],
)
def test_shared_parts_load_watertight(shared_cad, name, faces):
    part = _cad(shared_cad / name)
    assert part.watertight and part.mesh.is_watertight and part.mesh.volume > 0
    assert len(part.mesh.faces) == faces
    assert part.params["measured"]["holes_filled"] == 0
    _assert_centred(part)
    assert len(part.region_faces(["top"])) > 0 and len(part.region_faces(["side"])) > 0


def test_shared_featuretype_stl_in_inches(shared_cad):
    part = _cad(shared_cad / "featuretype.STL", units="in")
    np.testing.assert_allclose(part.mesh.extents, FEATURETYPE_MM, rtol=1e-5)


def test_shared_featuretype_step(shared_cad, monkeypatch):
    path = shared_cad / "featuretype.STEP"
    if HAS_CASCADIO:
        part = _cad(path)
        assert part.watertight and part.mesh.is_watertight and part.mesh.volume > 0
        np.testing.assert_allclose(part.mesh.extents, FEATURETYPE_MM, rtol=1e-5)
        _assert_centred(part)
    monkeypatch.setitem(sys.modules, "cascadio", None)
    with pytest.raises(MissingDependency, match=r'pip install "synthgen\[cad\]"'):
        _cad(path)


def test_shared_soup_is_refused(shared_cad):
    with pytest.raises(MeshError, match=r"^soup\.stl: triangle soup: 100 of 100 triangles"):
        _cad(shared_cad / "soup.stl")


def test_shared_empty_is_refused(shared_cad):
    with pytest.raises(MeshError, match=r"^empty\.stl: the file contains no triangles$"):
        _cad(shared_cad / "empty.stl")

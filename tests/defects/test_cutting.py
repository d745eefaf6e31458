"""chip, hole, crack, scratch: boolean cuts, their labels and refusals."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from synthgen.defects import make_defect
from synthgen.defects.chip import blob
from synthgen.defects.groove import sweep_cutter
from synthgen.errors import DefectNotApplicable

from .helpers import check_result, on_surface

BOOLEAN = ["chip", "hole", "crack", "scratch"]


def cutter_of(name, p):
    if name == "hole":
        n = np.asarray(p["normal"])
        loc = np.asarray(p["location"])
        return trimesh.creation.cylinder(
            radius=p["diameter"] / 2, sections=48,
            segment=[loc + n * p["standoff"], loc - n * p["depth"]],
        )
    if name == "chip":
        return blob(p)
    return sweep_cutter(p, "v" if name == "crack" else "trough")


@pytest.mark.parametrize("name", BOOLEAN)
def test_labelled_faces_lie_on_the_cutter(name, box):
    defect = make_defect(name)
    for seed in range(3):
        p = defect.sample(box, np.random.default_rng(seed))
        out = defect.apply(box, p)
        check_result(box, out, name)
        labelled = out.face_defect == 1
        assert on_surface(cutter_of(name, p), out.mesh.triangles_center[labelled], 1e-6).all()
        assert out.mesh.volume < box.mesh.volume
        # Cutter faces take the region the defect was placed on.
        assert set(out.face_region[labelled].tolist()) == {box.region_names.index(p["region"])}
        # Part faces keep their region: each lies on a face of the box with that region.
        rest = ~labelled
        nz = out.mesh.face_normals[rest, 2]
        region = out.face_region[rest]
        assert ((nz > 0.9) == (region == 0)).all() and ((nz < -0.9) == (region == 1)).all()


@pytest.mark.parametrize("name", BOOLEAN)
def test_not_watertight_refused(name, open_box, box):
    with pytest.raises(DefectNotApplicable, match=f"{name}: test_open is not watertight"):
        make_defect(name).sample(open_box, np.random.default_rng(0))
    p = make_defect(name).sample(box, np.random.default_rng(0))
    with pytest.raises(DefectNotApplicable, match="not watertight"):
        make_defect(name).apply(open_box, p)


def test_hole_through_and_blind(box):
    through = make_defect("hole", through_probability=1.0, regions=["top"], diameter=1.0)
    p = {**through.sample(box, np.random.default_rng(0)), "location": [0.0, 0.0, 4.0]}
    out = through.apply(box, p)
    assert p["through"] and p["depth"] > 8.0
    assert out.mesh.volume == pytest.approx(box.mesh.volume - np.pi * 0.25 * 8.0, rel=0.01)
    assert out.mesh.euler_number == box.mesh.euler_number - 2  # one more handle
    blind = make_defect("hole", through_probability=0.0, regions=["top"], depth=1.0)
    p = blind.sample(box, np.random.default_rng(0))
    assert not p["through"] and p["depth"] == 1.0
    assert blind.apply(box, p).mesh.euler_number == box.mesh.euler_number


def test_cut_that_splits_the_part_refused(thin_shell):
    hole = make_defect("hole", regions=["top"])
    p = hole.sample(thin_shell, np.random.default_rng(0))
    # A wide, shallow disc through all four side walls cuts the box into a lid and a tray.
    p = {**p, "location": [0.0, 0.0, 1.0], "diameter": 80.0, "depth": 1.0, "standoff": 1.0}
    with pytest.raises(DefectNotApplicable, match="split test_shell"):
        hole.apply(thin_shell, p)
    p = {**p, "location": [0.0, 0.0, 5.0], "depth": 12.0}
    with pytest.raises(DefectNotApplicable, match="remove all of test_shell"):
        hole.apply(thin_shell, p)


def test_chip_sits_on_a_sharp_edge(box):
    chip = make_defect("chip")
    p = chip.sample(box, np.random.default_rng(4))
    loc = np.abs(np.asarray(p["location"]))
    assert np.isclose(loc, [10, 8, 4]).sum() >= 2, "not on an edge of the box"
    normal = np.asarray(p["normal"])
    assert np.count_nonzero(np.abs(normal) > 0.5) == 2  # the bisector of two faces


@pytest.mark.parametrize("name", ["crack", "scratch"])
def test_groove_path_follows_the_surface(name, icosphere):
    defect = make_defect(name, length=5.0)
    p = defect.sample(icosphere, np.random.default_rng(2))
    path = np.asarray(p["path"])
    assert np.allclose(np.linalg.norm(path, axis=1), 10.0, atol=0.05)
    out = defect.apply(icosphere, p)
    assert out.records[-1].size_mm == pytest.approx(
        np.linalg.norm(np.diff(path, axis=0), axis=1).sum()
    )
    assert 2.0 < out.records[-1].size_mm <= 5.0 + 1.0

"""bulge and dent: local refinement, the smooth profile, labels and walls."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from synthgen.defects import make_defect
from synthgen.defects.refine import refine_local
from synthgen.errors import DefectNotApplicable

from .helpers import check_result


def params(location, normal, radius, amount, key, reach=(50.0, 50.0)):
    return {"location": list(location), "normal": list(normal), "radius": radius, key: amount,
            "reach_in": reach[0], "reach_out": reach[1]}


def test_refine_local_is_conforming_and_local(coarse_box):
    centre, target = np.array([10.0, 5.0, 10.0]), 0.5

    def near(tris):
        c = tris.mean(axis=1)
        r = np.linalg.norm(tris - c[:, None], axis=2).max(axis=1)
        return np.linalg.norm(c - centre, axis=1) - r < 2.0

    v, f, parent = refine_local(coarse_box.mesh.vertices, coarse_box.mesh.faces, near, target)
    mesh = trimesh.Trimesh(v, f, process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert np.allclose(np.bincount(parent, mesh.area_faces), coarse_box.mesh.area_faces)
    edges = v[f] - np.roll(v[f], -1, axis=1)
    longest = np.linalg.norm(edges, axis=2).max(axis=1)
    assert (longest[near(v[f])] <= target).all()
    assert np.array_equal(v[: len(coarse_box.mesh.vertices)], coarse_box.mesh.vertices)
    # Nothing selected: nothing changes.
    _, f2, p2 = refine_local(v, f, lambda t: np.zeros(len(t), bool), target)
    assert np.array_equal(f2, f) and np.array_equal(p2, np.arange(len(f)))


@pytest.mark.parametrize(("name", "key", "sign"), [("bulge", "height", 1), ("dent", "depth", -1)])
def test_profile_labels_and_volume(name, key, sign, coarse_box):
    r, h = 3.0, 0.4
    loc = np.array([10.0, 5.0, 10.0])
    out = make_defect(name).apply(coarse_box, params(loc, [0, 0, 1], r, h, key, (18.0, 50.0)))
    check_result(coarse_box, out, name)
    v = out.mesh.vertices
    # The peak sits at the location (a vertex is there after refinement).
    top = v[np.argmin(np.linalg.norm(v[:, :2] - loc[:2], axis=1))]
    assert top[2] == pytest.approx(10.0 + sign * h, abs=0.02)
    # Volume change of h·(1 − s²)² over the disc: π r² h / 3.
    dv = out.mesh.volume - coarse_box.mesh.volume
    assert dv == pytest.approx(sign * np.pi * r * r * h / 3, rel=0.03)
    # Labelled faces touch the disc; faces with a corner well inside it are labelled.
    labelled = out.face_defect == 1
    rho = np.linalg.norm(v[:, :2] - loc[:2], axis=1)[out.mesh.faces]
    assert (rho[labelled] < r).any(axis=1).all()
    top = out.face_region == 0
    assert labelled[top & (rho < 0.95 * r).any(axis=1)].all()
    assert not labelled[out.face_region == 1].any(), "the bottom (beyond reach_in) moved"
    # Vertices outside the disc did not move: they lie on the nominal box.
    outside = np.linalg.norm(v[:, :2] - loc[:2], axis=1) >= r
    assert np.allclose(np.abs(v[outside]).max(axis=0)[2], 10.0)
    assert (np.isclose(np.abs(v[outside]), [50, 30, 10]).any(axis=1)).all()


def test_far_wall_of_thin_shell_does_not_move(thin_shell):
    dent = make_defect("dent", radius=4.0, depth=2.0, regions=["top"])
    p = dent.sample(thin_shell, np.random.default_rng(3))
    # The wall is 1 mm: the depth was capped well below it.
    assert p["reach_in"] == pytest.approx(0.9, abs=1e-6)
    assert p["depth"] < 0.5
    out = dent.apply(thin_shell, p)
    check_result(thin_shell, out, "dent")
    inner = out.mesh.triangles_center[out.face_region == 3]
    assert np.isclose(np.abs(inner), [14, 14, 4]).any(axis=1).all(), "the inner wall moved"


def test_too_deep_refused(box):
    # At the top edge the side wall slides down; 6 mm over a 7 mm reach folds it.
    p = params([10.0, 0.0, 4.0], [0, 0, 1], 2.0, 6.0, "depth", reach=(7.0, 50.0))
    with pytest.raises(DefectNotApplicable, match="dent: the displacement would fold"):
        make_defect("dent").apply(box, p)


def test_radius_larger_than_part_refused(icosphere):
    with pytest.raises(DefectNotApplicable, match="larger than test_icosphere"):
        make_defect("bulge", radius=400.0).sample(icosphere, np.random.default_rng(0))

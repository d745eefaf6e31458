"""Every defect type on every fixture part: applies cleanly or refuses as documented."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synthgen.defects import DEFECTS, make_defect
from synthgen.errors import DefectNotApplicable
from synthgen.part import Part

from .helpers import check_result

# (defect, fixture) pairs that must refuse, with a piece of the message.
REFUSALS = {
    ("chip", "test_icosphere"): "no sharp edge",
    ("short_notch", "test_icosphere"): "product 'test_icosphere' has no notch",
    ("short_notch", "test_box"): "has no notch",
    ("short_notch", "test_cad"): "has no notch",
}


def snapshot(part: Part) -> tuple:
    return (
        part.mesh.vertices.copy(), part.mesh.faces.copy(),
        part.face_region.copy(), part.face_defect.copy(), part.records,
    )


@pytest.mark.parametrize("name", DEFECTS.names())
def test_applies_or_refuses(name, any_part):
    defect = make_defect(name)
    refusal = REFUSALS.get((name, any_part.product))
    if refusal:
        with pytest.raises(DefectNotApplicable, match=refusal):
            defect.sample(any_part, np.random.default_rng(0))
        return
    before = snapshot(any_part)
    done = 0
    for seed in range(4):
        params = defect.sample(any_part, np.random.default_rng(seed))
        assert json.loads(json.dumps(params)) == params, "params are not JSON-ready"
        try:
            out = defect.apply(any_part, params)
        except DefectNotApplicable as error:
            # A through cut next to an edge may leave a loose sliver: refused, not broken.
            assert "would split" in str(error)
            continue
        done += 1
        check_result(any_part, out, name)
        assert out.records[-1].params == params
        assert np.unique(out.face_defect).tolist() == [0, 1]
    assert done >= 2
    after = snapshot(any_part)
    for a, b in zip(before, after, strict=True):
        assert np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b, "input changed"


@pytest.mark.parametrize("name", DEFECTS.names())
def test_deterministic(name, notched_block):
    defect = make_defect(name)
    runs = []
    for _ in range(2):
        params = defect.sample(notched_block, np.random.default_rng(7))
        runs.append((params, defect.apply(notched_block, params)))
    (p1, a), (p2, b) = runs
    assert p1 == p2
    assert a.mesh.vertices.tobytes() == b.mesh.vertices.tobytes()
    assert a.mesh.faces.tobytes() == b.mesh.faces.tobytes()
    assert a.face_defect.tobytes() == b.face_defect.tobytes()
    assert a.face_region.tobytes() == b.face_region.tobytes()
    assert a.records[-1].as_dict() == b.records[-1].as_dict()


@pytest.mark.parametrize("name", DEFECTS.names())
@pytest.mark.parametrize("first", ["bulge", "hole"])
def test_earlier_labels_survive(first, name, notched_block):
    one = make_defect(first, regions=["bottom"])
    part = one.apply(notched_block, one.sample(notched_block, np.random.default_rng(1)))
    assert (part.face_defect == 1).any()
    regions = ["notch"] if name == "short_notch" else ["top"]
    two = make_defect(name, regions=regions)
    out = two.apply(part, two.sample(part, np.random.default_rng(2)))
    check_result(part, out, name)
    assert [r.instance for r in out.records] == [1, 2]
    assert out.records[0] == part.records[0] or name == "short_notch"
    ones = out.face_defect == 1
    assert ones.sum() > 0
    # The first defect sat on the bottom, the second on top: they do not overlap, so the
    # faces labelled 1 are still the first defect's (same area as before).
    area_before = part.mesh.area_faces[part.face_defect == 1].sum()
    assert out.mesh.area_faces[ones].sum() == pytest.approx(area_before, rel=1e-6)


@pytest.mark.parametrize("name", DEFECTS.names())
def test_regions_respected(name, notched_block):
    region = "notch" if name == "short_notch" else "top"
    defect = make_defect(name, regions=[region])
    for seed in range(3):
        out = defect.apply(notched_block, defect.sample(notched_block, np.random.default_rng(seed)))
        labelled = out.face_defect == 1
        assert set(out.face_region[labelled].tolist()) <= {0, 1, 2, 3}
        if name in ("bulge", "dent", "hole", "crack", "scratch"):
            # Placed on the top face, z = +4 mm.
            assert out.records[-1].location[2] == pytest.approx(4.0)
            assert (out.face_region[labelled] == 0).any()
        if name in ("crack", "scratch"):
            path = np.asarray(out.records[-1].params["path"])
            assert np.allclose(path[:, 2], 4.0)
        if name == "chip":
            # On an edge of the top face.
            assert out.records[-1].location[2] == pytest.approx(4.0)


@pytest.mark.parametrize("name", DEFECTS.names())
def test_unknown_region_and_empty_region_refused(name, notched_block, icosphere):
    with pytest.raises(DefectNotApplicable, match="no region 'lid'"):
        make_defect(name, regions=["lid"]).sample(notched_block, np.random.default_rng(0))
    empty = Part(icosphere.mesh, icosphere.face_region, ("body", "empty"), product="two")
    with pytest.raises(DefectNotApplicable):
        make_defect(name, regions=["empty"]).sample(empty, np.random.default_rng(0))

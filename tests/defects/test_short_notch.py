"""short_notch rebuilds the notched product shorter and keeps earlier defects."""

from __future__ import annotations

import numpy as np
import pytest

from synthgen.defects import make_defect
from synthgen.errors import DefectNotApplicable

from .helpers import check_result


def test_shortens_the_notch(notched_block):
    defect = make_defect("short_notch", length=2.0)
    p = defect.sample(notched_block, np.random.default_rng(0))
    out = defect.apply(notched_block, p)
    check_result(notched_block, out, "short_notch")
    notch = notched_block.notch
    # The filled slice: L × width × depth of material back.
    gained = out.mesh.volume - notched_block.mesh.volume
    assert gained == pytest.approx(2.0 * notch.width * notch.depth, rel=1e-6)
    record = out.records[-1]
    assert record.size_mm == 2.0
    assert record.location == pytest.approx((-10 + notch.length - 1.0, 0.0, 4.0))
    # Labelled faces lie in the slice between the new and the old closed end.
    labelled = out.face_defect == 1
    centres = out.mesh.triangles_center[labelled]
    assert notch.box_contains(centres, notch.length - 2.0, notch.length).all()
    # The new closed end wall (x = −10 + 4) is among them.
    assert np.isclose(centres[:, 0], -10 + notch.length - 2.0).any()
    # Nominal params and notch stay: the nominal twin is the part as designed.
    assert out.params == notched_block.params and out.notch == notch


def test_earlier_defects_are_replayed(notched_block):
    bulge = make_defect("bulge", regions=["bottom"])
    part = bulge.apply(notched_block, bulge.sample(notched_block, np.random.default_rng(0)))
    short = make_defect("short_notch")
    out = short.apply(part, short.sample(part, np.random.default_rng(1)))
    assert [r.type for r in out.records] == ["bulge", "short_notch"]
    assert out.records[0].params == part.records[0].params
    assert out.records[0].n_faces == int((out.face_defect == 1).sum()) > 0
    # Same bulge; the rebuilt mesh is triangulated differently, so its rim faces differ.
    assert out.mesh.area_faces[out.face_defect == 1].sum() == pytest.approx(
        part.mesh.area_faces[part.face_defect == 1].sum(), rel=0.05
    )
    with pytest.raises(DefectNotApplicable, match="already shortened"):
        short.sample(out, np.random.default_rng(2))


def test_refusals(notched_block, box):
    with pytest.raises(DefectNotApplicable, match="short_notch: product 'test_box' has no notch"):
        make_defect("short_notch").sample(box, np.random.default_rng(0))
    with pytest.raises(DefectNotApplicable, match=r"would leave less than 0\.5 mm"):
        make_defect("short_notch", length=5.8).sample(notched_block, np.random.default_rng(0))
    p = make_defect("short_notch").sample(notched_block, np.random.default_rng(0))
    with pytest.raises(DefectNotApplicable, match="less than the minimum notch"):
        make_defect("short_notch").apply(notched_block, {**p, "length": 6.0})
    with pytest.raises(DefectNotApplicable, match="not in regions"):
        make_defect("short_notch", regions=["bottom"]).sample(
            notched_block, np.random.default_rng(0)
        )
    # A range reaching past the minimum is drawn only where it fits.
    p = make_defect("short_notch", length=(1.0, 50.0)).sample(
        notched_block, np.random.default_rng(0)
    )
    assert 1.0 <= p["length"] <= 5.5

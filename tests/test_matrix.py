"""Every registered product × every registered defect applies cleanly or refuses clearly
(rendering of every pair is in tests/render/test_product_masks.py)."""

import functools
from pathlib import Path

import numpy as np
import pytest

from synthgen.defects import DEFECTS, make_defect
from synthgen.errors import DefectNotApplicable
from synthgen.products import PRODUCTS, build_product

SHARED_CAD = Path(__file__).resolve().parents[2] / "shared" / "cad" / "featuretype.STL"
SHIPPED_CAD = Path(__file__).resolve().parents[1] / "meshes" / "bracket.stl"


@functools.cache
def nominal(product: str):
    if product != "cad":
        return build_product(product)
    if SHARED_CAD.exists():  # a real machined part, exported in inches
        return build_product("cad", {"path": str(SHARED_CAD), "units": "in"})
    # No shared data: the bracket the project ships (scripts/make_meshes.py).
    return build_product("cad", {"path": str(SHIPPED_CAD)})


def _apply(product, defect, seed=0):
    part = nominal(product)
    kind = make_defect(defect)
    try:
        params = kind.sample(part, np.random.default_rng(seed))
        return part, kind.apply(part, params)
    except DefectNotApplicable as error:
        message = str(error)
        assert defect in message, f"refusal does not name the defect: {message}"
        return part, None


@pytest.mark.parametrize("defect", DEFECTS.names())
@pytest.mark.parametrize("product", PRODUCTS.names())
def test_defect_applies_or_refuses(product, defect):
    part, defective = _apply(product, defect)
    if defective is None:
        assert defect == "short_notch" and part.notch is None, (
            f"{defect} refused {product}, which should take it"
        )
        return
    assert len(defective.records) == 1 and defective.records[0].type == defect
    assert defective.mesh.is_watertight
    assert len(part.records) == 0, "the nominal part was modified"
    labelled = defective.face_defect == 1
    assert labelled.sum() == defective.records[0].n_faces > 0
    centres = defective.mesh.triangles_center[labelled]
    distance = np.linalg.norm(centres - np.asarray(defective.records[0].location), axis=1)
    assert distance.max() <= defective.records[0].extent + 1e-6


@pytest.mark.parametrize("product", PRODUCTS.names())
def test_same_seed_gives_the_same_defective_mesh(product):
    defect = "short_notch" if nominal(product).notch is not None else "bulge"
    _, a = _apply(product, defect, seed=3)
    _, b = _apply(product, defect, seed=3)
    np.testing.assert_array_equal(a.mesh.vertices, b.mesh.vertices)
    np.testing.assert_array_equal(a.mesh.faces, b.mesh.faces)
    np.testing.assert_array_equal(a.face_defect, b.face_defect)
    assert a.records[0].params == b.records[0].params

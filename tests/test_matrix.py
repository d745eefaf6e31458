"""Every registered product × every registered defect: applies cleanly or refuses clearly,
and renders with masks inside the object."""

import functools
from pathlib import Path

import numpy as np
import pytest
import trimesh

from synthgen.defects import DEFECTS, make_defect
from synthgen.errors import DefectNotApplicable
from synthgen.products import PRODUCTS, build_product

SHARED_CAD = Path(__file__).resolve().parents[2] / "shared" / "cad" / "featuretype.STL"


@functools.cache
def nominal(product: str, tmp: str):
    if product != "cad":
        return build_product(product)
    if SHARED_CAD.exists():  # a real machined part, exported in inches
        return build_product("cad", {"path": str(SHARED_CAD), "units": "in"})
    path = Path(tmp) / "block.stl"  # no shared data: a CAD-like block of large triangles
    trimesh.creation.box(extents=(40, 30, 20)).export(path)
    return build_product("cad", {"path": str(path)})


@pytest.fixture(scope="session")
def cad_tmp(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cad"))


def _apply(product, defect, cad_tmp, seed=0):
    part = nominal(product, cad_tmp)
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
def test_defect_applies_or_refuses(product, defect, cad_tmp):
    part, defective = _apply(product, defect, cad_tmp)
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
def test_same_seed_gives_the_same_defective_mesh(product, cad_tmp):
    defect = "short_notch" if nominal(product, cad_tmp).notch is not None else "bulge"
    _, a = _apply(product, defect, cad_tmp, seed=3)
    _, b = _apply(product, defect, cad_tmp, seed=3)
    np.testing.assert_array_equal(a.mesh.vertices, b.mesh.vertices)
    np.testing.assert_array_equal(a.mesh.faces, b.mesh.faces)
    np.testing.assert_array_equal(a.face_defect, b.face_defect)
    assert a.records[0].params == b.records[0].params

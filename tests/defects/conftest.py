"""Small fixture parts that do not depend on the product modules.

`test_notched_block` is registered as a tiny product so that short_notch can rebuild it.
"""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from synthgen.config import StrictModel
from synthgen.mesh_ops import boolean
from synthgen.part import Notch, Part
from synthgen.products.base import PRODUCTS, register_product

BLOCK = (20.0, 16.0, 8.0)


def regions_by_normal(mesh: trimesh.Trimesh) -> np.ndarray:
    """0 top (+Z), 1 bottom (−Z), 2 side."""
    nz = mesh.face_normals[:, 2]
    return np.where(nz > 0.9, 0, np.where(nz < -0.9, 1, 2)).astype(np.int16)


class NotchedBlockParams(StrictModel):
    """A block with a slot from its −X edge along +X in its top face (mm)."""

    notch_length: float = 6.0
    notch_width: float = 4.0
    notch_depth: float = 3.0


def build_notched_block(p: NotchedBlockParams) -> Part:
    lx, _, lz = BLOCK
    block = trimesh.creation.box(extents=BLOCK)
    x0, x1 = -lx / 2 - 1.0, -lx / 2 + p.notch_length
    z0, z1 = lz / 2 - p.notch_depth, lz / 2 + 1.0
    slot = trimesh.creation.box(
        bounds=[[x0, -p.notch_width / 2, z0], [x1, p.notch_width / 2, z1]]
    )
    result = boolean(block, slot, "difference")
    region = np.where(result.operand == 1, 3, regions_by_normal(result.mesh)).astype(np.int16)
    notch = Notch(
        open_end=(-lx / 2, 0.0, lz / 2),
        axes=((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
        length=p.notch_length,
        width=p.notch_width,
        depth=p.notch_depth,
        length_param="notch_length",
    )
    return Part(
        mesh=result.mesh,
        face_region=region,
        region_names=("top", "bottom", "side", "notch"),
        product="test_notched_block",
        params=p.model_dump(),
        notch=notch,
    )


if "test_notched_block" not in PRODUCTS:
    register_product("test_notched_block", NotchedBlockParams, "test block with a slot")(
        build_notched_block
    )


def make_icosphere() -> Part:
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=10.0)
    return Part(mesh, np.zeros(len(mesh.faces)), ("body",), product="test_icosphere")


def make_box() -> Part:
    mesh = trimesh.creation.box(extents=BLOCK)
    mesh = trimesh.Trimesh(*trimesh.remesh.subdivide(mesh.vertices, mesh.faces), process=False)
    return Part(mesh, regions_by_normal(mesh), ("top", "bottom", "side"), product="test_box")


def make_coarse_box() -> Part:
    """A CAD-like box: 12 huge triangles."""
    mesh = trimesh.creation.box(extents=(100.0, 60.0, 20.0))
    return Part(mesh, regions_by_normal(mesh), ("top", "bottom", "side"), product="test_cad")


def make_notched_block() -> Part:
    return build_notched_block(NotchedBlockParams())


def make_thin_shell() -> Part:
    """A hollow box with 1 mm walls (30 × 30 × 10 mm outside)."""
    outer = trimesh.creation.box(extents=(30.0, 30.0, 10.0))
    inner = trimesh.creation.box(extents=(28.0, 28.0, 8.0))
    result = boolean(outer, inner, "difference")
    region = np.where(result.operand == 1, 3, regions_by_normal(result.mesh)).astype(np.int16)
    return Part(result.mesh, region, ("top", "bottom", "side", "inside"), product="test_shell")


def make_open_box() -> Part:
    """A box missing two triangles, accepted as is (watertight=False)."""
    box = trimesh.creation.box(extents=BLOCK)
    mesh = trimesh.Trimesh(box.vertices, box.faces[2:], process=False)
    return Part(mesh, regions_by_normal(mesh), ("top", "bottom", "side"), product="test_open",
                watertight=False)


MAKERS = {
    "icosphere": make_icosphere,
    "box": make_box,
    "coarse_box": make_coarse_box,
    "notched_block": make_notched_block,
}


@pytest.fixture(params=sorted(MAKERS))
def any_part(request) -> Part:
    """Each watertight fixture part in turn (its name is `part.product`)."""
    return MAKERS[request.param]()


@pytest.fixture
def icosphere() -> Part:
    return make_icosphere()


@pytest.fixture
def box() -> Part:
    return make_box()


@pytest.fixture
def coarse_box() -> Part:
    return make_coarse_box()


@pytest.fixture
def notched_block() -> Part:
    return make_notched_block()


@pytest.fixture
def thin_shell() -> Part:
    return make_thin_shell()


@pytest.fixture
def open_box() -> Part:
    return make_open_box()

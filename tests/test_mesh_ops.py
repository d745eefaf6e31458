"""Mesh booleans with provenance, the closed-surface check and memoising on meshes."""

import numpy as np
import pytest
import trimesh

from synthgen.errors import MeshError
from synthgen.mesh_ops import boolean, cached, is_closed_consistent, signed_volume


def test_closed_consistent_check():
    box = trimesh.creation.box((1, 2, 3))
    assert is_closed_consistent(box.faces)
    assert not is_closed_consistent(box.faces[1:])  # a hole
    flipped = box.faces.copy()
    flipped[0] = flipped[0, ::-1]
    assert not is_closed_consistent(flipped)
    assert not is_closed_consistent(np.zeros((0, 3), dtype=int))


def test_signed_volume():
    sphere = trimesh.creation.icosphere(4, radius=2.0)
    assert signed_volume(sphere.vertices, sphere.faces) == pytest.approx(sphere.volume)
    assert signed_volume(sphere.vertices, sphere.faces[:, ::-1]) < 0


def test_boolean_reports_where_each_face_came_from():
    box = trimesh.creation.box((10, 10, 10))
    drill = trimesh.creation.cylinder(radius=2.0, height=20.0, sections=32)
    result = boolean(box, drill, "difference")
    assert is_closed_consistent(result.mesh.faces)
    centres = result.mesh.triangles_center
    walls = result.operand == 1
    assert walls.any() and (~walls).any()
    # Cutter faces lie on the cylinder (inside its facets), box faces on their source plane.
    radius = np.linalg.norm(centres[walls, :2], axis=1)
    assert (radius <= 2.0 + 1e-9).all() and (radius > 1.9).all()
    source_normals = box.face_normals[result.source_face[~walls]]
    offsets = np.einsum("ij,ij->i", centres[~walls], source_normals)
    np.testing.assert_allclose(offsets, 5.0, atol=1e-9)
    expected = 1000.0 - drill.volume * 10.0 / 20.0
    assert result.mesh.volume == pytest.approx(expected, rel=1e-6)


def test_boolean_output_order_depends_on_geometry_only():
    a = trimesh.creation.icosphere(3, radius=5.0)
    b = trimesh.creation.box((4, 4, 12))
    first, second = boolean(a, b, "union"), boolean(a, b, "union")
    order = np.random.default_rng(0).permutation(len(a.faces))
    shuffled = trimesh.Trimesh(a.vertices, a.faces[order])
    third = boolean(shuffled, b, "union")
    np.testing.assert_array_equal(first.mesh.faces, second.mesh.faces)
    np.testing.assert_array_equal(first.mesh.vertices, third.mesh.vertices)
    np.testing.assert_array_equal(first.mesh.faces, third.mesh.faces)


def test_open_operand_is_a_mesh_error():
    box = trimesh.creation.box((1, 1, 1))
    open_box = trimesh.Trimesh(box.vertices, box.faces[2:])
    with pytest.raises(MeshError, match="not a closed manifold"):
        boolean(open_box, box, "union")


def test_cached_values_drop_when_the_mesh_changes():
    mesh = trimesh.creation.box((1, 1, 1))
    calls = []
    assert cached(mesh, "k", lambda: calls.append(1) or len(calls)) == 1
    assert cached(mesh, "k", lambda: calls.append(1) or len(calls)) == 1
    mesh.vertices[0] += 0.5
    assert cached(mesh, "k", lambda: calls.append(1) or len(calls)) == 2

"""Several objects in one view: occlusion between objects, per-object instance masks, and
defect masks that belong to the right object."""

from __future__ import annotations

import numpy as np
import pytest
from render_fixtures import RADIUS, bulge, make_scene, sphere_part

from synthgen.render.placement import Placed, offsets, split_labels

pytestmark = pytest.mark.gl


def _at(x: float, z: float = 0.0) -> np.ndarray:
    pose = np.eye(4)
    pose[0, 3], pose[2, 3] = x, z
    return pose


def test_split_labels_decodes_offsets():
    parts = [sphere_part(1), sphere_part(2)]
    starts = offsets(parts)
    face = np.array([[0, 1, starts[1], starts[1] + 1, starts[2]]], dtype=np.uint32)
    depth = np.ones_like(face, dtype=np.float32)
    (a, da), (b, db) = split_labels(face, depth, starts)
    np.testing.assert_array_equal(db > 0, b > 0)
    np.testing.assert_array_equal(a, [[0, 1, starts[1], 0, 0]])
    np.testing.assert_array_equal(b, [[0, 0, 0, 1, starts[2] - starts[1]]])
    np.testing.assert_array_equal(da > 0, a > 0)


def test_front_object_hides_the_one_behind(renderer):
    """Sphere 1 sits right behind sphere 0 (camera on +Z), shifted a little sideways."""
    nominal = sphere_part(3)
    scene = make_scene(96)
    front, back = _at(-6.0, 10.0), _at(6.0, -40.0)
    result = renderer.render_placed(scene, [Placed(nominal, nominal, front),
                                            Placed(nominal, nominal, back)])
    near, far = result.instance_masks
    assert near.sum() > 500 and far.sum() > 20
    assert not (near & far).any(), "instance masks of opaque objects overlap"
    np.testing.assert_array_equal(near | far, result.object_mask)
    alone = renderer.render_placed(scene, [Placed(nominal, nominal, back)]).object_mask
    assert far.sum() < alone.sum(), "the back sphere should be partly hidden"
    assert (far <= alone).all()


def test_defects_belong_to_their_object_and_hide_behind_others(renderer):
    nominal = sphere_part(4)
    # A bulge facing the camera on each sphere; the back one's is behind the front sphere.
    defective = bulge(nominal, (0.0, 0.0, 1.0), 6.0, 1.5)
    scene = make_scene(96)
    side_by_side = [Placed(defective, nominal, _at(-25.0)), Placed(nominal, nominal, _at(25.0))]
    result = renderer.render_placed(scene, side_by_side)
    assert result.defect_masks.shape[0] == 1 and list(result.defect_owner) == [0]
    assert result.defect_visible[0]
    assert not (result.defect_masks[0] & ~result.instance_masks[0]).any()
    hidden = [Placed(nominal, nominal, _at(0.0, 10.0)), Placed(defective, nominal, _at(0.0, -50.0))]
    result = renderer.render_placed(scene, hidden)
    assert list(result.defect_owner) == [1] and not result.defect_visible[0]


def test_placed_visibility_counts_occlusion(renderer):
    nominal = sphere_part(3)
    scene = make_scene(96)
    poses = [_at(0.0, 10.0), _at(0.0, -3 * RADIUS)]
    front, back = renderer.placed_visibility(scene, [nominal, nominal], poses)
    assert front.sum() > 1000 and back.sum() == 0  # wholly behind the front sphere
    (alone,) = renderer.placed_visibility(scene, [nominal], poses[1:])
    assert alone.sum() > 0

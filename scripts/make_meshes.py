"""Build the meshes the project ships in meshes/ (run again to regenerate them).

    python scripts/make_meshes.py

meshes/bracket.stl: an L-shaped mounting bracket with four bolt holes and a slot, in
millimetres, written as a binary STL like a CAD export. It is the stand-in for a user's
CAD part in examples and tests that must run without the team's shared data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

from synthgen.mesh_ops import boolean

OUT = Path(__file__).resolve().parents[1] / "meshes"


def bracket() -> trimesh.Trimesh:
    """An L bracket: 60 x 40 x 6 mm base, 40 x 6 x 35 mm upright, bolt holes and a slot."""
    base = trimesh.creation.box((60.0, 40.0, 6.0))
    base.apply_translation((0.0, 0.0, 3.0))
    upright = trimesh.creation.box((60.0, 6.0, 35.0))
    upright.apply_translation((0.0, 17.0, 6.0 + 17.5))
    solid = boolean(base, upright, "union").mesh
    for x in (-22.0, 22.0):
        for y in (-12.0, 4.0):
            hole = trimesh.creation.cylinder(radius=2.75, height=20.0, sections=32)
            hole.apply_translation((x, y, 3.0))
            solid = boolean(solid, hole, "difference").mesh
    slot = trimesh.creation.box((24.0, 20.0, 8.0))
    slot.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, (1, 0, 0)))
    slot.apply_translation((0.0, 17.0, 26.0))
    return boolean(solid, slot, "difference").mesh


def main() -> None:
    OUT.mkdir(exist_ok=True)
    mesh = bracket()
    path = OUT / "bracket.stl"
    mesh.export(path)
    print(f"wrote {path} ({len(mesh.faces)} faces, watertight={mesh.is_watertight})")


if __name__ == "__main__":
    main()

"""The Part: one product instance as a labelled triangle mesh, and the records of its defects.

Conventions: millimetres, object frame, +Z up, the part centred on the origin (products put
the centre of their bounding box at the origin; a resting part stands on z = min z).
Meshes are watertight with outward normals unless a CAD import was accepted as is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np
import trimesh

from synthgen.errors import DefectNotApplicable


@dataclass(frozen=True)
class Notch:
    """A notch (slot) cut into a product, as an oriented box in the object frame.

    The notch runs along `axes[0]` from its open end (at the product's edge) to its closed
    end at `open_end + axes[0] * length`. Shortening the notch moves the closed end back
    toward the open end; the open end stays where it is.

    Attributes:
        open_end: (3,) mm, centre of the notch's open end.
        axes: (3, 3) rows are unit vectors: length direction, width direction, depth
            direction (pointing into the material, i.e. against the outward normal).
        length: mm along axes[0].
        width: mm along axes[1].
        depth: mm along axes[2].
        length_param: name of the product parameter that sets `length`.
    """

    open_end: tuple[float, float, float]
    axes: tuple[tuple[float, float, float], ...]
    length: float
    width: float
    depth: float
    length_param: str

    def box_contains(
        self, points: np.ndarray, start: float, stop: float, margin: float = 1e-3
    ) -> np.ndarray:
        """Which points lie in the notch box between `start` and `stop` mm along its length.

        Args:
            points: (N, 3) mm, object frame.
            start, stop: mm from the open end along axes[0].
            margin: mm added on every side.

        Returns:
            (N,) bool.
        """
        axes = np.asarray(self.axes, dtype=np.float64)
        local = (np.asarray(points, dtype=np.float64) - np.asarray(self.open_end)) @ axes.T
        return (
            (local[:, 0] >= start - margin)
            & (local[:, 0] <= stop + margin)
            & (np.abs(local[:, 1]) <= self.width / 2 + margin)
            & (local[:, 2] >= -margin)
            & (local[:, 2] <= self.depth + margin)
        )


@dataclass(frozen=True)
class DefectRecord:
    """What a defect did to a part: the ground truth of one defect instance.

    Attributes:
        type: registered defect type ("bulge", "hole", ...).
        instance: 1-based index of this record in `Part.records`; faces of the defective
            mesh labelled with this number in `Part.face_defect` belong to it.
        params: every parameter that `apply` used (plain floats and lists), enough to
            re-apply the defect bit for bit.
        location: (3,) mm, object frame: the centre of the defect on the nominal surface.
        normal: (3,) unit outward surface normal of the nominal part at `location`.
        extent: mm, radius of a sphere about `location` that contains all changed geometry.
        size_mm: the defect's characteristic size in mm: diameter for bulge, dent and hole,
            length for crack and scratch, width for chip, removed length for short_notch.
        n_faces: number of faces of the defective mesh labelled with this instance.
    """

    type: str
    instance: int
    params: Mapping[str, Any]
    location: tuple[float, float, float]
    normal: tuple[float, float, float]
    extent: float
    size_mm: float
    n_faces: int

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the record."""
        return {
            "type": self.type,
            "instance": self.instance,
            "params": dict(self.params),
            "location": [float(v) for v in self.location],
            "normal": [float(v) for v in self.normal],
            "extent": float(self.extent),
            "size_mm": float(self.size_mm),
            "n_faces": int(self.n_faces),
        }


@dataclass(frozen=True, eq=False)
class Part:
    """A product instance: mesh plus per-face labels.

    Treat as immutable: defects return a new Part with a new mesh and never modify the mesh
    of the Part they were given.

    Attributes:
        mesh: the triangle mesh in mm, object frame, +Z up.
        face_region: (F,) int16, index into `region_names` for each face.
        region_names: names of the face regions ("cap_top", "notch", "body", ...).
        face_defect: (F,) int16, 0 on nominal surface, k on faces changed by defect k
            (1-based index into `records`).
        product: registered product type that built the nominal part ("cad" for imports).
        params: the product parameters the nominal part was built with (mm, degrees, counts).
        notch: the product's notch, or None if it has none.
        records: one DefectRecord per applied defect, in order of application.
        watertight: False only for CAD meshes the user accepted as they are.
    """

    mesh: trimesh.Trimesh
    face_region: np.ndarray
    region_names: tuple[str, ...]
    product: str
    params: Mapping[str, Any] = field(default_factory=dict)
    notch: Notch | None = None
    face_defect: np.ndarray | None = None
    records: tuple[DefectRecord, ...] = ()
    watertight: bool = True

    def __post_init__(self) -> None:
        n_faces = len(self.mesh.faces)
        region = np.asarray(self.face_region, dtype=np.int16)
        if region.shape != (n_faces,):
            raise ValueError(f"face_region has shape {region.shape}, expected ({n_faces},)")
        if n_faces and (region.min() < 0 or region.max() >= len(self.region_names)):
            raise ValueError("face_region holds an index outside region_names")
        object.__setattr__(self, "face_region", region)
        defect = (
            np.zeros(n_faces, dtype=np.int16)
            if self.face_defect is None
            else np.asarray(self.face_defect, dtype=np.int16)
        )
        if defect.shape != (n_faces,):
            raise ValueError(f"face_defect has shape {defect.shape}, expected ({n_faces},)")
        object.__setattr__(self, "face_defect", defect)
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        region.flags.writeable = False
        defect.flags.writeable = False

    @property
    def is_defective(self) -> bool:
        return bool(self.records)

    @property
    def bounding_radius(self) -> float:
        """mm, radius of the sphere about the origin that holds the whole mesh."""
        return float(np.linalg.norm(self.mesh.vertices, axis=1).max())

    def region_faces(self, names: Iterable[str] | None = None) -> np.ndarray:
        """Indices (K,) int64 of the faces in the named regions (all faces when None).

        Raises:
            DefectNotApplicable: a name is not a region of this part.
        """
        if names is None:
            return np.arange(len(self.mesh.faces))
        names = list(names)
        unknown = [n for n in names if n not in self.region_names]
        if unknown:
            raise DefectNotApplicable(
                f"{self.product} has no region {', '.join(map(repr, unknown))}; "
                f"its regions are: {', '.join(self.region_names)}"
            )
        ids = [self.region_names.index(n) for n in names]
        return np.flatnonzero(np.isin(self.face_region, ids))

    def with_defect(
        self,
        mesh: trimesh.Trimesh,
        face_region: np.ndarray,
        face_defect: np.ndarray,
        record: DefectRecord,
    ) -> Part:
        """A new Part with `mesh` and `record` appended (record.instance must be next)."""
        if record.instance != len(self.records) + 1:
            raise ValueError(
                f"record.instance is {record.instance}, expected {len(self.records) + 1}"
            )
        return replace(
            self,
            mesh=mesh,
            face_region=face_region,
            face_defect=face_defect,
            records=(*self.records, record),
        )

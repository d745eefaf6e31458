"""The defect contract: a configured defect type samples parameters and applies them.

    defect = make_defect("bulge", height=(0.3, 1.0), regions=["cap_top"])
    params = defect.sample(part, rng)         # plain dict, every number drawn from rng
    defective = defect.apply(part, params)    # new Part; part is unchanged

`apply` is deterministic: the same part and params give the same mesh bit for bit.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from synthgen.config import StrictModel, validate
from synthgen.errors import DefectNotApplicable
from synthgen.part import Part
from synthgen.registry import Registry


class DefectConfig(StrictModel):
    """Settings shared by every defect type.

    Attributes:
        regions: names of the face regions the defect may be placed on (None: anywhere).
    """

    regions: list[str] | None = None


class DefectType(ABC):
    """Base class of defect types. Subclasses set `name` and `Config` and implement both
    methods; `apply` must label the faces it changed in the new Part's `face_defect`
    with the new record's instance number."""

    name: ClassVar[str]
    Config: ClassVar[type[DefectConfig]] = DefectConfig

    def __init__(self, config: DefectConfig | None = None):
        self.config = config if config is not None else self.Config()

    @abstractmethod
    def sample(
        self, part: Part, rng: np.random.Generator, face_weights: np.ndarray | None = None
    ) -> dict[str, Any]:
        """Draw this defect's parameters for `part` from the configured ranges.

        Args:
            part: the part to place the defect on.
            rng: this sample's generator; every number is drawn from it.
            face_weights: (F,) non-negative weight of each face of `part` for placing the
                defect, e.g. each face's pixel count in the view (so the defect lands where
                the camera sees it); None places it anywhere, area-weighted.

        Returns:
            A JSON-ready dict (floats and lists of floats) that `apply` accepts.

        Raises:
            DefectNotApplicable: the part cannot take this defect (for example no face in
                the configured regions, or no notch).
        """

    @abstractmethod
    def apply(self, part: Part, params: Mapping[str, Any]) -> Part:
        """Return a new Part with the defect applied and its DefectRecord appended."""


DEFECTS: Registry[type[DefectType]] = Registry("defect type")


def register_defect(name: str):
    """Class decorator: registers a DefectType subclass under `name` and sets its name."""

    def add(cls: type[DefectType]) -> type[DefectType]:
        cls.name = name
        DEFECTS.register(name)(cls)
        return cls

    return add


def make_defect(name: str, **config: Any) -> DefectType:
    """A configured defect of type `name`; a ConfigError names any bad setting."""
    cls = DEFECTS.get(name)
    return cls(validate(cls.Config, config, source=f"defect {name}: "))


def check_face_weights(part: Part, face_weights: np.ndarray) -> np.ndarray:
    """`face_weights` as (F,) float64, checked against the part's face count."""
    weights = np.asarray(face_weights, dtype=np.float64)
    if weights.shape != (len(part.mesh.faces),) or (weights < 0).any():
        raise ValueError(
            f"face_weights must be ({len(part.mesh.faces)},) and non-negative, "
            f"got shape {weights.shape}"
        )
    return weights


def sample_surface_point(
    part: Part,
    regions: list[str] | None,
    rng: np.random.Generator,
    defect: str,
    face_weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """A random point on the faces of `regions`: a face drawn with probability proportional
    to its area (or to `face_weights` when given), then a uniform point on it.

    Args:
        face_weights: (F,) non-negative weights replacing the face areas (e.g. visible
            pixel counts).

    Returns:
        point (3,) mm, unit outward face normal (3,), face index.

    Raises:
        DefectNotApplicable: the regions hold no face of positive area (or weight).
    """
    faces = part.region_faces(regions)
    if face_weights is None:
        weights = part.mesh.area_faces[faces]
    else:
        weights = check_face_weights(part, face_weights)[faces] * (
            part.mesh.area_faces[faces] > 0
        )
    if len(faces) == 0 or weights.sum() <= 0:
        where = f"regions {regions}" if regions else "its surface"
        seen = " seen by the camera" if face_weights is not None else ""
        raise DefectNotApplicable(f"{defect}: {part.product} has no face{seen} in {where}")
    face = int(faces[rng.choice(len(faces), p=weights / weights.sum())])
    # Uniform barycentric point on the triangle.
    u, v = rng.uniform(size=2)
    if u + v > 1.0:
        u, v = 1.0 - u, 1.0 - v
    a, b, c = part.mesh.vertices[part.mesh.faces[face]]
    point = a + u * (b - a) + v * (c - a)
    normal = np.asarray(part.mesh.face_normals[face], dtype=np.float64)
    return point, normal, face

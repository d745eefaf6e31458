"""`short_notch`: the product's notch made shorter, as a product rebuilt with other params.

The nominal part is rebuilt with the notch length reduced by L, the part's earlier defects
are replayed on it in order (so they survive, with their records recomputed on the new
mesh), and the faces in the notch box between the new and the old closed end (the
filled-in slice) are labelled with the new instance. The Part keeps its nominal params and
notch, so its nominal twin is still the part as designed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from synthgen.config import Range, uniform, within
from synthgen.defects.base import (
    DEFECTS,
    DefectConfig,
    DefectType,
    check_face_weights,
    register_defect,
)
from synthgen.defects.labelling import as_list, finish, next_instance
from synthgen.errors import ConfigError, DefectNotApplicable
from synthgen.part import Notch, Part


def _notch(part: Part) -> Notch:
    if part.notch is None:
        raise DefectNotApplicable(f"short_notch: product {part.product!r} has no notch")
    if any(rec.type == "short_notch" for rec in part.records):
        raise DefectNotApplicable(
            f"short_notch: the notch of {part.product!r} was already shortened once"
        )
    return part.notch


def _slice_corners(notch: Notch, start: float, stop: float) -> np.ndarray:
    """(8, 3) mm, corners of the notch box between `start` and `stop` along its length."""
    axes = np.asarray(notch.axes, dtype=np.float64)
    grid = np.array(np.meshgrid([start, stop], [-notch.width / 2, notch.width / 2],
                                [0.0, notch.depth], indexing="ij")).reshape(3, -1).T
    return np.asarray(notch.open_end) + grid @ axes


def rebuild(part: Part, length_param: str, new_length: float) -> Part:
    """The nominal product rebuilt with `length_param` = `new_length`, earlier defects
    replayed in order."""
    from synthgen.products.base import build_product  # products import defects' users

    params = {**part.params, length_param: new_length}
    try:
        rebuilt = build_product(part.product, params)
    except ConfigError as error:
        raise DefectNotApplicable(
            f"short_notch: {part.product!r} cannot be rebuilt with {length_param}="
            f"{new_length:.4g} mm: {error}"
        ) from None
    for record in part.records:
        rebuilt = DEFECTS.get(record.type)().apply(rebuilt, record.params)
    return rebuilt


@register_defect("short_notch")
class ShortNotch(DefectType):
    """The notch ends `length` mm short of nominal: its closed end moves toward the open end.

    Params: location [x, y, z] mm (middle of the filled slice, on the surface), normal
    (outward, −depth axis of the notch), length mm (L, removed notch length), notch_length
    mm (nominal notch length), min_remaining mm (shortest notch allowed).
    """

    class Config(DefectConfig):
        """Attributes:
        length: mm removed from the notch's length.
        min_remaining: mm, shortest notch that may remain.
        """

        length: Range = (0.5, 2.0)
        min_remaining: float = Field(0.5, ge=0.0, le=1000.0)

        _length = field_validator("length")(within(0.001, 1000.0))


    def sample(
        self, part: Part, rng: np.random.Generator, face_weights: np.ndarray | None = None
    ) -> dict[str, Any]:
        notch = _notch(part)
        regions = self.config.regions
        if regions is not None:
            faces = part.region_faces(regions)
            centres = part.mesh.triangles_center[faces]
            if not notch.box_contains(centres, 0.0, notch.length).any():
                raise DefectNotApplicable(
                    f"short_notch: the notch of {part.product!r} is not in regions {regions}"
                )
        if face_weights is not None:
            seen = check_face_weights(part, face_weights) > 0
            centres = part.mesh.triangles_center[seen]
            if not notch.box_contains(centres, 0.0, notch.length).any():
                raise DefectNotApplicable(
                    f"short_notch: the notch of {part.product!r} is not seen by the camera"
                )
        low, high = self.config.length
        most = notch.length - self.config.min_remaining
        if low > most:
            raise DefectNotApplicable(
                f"short_notch: the notch of {part.product!r} is {notch.length:.3g} mm long; "
                f"removing {low:.3g} mm would leave less than {self.config.min_remaining:.3g} mm"
            )
        length = uniform(rng, (low, min(high, most)))
        axes = np.asarray(notch.axes, dtype=np.float64)
        location = np.asarray(notch.open_end) + axes[0] * (notch.length - length / 2)
        return {
            "location": as_list(location),
            "normal": as_list(-axes[2]),
            "length": length,
            "notch_length": float(notch.length),
            "min_remaining": float(self.config.min_remaining),
        }

    def apply(self, part: Part, params: Mapping[str, Any]) -> Part:
        notch = _notch(part)
        length = float(params["length"])
        remaining = notch.length - length
        if not length > 0 or remaining < float(params.get("min_remaining", 0.0)) or remaining <= 0:
            raise DefectNotApplicable(
                f"short_notch: removing {length:.4g} mm from the {notch.length:.4g} mm notch of "
                f"{part.product!r} would leave less than the minimum notch"
            )
        current = float(part.params.get(notch.length_param, notch.length))
        rebuilt = rebuild(part, notch.length_param, current - length)
        mesh = rebuilt.mesh
        # Faces wholly inside the filled slice; a face that also spans untouched surface
        # beside the notch is left to the renderer's surface comparison, which labels
        # only its part that differs from the nominal twin.
        corners = mesh.vertices[mesh.faces].reshape(-1, 3)
        inside = notch.box_contains(corners, remaining, notch.length).reshape(-1, 3)
        filled = inside.all(axis=1)
        face_defect = np.where(filled, next_instance(part), rebuilt.face_defect).astype(np.int16)
        ids = np.unique(mesh.faces[filled])
        changed = np.concatenate(
            [mesh.vertices[ids], _slice_corners(notch, remaining, notch.length)]
        )
        # Keep the nominal params and notch (the nominal twin), take the replayed records.
        base = replace(part, records=rebuilt.records)
        return finish(
            base, mesh, rebuilt.face_region, face_defect, defect=self.name,
            params=dict(params), size_mm=length, changed_points=changed,
        )

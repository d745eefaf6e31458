"""capped_bottle: a PET-style bottle closed by a knurled screw cap with a slot in its skirt.

A solid of revolution (flat bottom with a rounded base edge, cylindrical body, cosine-shaped
shoulder, neck with a support ring, cap with a rounded top edge), with `rib_count` small
vertical ribs around the cap skirt and a rectangular slot cut into the cap skirt from its
bottom edge upward, centred on +X. Defaults are a 0.5 l bottle with a 30 mm cap.

Frame: mm, +Z up (cap on top), centre of the bounding box at the origin.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from synthgen.config import StrictModel
from synthgen.part import Part
from synthgen.products.base import register_product
from synthgen.products.shapes import (
    Profile,
    Solid,
    arc_steps,
    combine,
    concatenate,
    finish_part,
    grid_levels,
    params_key,
    prism,
    revolve,
    rotated_z,
    slot_cutter,
    slot_notch,
    uniform_levels,
)

REGIONS = (
    "bottom", "body", "shoulder", "neck", "support_ring", "cap_rim", "cap_side", "cap_top",
    "notch",
)  # fmt: skip
BOTTOM, BODY, SHOULDER, NECK, RING, CAP_RIM, CAP_SIDE, CAP_TOP, NOTCH = range(len(REGIONS))
BODY_ROW_MM = 6.0
"""Tallest row of the body's cylinder (mm)."""
BASE_ROW_MM = 4.0
"""Widest ring of the flat base (mm)."""
ROW_MM = 1.5  # target row height of the cap skirt, so a notch cut stays local
SHOULDER_STEPS = 24
ARC_STEPS_PER_QUARTER = 8


class CappedBottleParams(StrictModel):
    """Dimensions of a capped bottle (mm unless stated)."""

    body_diameter: float = Field(65.0, ge=20.0, le=200.0, description="body diameter (mm)")
    body_height: float = Field(
        115.0, ge=10.0, le=400.0, description="height of the body, base to shoulder (mm)"
    )
    base_radius: float = Field(
        8.0, ge=0.5, le=50.0, description="radius of the rounded base edge (mm)"
    )
    shoulder_height: float = Field(
        50.0, ge=5.0, le=200.0, description="height of the shoulder, body to neck (mm)"
    )
    neck_diameter: float = Field(25.0, ge=8.0, le=100.0, description="neck diameter (mm)")
    neck_height: float = Field(
        12.0, ge=3.0, le=80.0, description="visible neck height, shoulder to cap (mm)"
    )
    ring_diameter: float = Field(
        33.0, ge=9.0, le=120.0, description="outer diameter of the neck support ring (mm)"
    )
    ring_thickness: float = Field(
        1.5, ge=0.3, le=10.0, description="axial thickness of the support ring (mm)"
    )
    ring_gap: float = Field(
        2.5, ge=0.5, le=30.0, description="gap from the ring's top to the cap's bottom (mm)"
    )
    cap_diameter: float = Field(
        30.0, ge=10.0, le=110.0, description="cap diameter, ribs excluded (mm)"
    )
    cap_height: float = Field(17.0, ge=4.0, le=60.0, description="cap height (mm)")
    cap_edge_radius: float = Field(
        1.5, ge=0.2, le=10.0, description="radius of the cap's rounded top edge (mm)"
    )
    rib_count: int = Field(
        60, ge=0, le=150, description="number of knurl ribs around the cap skirt (count)"
    )
    rib_height: float = Field(
        0.5, ge=0.1, le=3.0, description="radial height of a rib above the skirt (mm)"
    )
    rib_width: float = Field(0.8, ge=0.2, le=5.0, description="width of a rib (mm)")
    notch_length: float = Field(
        6.0, ge=0.5, le=55.0, description="length of the slot from the cap's bottom up (mm)"
    )
    notch_width: float = Field(3.0, ge=0.3, le=50.0, description="width of the slot (mm)")
    notch_depth: float = Field(
        1.5, ge=0.1, le=40.0, description="depth of the slot into the cap skirt (mm)"
    )
    segments: int = Field(72, ge=24, le=256, description="facets around the axis (count)")

    @model_validator(mode="after")
    def _check(self) -> CappedBottleParams:
        problems = _problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _problems(p: CappedBottleParams) -> list[str]:
    """Cross-field problems of the parameters, one sentence each (empty when valid)."""
    out = []
    if p.base_radius >= min(p.body_diameter / 2, p.body_height):
        out.append("base_radius must be less than body_diameter / 2 and body_height")
    if p.neck_diameter >= p.body_diameter:
        out.append("neck_diameter must be less than body_diameter")
    if p.ring_diameter <= p.neck_diameter:
        out.append("ring_diameter must be greater than neck_diameter")
    if p.ring_gap + p.ring_thickness > p.neck_height - 0.5:
        out.append("ring_gap + ring_thickness must be at most neck_height - 0.5 mm")
    if p.notch_depth > (p.cap_diameter - p.neck_diameter) / 2 - 0.2:
        out.append(
            "notch_depth must be at most (cap_diameter - neck_diameter) / 2 - 0.2 mm "
            f"= {(p.cap_diameter - p.neck_diameter) / 2 - 0.2:.3g} mm (the slot must not "
            "reach the neck)"
        )
    if p.cap_edge_radius > min(p.cap_diameter, p.cap_height) / 2 - 0.5:
        out.append("cap_edge_radius must be at most min(cap_diameter, cap_height) / 2 - 0.5 mm")
    elif p.notch_length > p.cap_height - p.cap_edge_radius - 0.5:
        out.append(
            "notch_length must be at most cap_height - cap_edge_radius - 0.5 mm "
            f"= {p.cap_height - p.cap_edge_radius - 0.5:.3g} mm"
        )
    if p.notch_width > p.cap_diameter / 2:
        out.append("notch_width must be at most cap_diameter / 2")
    if p.rib_count * p.rib_width > 0.8 * math.pi * p.cap_diameter:
        out.append("rib_count * rib_width must be at most 80 % of the cap's circumference")
    return out


def _levels(p: CappedBottleParams) -> dict[str, float]:
    """Key heights (mm, z up from the bottom)."""
    shoulder = p.body_height + p.shoulder_height
    cap = shoulder + p.neck_height
    return {
        "shoulder": shoulder,
        "ring": cap - p.ring_gap - p.ring_thickness,
        "cap": cap,
        "edge": cap + p.cap_height - p.cap_edge_radius,
        "top": cap + p.cap_height,
    }


def _body(p: CappedBottleParams) -> tuple[Solid, float]:
    """The bottle and cap as one revolved solid, and the cap skirt's row height (mm)."""
    z = _levels(p)
    rb, rn, rc = p.body_diameter / 2, p.neck_diameter / 2, p.cap_diameter / 2
    f, e = p.base_radius, p.cap_edge_radius
    s = np.arange(1, SHOULDER_STEPS + 1) / SHOULDER_STEPS
    shoulder = np.stack(
        [rn + (rb - rn) * (1 + np.cos(np.pi * s)) / 2, p.body_height + p.shoulder_height * s],
        axis=1,
    )
    shoulder[-1] = (rn, z["shoulder"])
    skirt = uniform_levels(z["cap"], z["edge"], ROW_MM)
    # Rows on the flat base and the body keep their triangles compact (no 100 mm slivers),
    # so local refinement for a bulge or dent stays local.
    profile = Profile(0.0, 0.0).line(rb - f, 0.0, BOTTOM, math.ceil((rb - f) / BASE_ROW_MM))
    profile.arc((rb - f, f), f, 0.0, (rb, f), BODY, arc_steps(90, ARC_STEPS_PER_QUARTER))
    body_rows = math.ceil((p.body_height - f) / BODY_ROW_MM)
    profile.line(rb, p.body_height, BODY, body_rows).to(shoulder, SHOULDER)
    profile.line(rn, z["ring"], NECK).line(p.ring_diameter / 2, z["ring"], RING)
    profile.line(p.ring_diameter / 2, z["ring"] + p.ring_thickness, RING)
    profile.line(rn, z["ring"] + p.ring_thickness, RING).line(rn, z["cap"], NECK)
    profile.line(rc, z["cap"], CAP_RIM).vertical(rc, skirt[1:], CAP_SIDE)
    profile.arc(
        (rc - e, z["edge"]),
        e,
        90.0,
        (rc - e, z["top"]),
        CAP_TOP,
        arc_steps(90, ARC_STEPS_PER_QUARTER),
    )
    profile.line(0.0, z["top"], CAP_TOP)
    points, labels = profile.close(CAP_TOP)
    return revolve(points, labels, p.segments), float(skirt[1] - skirt[0])


@functools.lru_cache(maxsize=4)
def _unnotched(key: tuple[tuple[str, Any], ...]) -> tuple[Solid, float]:
    """The bottle with its ribbed cap before the slot is cut, and the skirt's row height.

    Memoised on every parameter but the slot's length and depth, so a short_notch defect,
    which rebuilds the product with a shorter slot, costs one boolean instead of a build.
    """
    params = CappedBottleParams.model_construct(**dict(key))
    solid, row = _body(params)
    if params.rib_count:
        solid = combine(solid, _ribs(params, row), "union")
    return solid, row


def _ribs(p: CappedBottleParams, row: float) -> Solid:
    """The knurl ribs, one prism each, centred between ribs at angle 0 (the slot's side).

    Ribs within reach of the slot get rows on the skirt's grid, so that shortening the slot
    changes them only near its closed end.
    """
    z = _levels(p)
    rc = p.cap_diameter / 2
    x_in = rc * math.cos(math.pi / p.segments) - min(0.2, p.rib_height)
    half = p.rib_width / 2
    outline = np.array([[x_in, -half], [rc + p.rib_height, -half],
                        [rc + p.rib_height, half], [x_in, half]])  # fmt: skip
    plain = np.array([z["cap"], z["edge"]])
    rowed = np.concatenate([[z["cap"]], grid_levels(z["cap"], row, z["edge"])])
    ribs = []
    for k in range(p.rib_count):
        angle = 360.0 * (k + 0.5) / p.rib_count
        near = abs(rc * math.sin(math.radians(angle))) < p.notch_width / 2 + p.rib_width + 1
        near = near and math.cos(math.radians(angle)) > 0
        rib = prism(outline, rowed if near else plain, CAP_SIDE, CAP_RIM, CAP_SIDE)
        ribs.append(rotated_z(rib, angle))
    return concatenate(ribs)


@register_product(
    "capped_bottle",
    CappedBottleParams,
    "PET-style bottle with a knurled screw cap that has a slot in its skirt",
    defect_presets={  # sizes visible when the whole 194 mm bottle fills a 256 px frame
        "bulge": {"radius": [4.0, 10.0], "height": [1.0, 3.0]},
        "dent": {"radius": [4.0, 10.0], "depth": [1.0, 3.0]},
        "chip": {"width": [2.0, 5.0], "depth": [1.0, 2.5]},
        "hole": {"diameter": [2.0, 6.0], "depth": [1.0, 3.0]},
        "crack": {"width": [0.4, 1.0], "depth": [0.5, 1.5], "length": [10.0, 30.0]},
        "scratch": {"width": [0.6, 1.5], "depth": [0.1, 0.3], "length": [15.0, 40.0]},
        "short_notch": {"length": [1.5, 4.0]},
    },
)
def build_capped_bottle(params: CappedBottleParams) -> Part:
    """Build the nominal capped bottle.

    Regions: bottom (flat base), body (cylinder and rounded base edge), shoulder, neck,
    support_ring, cap_rim (the cap's bottom annulus and rib ends), cap_side (skirt and
    ribs), cap_top (top and rounded edge), notch (slot walls, floor and closed end).

    Args:
        params: validated dimensions.

    Returns:
        The Part, mm, +Z up, bounding box centred on the origin, with `notch` set: open end
        at the cap's bottom edge on +X, running up +Z, cut toward -X. The notch box starts at
        the ribs' outer radius when the cap has ribs, so its depth is notch_depth plus
        rib_height.
    """
    solid, row = _unnotched(params_key(params, exclude=("notch_length", "notch_depth")))
    cap = _levels(params)["cap"]
    rc = params.cap_diameter / 2
    outer = params.rib_height if params.rib_count else 0.0
    below = min(0.5, params.ring_gap / 2)
    levels = np.concatenate([[cap - below], grid_levels(cap, row, cap + params.notch_length)])
    cutter = slot_cutter(
        rc - params.notch_depth, rc + outer + 1.0, params.notch_width, levels, NOTCH
    )
    solid = combine(solid, cutter, "difference")
    notch = slot_notch(
        np.array([rc + outer, 0.0, cap]),
        params.notch_length,
        params.notch_width,
        params.notch_depth + outer,
        "notch_length",
    )
    return finish_part(solid, REGIONS, "capped_bottle", params.model_dump(), notch)

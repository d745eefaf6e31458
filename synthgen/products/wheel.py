"""wheel: a cast automotive-style wheel: rim barrel with flanges, spokes, and a bolted hub.

The rim is a revolved cross-section (inboard and outboard flanges with rounded tips, bead
seats and a drop well); `spoke_count` straight tapered spokes join it to a hub disc near the
outboard face; the hub has a centre bore and `bolt_count` bolt holes on a pitch circle.
Defaults are a 17 × 7.5 inch wheel with a 5 × 112 bolt pattern.

Frame: mm, wheel axis along Z with the outboard (visible) face toward +Z, bounding-box
centre at the origin; a spoke is centred at angle 0 (+X).
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field, model_validator

from synthgen.config import StrictModel
from synthgen.part import Part
from synthgen.products.base import register_product
from synthgen.products.shapes import (
    Profile,
    Solid,
    combine,
    concatenate,
    finish_part,
    prism,
    regular_polygon,
    revolve,
    rotated_z,
)

REGIONS = ("rim", "spokes", "hub", "bore", "bolt_holes")
RIM, SPOKES, HUB, BORE, BOLT_HOLES = range(len(REGIONS))
WELL = (0.2, 0.55)  # drop well start and end, as fractions of the rim width from inboard
LIP_STEPS = 8
SPOKE_END_STEPS = 6
HOLE_SEGMENTS = 32


class WheelParams(StrictModel):
    """Dimensions of a wheel (mm unless stated)."""

    rim_diameter: float = Field(
        431.8, ge=250.0, le=560.0, description="bead seat diameter (mm); 17 in = 431.8 mm"
    )
    rim_width: float = Field(
        190.5, ge=100.0, le=330.0, description="width between the flanges (mm)"
    )
    flange_height: float = Field(
        17.5, ge=8.0, le=30.0, description="flange height above the bead seat (mm)"
    )
    barrel_thickness: float = Field(
        6.0, ge=3.0, le=15.0, description="wall thickness of barrel and flanges (mm)"
    )
    well_depth: float = Field(
        20.0, ge=5.0, le=40.0, description="depth of the drop well below the bead seat (mm)"
    )
    spoke_count: int = Field(5, ge=3, le=20, description="number of spokes (count)")
    spoke_width: float = Field(
        36.0, ge=8.0, le=120.0, description="spoke width where it meets the hub (mm)"
    )
    spoke_rim_width: float = Field(
        56.0, ge=8.0, le=160.0, description="spoke width where it meets the rim (mm)"
    )
    spoke_thickness: float = Field(
        24.0, ge=6.0, le=80.0, description="axial thickness of the spokes (mm)"
    )
    face_inset: float = Field(
        25.0,
        ge=2.0,
        le=150.0,
        description="axial distance from the outboard flange tip to the spoke face (mm)",
    )
    hub_diameter: float = Field(170.0, ge=80.0, le=320.0, description="hub diameter (mm)")
    hub_thickness: float = Field(
        32.0, ge=8.0, le=120.0, description="axial thickness of the hub (mm)"
    )
    center_bore_diameter: float = Field(
        66.6, ge=30.0, le=160.0, description="centre bore diameter (mm)"
    )
    bolt_count: int = Field(5, ge=3, le=10, description="number of bolt holes (count)")
    bolt_circle_diameter: float = Field(
        112.0, ge=70.0, le=250.0, description="pitch circle diameter of the bolt holes (mm)"
    )
    bolt_hole_diameter: float = Field(15.0, ge=6.0, le=30.0, description="bolt hole diameter (mm)")
    segments: int = Field(96, ge=24, le=256, description="facets around the axis (count)")

    @model_validator(mode="after")
    def _check(self) -> WheelParams:
        problems = _problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _problems(p: WheelParams) -> list[str]:
    """Cross-field problems of the parameters, one sentence each (empty when valid)."""
    out = []
    z = _heights(p)
    hub_r = p.hub_diameter / 2
    if hub_r > p.rim_diameter / 2 - p.barrel_thickness - p.well_depth - 10:
        out.append(
            "hub_diameter must leave 10 mm to the drop well (rim_diameter, "
            "barrel_thickness, well_depth)"
        )
    if z["spoke"] < z["seat"]:
        out.append(
            f"face_inset + spoke_thickness must be at most {z['top'] - z['seat']:.4g} mm so "
            "the spokes meet the outboard bead seat (set by rim_width, well_depth)"
        )
    if z["face"] - p.hub_thickness < 0:
        out.append("face_inset + hub_thickness must be at most the wheel's overall width")
    bolts_out = (p.bolt_circle_diameter + p.bolt_hole_diameter) / 2
    bolts_in = (p.bolt_circle_diameter - p.bolt_hole_diameter) / 2
    if bolts_in < p.center_bore_diameter / 2 + 3:
        out.append(
            "bolt_circle_diameter - bolt_hole_diameter must exceed center_bore_diameter + 6 mm"
        )
    spacing = 2 * (p.bolt_circle_diameter / 2) * math.sin(math.pi / p.bolt_count)
    if spacing < p.bolt_hole_diameter + 3:
        out.append(
            "bolt holes overlap: raise bolt_circle_diameter or lower bolt_count or "
            "bolt_hole_diameter"
        )
    if p.spoke_width / 2 > hub_r - 3:
        out.append("spoke_width must be at most hub_diameter - 6 mm")
    elif _spoke_start(p) < bolts_out + 2:
        out.append(
            "spokes would cut the bolt holes: bolt_circle_diameter + "
            "bolt_hole_diameter must leave room inside hub_diameter for spoke_width"
        )
    elif 2 * math.atan2(p.spoke_width / 2, _spoke_start(p)) > 0.9 * 2 * math.pi / p.spoke_count:
        out.append("spokes overlap at the hub: lower spoke_count or spoke_width")
    rim_r = p.rim_diameter / 2 - p.barrel_thickness / 2
    if p.spoke_rim_width / 2 > rim_r * math.sin(0.45 * math.pi / p.spoke_count):
        out.append("spokes overlap at the rim: lower spoke_count or spoke_rim_width")
    return out


def _heights(p: WheelParams) -> dict[str, float]:
    """Key heights (mm, z up from the inboard flange's outer face)."""
    t, w = p.barrel_thickness, p.rim_width
    top = w + 2 * t
    face = top - p.face_inset
    return {
        "top": top,
        "well": t + WELL[0] * w,
        "seat": t + WELL[1] * w + p.well_depth,
        "face": face,
        "spoke": face - p.spoke_thickness,
    }


def _spoke_start(p: WheelParams) -> float:
    """mm, radius of the spoke's inner end (its corners 2 mm inside the hub's edge)."""
    return math.sqrt((p.hub_diameter / 2 - 2) ** 2 - (p.spoke_width / 2) ** 2)


def _rim(p: WheelParams) -> Solid:
    """The revolved rim: flanges with rounded tips, bead seats, drop well."""
    z = _heights(p)
    r, t, fl, d = p.rim_diameter / 2, p.barrel_thickness, p.flange_height, p.well_depth
    tip, lip = r + fl, t / 2
    well_end = z["seat"] - d
    profile = Profile(r - t, 0.0).line(tip, 0.0, RIM)
    profile.arc((tip, lip), lip, 90.0, (tip, t), RIM, LIP_STEPS)
    profile.line(r, t, RIM).line(r, z["well"], RIM).line(r - d, z["well"] + d, RIM)
    profile.line(r - d, well_end, RIM).line(r, z["seat"], RIM).line(r, z["top"] - t, RIM)
    profile.line(tip, z["top"] - t, RIM)
    profile.arc((tip, z["top"] - lip), lip, 90.0, (tip, z["top"]), RIM, LIP_STEPS)
    profile.line(r - t, z["top"], RIM).line(r - t, z["seat"], RIM)
    profile.line(r - t - d, well_end, RIM).line(r - t - d, z["well"] + d, RIM)
    profile.line(r - t, z["well"], RIM)
    points, labels = profile.close(RIM)
    return revolve(points, labels, p.segments)


def _hub(p: WheelParams) -> Solid:
    """The hub disc with its centre bore, outboard face at the spoke face."""
    z = _heights(p)
    rb, rh = p.center_bore_diameter / 2, p.hub_diameter / 2
    bottom = z["face"] - p.hub_thickness
    profile = Profile(rb, bottom).line(rh, bottom, HUB).line(rh, z["face"], HUB)
    points, labels = profile.line(rb, z["face"], HUB).close(BORE)
    return revolve(points, labels, p.segments)


def _spokes(p: WheelParams) -> Solid:
    """The spokes: tapered prisms from inside the hub to mid-thickness of the barrel."""
    z = _heights(p)
    r0 = _spoke_start(p)
    end = p.rim_diameter / 2 - p.barrel_thickness / 2
    half = math.asin(p.spoke_rim_width / 2 / end)
    angles = np.linspace(-half, half, SPOKE_END_STEPS + 1)
    outline = np.vstack(
        [
            [[r0, -p.spoke_width / 2]],
            np.stack([end * np.cos(angles), end * np.sin(angles)], axis=1),
            [[r0, p.spoke_width / 2]],
        ]
    )
    spoke = prism(outline, np.array([z["spoke"], z["face"]]), SPOKES, SPOKES, SPOKES)
    return concatenate([rotated_z(spoke, 360.0 * k / p.spoke_count) for k in range(p.spoke_count)])


def _bolt_holes(p: WheelParams) -> Solid:
    """Cylinders through the hub on the pitch circle, between the spokes."""
    z = _heights(p)
    levels = np.array([z["face"] - p.hub_thickness - 1.0, z["face"] + 1.0])
    circle = regular_polygon(p.bolt_hole_diameter / 2, HOLE_SEGMENTS)
    holes = []
    for k in range(p.bolt_count):
        angle = 2 * math.pi * (k + 0.5) / p.bolt_count
        centre = p.bolt_circle_diameter / 2 * np.array([math.cos(angle), math.sin(angle)])
        holes.append(prism(circle + centre, levels, BOLT_HOLES, BOLT_HOLES, BOLT_HOLES))
    return concatenate(holes)


@register_product(
    "wheel",
    WheelParams,
    "cast automotive wheel: flanged rim, spokes, hub with bolt holes",
    defect_presets={  # a 17 in wheel seen whole: casting defects of a few millimetres
        "bulge": {"radius": [10.0, 25.0], "height": [2.0, 6.0]},
        "dent": {"radius": [10.0, 25.0], "depth": [2.0, 6.0]},
        "chip": {"width": [5.0, 12.0], "depth": [2.0, 5.0]},
        "hole": {"diameter": [4.0, 12.0], "depth": [2.0, 6.0]},
        "crack": {"width": [0.8, 2.0], "depth": [1.0, 3.0], "length": [25.0, 70.0]},
        "scratch": {"width": [1.0, 3.0], "depth": [0.2, 0.6], "length": [40.0, 100.0]},
    },
)
def build_wheel(params: WheelParams) -> Part:
    """Build the nominal wheel.

    Regions: rim (barrel and flanges, inside and out), spokes, hub (hub disc faces),
    bore (centre bore wall), bolt_holes (bolt hole walls).

    Args:
        params: validated dimensions.

    Returns:
        The Part, mm, axis along Z, outboard face toward +Z, bounding box centred on the
        origin, no notch.
    """
    solid = combine(_rim(params), _spokes(params), "union")
    solid = combine(solid, _hub(params), "union")
    solid = combine(solid, _bolt_holes(params), "difference")
    return finish_part(solid, REGIONS, "wheel", params.model_dump())

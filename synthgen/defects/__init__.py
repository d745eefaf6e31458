"""Geometric defects. Each module registers one defect type in DEFECTS."""

# Importing the type modules registers them.
from synthgen.defects import bulge, chip, crack, dent, hole, scratch, short_notch  # noqa: F401
from synthgen.defects.base import (
    DEFECTS,
    DefectConfig,
    DefectType,
    make_defect,
    register_defect,
    sample_surface_point,
)

__all__ = [
    "DEFECTS",
    "DefectConfig",
    "DefectType",
    "make_defect",
    "register_defect",
    "sample_surface_point",
]

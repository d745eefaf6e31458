"""The add-on's settings, stored on the scene as `scene.synthgen` (saved with the .blend).

Enum items come from the library's registries (products, defect types, formats); the
randomisation ranges mirror fields of `synthgen.scene.SceneSpec` (`RANGES`), defaults
included, so the panel starts from the library's own defaults.
"""

from __future__ import annotations

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    FloatVectorProperty,
    IntProperty,
    IntVectorProperty,
    PointerProperty,
    StringProperty,
)

from synthgen.defects import DEFECTS
from synthgen.job import FORMATS
from synthgen.products import PRODUCTS, product_defect
from synthgen.scene import SceneSpec

#: (SceneSpec section, field, label): the ranges the panel shows, as [low, high] pairs.
RANGES = (
    ("pose", "yaw_deg", "Yaw (°)"),
    ("pose", "tilt_deg", "Tilt (°)"),
    ("camera", "distance", "Camera distance (× framing)"),
    ("camera", "elevation_deg", "Camera elevation (°)"),
    ("camera", "yfov_deg", "Field of view (°)"),
    ("lighting", "key_intensity", "Key light (W/m²)"),
    ("lighting", "ambient", "Ambient"),
    ("material", "metallic", "Metallic"),
    ("material", "roughness", "Roughness"),
    ("material", "value", "Brightness"),
)

# Enum item lists are kept at module level: Blender needs their strings to stay alive.
PRODUCT_ITEMS = [(name, name.replace("_", " ").title(), f"parametric {name}")
                 for name in PRODUCTS.names() if name != "cad"]
DEFECT_ITEMS = [(name, name.replace("_", " ").title(), f"{name} defect")
                for name in DEFECTS.names()]
FORMAT_ITEMS = [(name, name, f"write the {name} layout") for name in FORMATS]


def range_property(section: str, field: str) -> str:
    """The settings attribute of one SceneSpec range."""
    return f"{section}_{field}"


def _scene_default(section: str, field: str) -> tuple[float, float]:
    return tuple(getattr(getattr(SceneSpec(), section), field))


def preset_product(settings) -> str:
    """The product whose defect presets apply: the picked one, or "cad" for an object."""
    return settings.product_type if settings.product_source == "PARAMETRIC" else "cad"


def fill_defect_params(entry, product: str) -> None:
    """Reset `entry.params` to the product's presets for its defect type."""
    config = product_defect(product, entry.type).config
    entry.params.clear()
    for name, value in config.model_dump().items():
        if name == "regions":
            continue
        param = entry.params.add()
        param.name = name
        if isinstance(value, list | tuple):
            param.is_range, param.low, param.high = True, float(value[0]), float(value[1])
        elif isinstance(value, int | float) and not isinstance(value, bool):
            param.is_range, param.low, param.high = False, float(value), float(value)


def _defect_type_changed(self, context) -> None:
    fill_defect_params(self, preset_product(context.scene.synthgen))


class SynthgenDefectParam(bpy.types.PropertyGroup):
    """One numeric parameter of a defect: a [low, high] range or a single value."""

    is_range: BoolProperty(default=True)
    low: FloatProperty(name="Low", default=0.0, precision=3)
    high: FloatProperty(name="High", default=0.0, precision=3)


class SynthgenDefect(bpy.types.PropertyGroup):
    """One defect type of the recipe with its probability, count and parameters."""

    type: EnumProperty(name="Type", items=DEFECT_ITEMS, update=_defect_type_changed)
    probability: FloatProperty(name="Probability", default=1.0, min=0.0, max=1.0)
    count: IntVectorProperty(name="Count", size=2, default=(1, 1), min=1, max=20)
    regions: StringProperty(name="Regions",
                            description="comma-separated face regions; empty: anywhere")
    params: CollectionProperty(type=SynthgenDefectParam)


def _settings_annotations() -> dict:
    """Property annotations of SynthgenSettings (the ranges are generated from RANGES)."""
    notes = {
        "product_source": EnumProperty(name="Product", items=[
            ("PARAMETRIC", "Parametric", "a parametric product family of synthgen"),
            ("SELECTED", "Selected object", "the active mesh object as the product"),
        ]),
        "product_type": EnumProperty(name="Family", items=PRODUCT_ITEMS),
        "mm_per_unit": FloatProperty(
            name="mm per unit", default=1000.0, min=1e-6,
            description="millimetres per Blender unit (1000: the scene is in metres)"),
        "defects": CollectionProperty(type=SynthgenDefect),
        "defect_index": IntProperty(name="Defect", default=0, min=0),
        "preview_seed": IntProperty(name="Preview seed", default=0, min=0),
        "good_fraction": FloatProperty(name="Good fraction", default=0.3, min=0.0, max=1.0),
        "output_dir": StringProperty(name="Output", subtype="DIR_PATH",
                                     options={"PATH_SUPPORTS_BLEND_RELATIVE"},
                                     default="//synthgen_dataset"),
        "formats": EnumProperty(name="Formats", items=FORMAT_ITEMS, options={"ENUM_FLAG"},
                                default={"mvtec", "coco", "yolo"}),
        "samples": IntProperty(name="Samples", default=20, min=1, max=1_000_000),
        "seed": IntProperty(name="Seed", default=0, min=0),
        "image_size": IntProperty(name="Image size", default=256, min=16, max=8192),
        "resume": BoolProperty(name="Resume", default=False,
                               description="continue a job already started in the folder"),
        "renderer": EnumProperty(name="Renderer", default="blender", items=[
            ("blender", "Blender", "Cycles or Eevee (photoreal)"),
            ("pyrender", "pyrender", "fast OpenGL rasteriser (needs pyrender)"),
        ]),
        "engine": EnumProperty(name="Engine", items=[("cycles", "Cycles", ""),
                                                      ("eevee", "Eevee", "")]),
        "render_samples": IntProperty(name="Render samples", default=32, min=1, max=65536),
        "denoise": BoolProperty(name="Denoise", default=True),
        "device": EnumProperty(name="Device", items=[(d, d.upper(), "") for d in
                                                     ("auto", "cpu", "cuda", "optix")]),
    }
    for section, field, label in RANGES:
        notes[range_property(section, field)] = FloatVectorProperty(
            name=label, size=2, default=_scene_default(section, field), precision=2)
    return notes


SynthgenSettings = type("SynthgenSettings", (bpy.types.PropertyGroup,), {
    "__annotations__": _settings_annotations(),
    "__doc__": "Everything the Synthgen panel edits: product, defects, ranges, output.",
})

CLASSES = (SynthgenDefectParam, SynthgenDefect, SynthgenSettings)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.synthgen = PointerProperty(type=SynthgenSettings)


def unregister() -> None:
    del bpy.types.Scene.synthgen
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)

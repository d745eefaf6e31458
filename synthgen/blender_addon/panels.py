"""The "Synthgen" tab of the 3D viewport's sidebar: product, defects, ranges, output, run."""

from __future__ import annotations

import bpy

from .operators import ORIGINAL_KEY
from .properties import RANGES, range_property


class _SynthgenPanel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Synthgen"


class SYNTHGEN_UL_defects(bpy.types.UIList):
    """The recipe's defect types: type, probability and count per row."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname,
                  index=0, flt_flag=0):
        row = layout.row(align=True)
        row.prop(item, "type", text="", emboss=False)
        row.prop(item, "probability", text="p")


class VIEW3D_PT_synthgen(_SynthgenPanel, bpy.types.Panel):
    """Product: a parametric family or the selected object."""

    bl_label = "Synthgen"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.synthgen
        layout.row().prop(settings, "product_source", expand=True)
        if settings.product_source == "PARAMETRIC":
            row = layout.row(align=True)
            row.prop(settings, "product_type")
            row.operator("synthgen.add_product", text="", icon="ADD")
        else:
            obj = context.active_object
            layout.label(text=f"Object: {obj.name if obj else '(none selected)'}",
                         icon="OBJECT_DATA")
        layout.prop(settings, "mm_per_unit")


class VIEW3D_PT_synthgen_defects(_SynthgenPanel, bpy.types.Panel):
    """Defect types with their parameters; preview one on the selected object."""

    bl_label = "Defects"
    bl_parent_id = "VIEW3D_PT_synthgen"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.synthgen
        row = layout.row()
        row.template_list("SYNTHGEN_UL_defects", "", settings, "defects", settings,
                          "defect_index", rows=3)
        column = row.column(align=True)
        column.operator("synthgen.defect_add", text="", icon="ADD")
        column.operator("synthgen.defect_remove", text="", icon="REMOVE")
        if settings.defects and settings.defect_index < len(settings.defects):
            entry = settings.defects[settings.defect_index]
            box = layout.box()
            box.prop(entry, "type")
            box.prop(entry, "probability")
            box.prop(entry, "count")
            box.prop(entry, "regions")
            for param in entry.params:
                row = box.row(align=True)
                row.label(text=param.name)
                if param.is_range:
                    row.prop(param, "low", text="")
                    row.prop(param, "high", text="")
                else:
                    row.prop(param, "low", text="")
        layout.prop(settings, "preview_seed")
        row = layout.row(align=True)
        row.operator("synthgen.apply_defect", icon="MOD_DISPLACE")
        obj = context.active_object
        if obj is not None and ORIGINAL_KEY in obj:
            row.operator("synthgen.revert_defect", text="Revert", icon="LOOP_BACK")


class VIEW3D_PT_synthgen_ranges(_SynthgenPanel, bpy.types.Panel):
    """Randomisation ranges: [low, high] draws of pose, camera, light and material."""

    bl_label = "Randomisation"
    bl_parent_id = "VIEW3D_PT_synthgen"
    bl_options = {"DEFAULT_CLOSED"}  # noqa: RUF012 (Blender reads a plain set)

    def draw(self, context):
        layout = self.layout
        settings = context.scene.synthgen
        layout.prop(settings, "good_fraction")
        for section, field, _ in RANGES:
            layout.prop(settings, range_property(section, field))


class VIEW3D_PT_synthgen_output(_SynthgenPanel, bpy.types.Panel):
    """Output folder, formats, sample count and renderer; the two run buttons."""

    bl_label = "Output"
    bl_parent_id = "VIEW3D_PT_synthgen"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.synthgen
        layout.prop(settings, "output_dir")
        layout.row().prop(settings, "formats", expand=True)
        row = layout.row(align=True)
        row.prop(settings, "samples")
        row.prop(settings, "seed")
        layout.prop(settings, "image_size")
        layout.prop(settings, "renderer")
        if settings.renderer == "blender":
            column = layout.column(align=True)
            column.prop(settings, "engine")
            column.prop(settings, "render_samples")
            column.prop(settings, "denoise")
            column.prop(settings, "device")
        layout.prop(settings, "resume")
        layout.separator()
        layout.operator("synthgen.render_preview", icon="RENDER_STILL")
        layout.operator("synthgen.generate_dataset", icon="RENDER_ANIMATION")


CLASSES = (
    SYNTHGEN_UL_defects,
    VIEW3D_PT_synthgen,
    VIEW3D_PT_synthgen_defects,
    VIEW3D_PT_synthgen_ranges,
    VIEW3D_PT_synthgen_output,
)

register, unregister = bpy.utils.register_classes_factory(CLASSES)

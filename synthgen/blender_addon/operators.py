"""The panel's operators: product, defect list, defect preview, render preview, dataset.

"Generate dataset" is modal where there is a window (one sample per timer tick, progress in
the status bar and the window-manager progress, Esc cancels between samples) and runs to
the end in `execute` where there is none (background mode, scripts). Both write through
`bridge.DatasetRun`, i.e. the CLI's writers and manifest.

The defect preview replaces the object's mesh by a defective copy and keeps the original
mesh (with a fake user) so "Revert defect preview" restores it exactly; the apply operator
is registered with UNDO, so Ctrl+Z in the UI undoes it as well.
"""

from __future__ import annotations

import json
import logging
import math

import bpy
import numpy as np

from synthgen.errors import SynthgenError

from . import bridge
from .properties import fill_defect_params, preset_product

log = logging.getLogger(__name__)

ORIGINAL_KEY = "synthgen_original_mesh"
PREVIEW_KEY = "synthgen_defect_preview"
PREVIEW_IMAGE = "Synthgen Preview"


class SYNTHGEN_OT_add_product(bpy.types.Operator):
    """Add the chosen parametric product as a mesh object at the 3D cursor"""

    bl_idname = "synthgen.add_product"
    bl_label = "Add Product"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a plain set)

    def execute(self, context):
        settings = context.scene.synthgen
        try:
            part = bridge.build_product(settings.product_type)
        except SynthgenError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        mesh = bridge.mesh_from_part(part, settings.product_type, settings.mm_per_unit)
        mesh[bridge.PRODUCT_KEY] = settings.product_type
        obj = bpy.data.objects.new(settings.product_type, mesh)
        obj[bridge.PRODUCT_KEY] = settings.product_type
        obj.location = context.scene.cursor.location
        context.collection.objects.link(obj)
        for other in context.selected_objects:
            other.select_set(False)
        obj.select_set(True)
        context.view_layer.objects.active = obj
        return {"FINISHED"}


class SYNTHGEN_OT_defect_add(bpy.types.Operator):
    """Add a defect type to the recipe, with the product's preset parameters"""

    bl_idname = "synthgen.defect_add"
    bl_label = "Add Defect"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a plain set)

    type: bpy.props.StringProperty(name="Type", default="")

    def execute(self, context):
        settings = context.scene.synthgen
        entry = settings.defects.add()
        if self.type:
            entry.type = self.type  # fills the parameters through the update callback
        else:
            fill_defect_params(entry, preset_product(settings))
        settings.defect_index = len(settings.defects) - 1
        return {"FINISHED"}


class SYNTHGEN_OT_defect_remove(bpy.types.Operator):
    """Remove the active defect type from the recipe"""

    bl_idname = "synthgen.defect_remove"
    bl_label = "Remove Defect"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a plain set)

    @classmethod
    def poll(cls, context):
        return len(context.scene.synthgen.defects) > 0

    def execute(self, context):
        settings = context.scene.synthgen
        settings.defects.remove(settings.defect_index)
        settings.defect_index = max(0, min(settings.defect_index, len(settings.defects) - 1))
        return {"FINISHED"}


class SYNTHGEN_OT_apply_defect(bpy.types.Operator):
    """Apply the active defect to the selected object as a preview (Revert restores it)"""

    bl_idname = "synthgen.apply_defect"
    bl_label = "Apply Defect Preview"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a plain set)

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return (obj is not None and obj.type == "MESH"
                and len(context.scene.synthgen.defects) > 0)

    def execute(self, context):
        from synthgen.products import product_defect

        settings = context.scene.synthgen
        obj = context.active_object
        entry = settings.defects[settings.defect_index]
        try:
            part = bridge.part_from_object(obj, settings.mm_per_unit)
            params = bridge._defect_entry(entry)
            for key in ("type", "probability", "count"):
                params.pop(key)
            defect = product_defect(part.product, entry.type, **params)
            rng = np.random.default_rng(settings.preview_seed)
            drawn = defect.sample(part, rng)
            defective = defect.apply(part, drawn)
        except SynthgenError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        mesh = bridge.mesh_from_part(defective, f"{obj.data.name}_{entry.type}",
                                     settings.mm_per_unit)
        for material in obj.data.materials:
            mesh.materials.append(material)
        if ORIGINAL_KEY not in obj:  # keep the first original across repeated previews
            obj.data.use_fake_user = True
            obj[ORIGINAL_KEY] = obj.data.name
        old = obj.data
        obj.data = mesh
        if old.name != obj[ORIGINAL_KEY] and old.users == 0:
            bpy.data.meshes.remove(old)
        obj[PREVIEW_KEY] = json.dumps({"type": entry.type, "params": drawn})
        self.report({"INFO"}, f"{entry.type}: {len(defective.mesh.faces)} faces, "
                              f"size {defective.records[-1].size_mm:.2f} mm")
        return {"FINISHED"}


class SYNTHGEN_OT_revert_defect(bpy.types.Operator):
    """Restore the selected object's mesh from before the defect preview"""

    bl_idname = "synthgen.revert_defect"
    bl_label = "Revert Defect Preview"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a plain set)

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return obj is not None and ORIGINAL_KEY in obj

    def execute(self, context):
        obj = context.active_object
        original = bpy.data.meshes.get(obj[ORIGINAL_KEY])
        if original is None:
            self.report({"ERROR"}, f"the original mesh {obj[ORIGINAL_KEY]!r} is gone")
            return {"CANCELLED"}
        preview = obj.data
        obj.data = original
        original.use_fake_user = False
        if preview.users == 0:
            bpy.data.meshes.remove(preview)
        del obj[ORIGINAL_KEY]
        obj.pop(PREVIEW_KEY, None)
        return {"FINISHED"}


def _show_image(name: str, rgb: np.ndarray) -> bpy.types.Image:
    """Put an (H, W, 3) uint8 sRGB array into the Blender image `name` (made or resized)."""
    height, width = rgb.shape[:2]
    image = bpy.data.images.get(name)
    if image is None or tuple(image.size) != (width, height):
        if image is not None:
            bpy.data.images.remove(image)
        image = bpy.data.images.new(name, width, height, alpha=False)
    rgba = np.ones((height, width, 4), dtype=np.float32)
    rgba[..., :3] = rgb[::-1].astype(np.float32) / 255.0  # Blender's row 0 is the bottom
    image.pixels.foreach_set(rgba.ravel())
    image.update()
    return image


class SYNTHGEN_OT_render_preview(bpy.types.Operator):
    """Render one labelled sample of the recipe into the image "Synthgen Preview" (defect
    masks outlined)"""

    bl_idname = "synthgen.render_preview"
    bl_label = "Render Preview"

    def execute(self, context):
        from synthgen.contact_sheet import annotate
        from synthgen.generate import JobRunner

        settings = context.scene.synthgen
        try:
            job = bridge.job_from_settings(context, None)
            runner = JobRunner(job, None)
            try:
                sample = runner.make(settings.preview_seed % job.samples)
            finally:
                runner.close()
        except SynthgenError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        masks = np.array([i.mask for i in sample.instances], dtype=bool).reshape(
            -1, *sample.rgb.shape[:2])
        shown = annotate(sample.rgb, masks, [i.defect_type for i in sample.instances])
        image = _show_image(PREVIEW_IMAGE, shown)
        visible = [i.defect_type for i in sample.instances if i.visible]
        self.report({"INFO"}, f"preview in image {image.name!r}: "
                              f"{', '.join(visible) or 'no visible defect'}")
        return {"FINISHED"}


class SYNTHGEN_OT_generate_dataset(bpy.types.Operator):
    """Render the dataset into the output folder (Esc cancels; what is written stays and
    the job can be resumed)"""

    bl_idname = "synthgen.generate_dataset"
    bl_label = "Generate Dataset"

    _run = None
    _timer = None

    def _start(self, context) -> bool:
        settings = context.scene.synthgen
        try:
            out = bridge.output_path(settings)
            job = bridge.job_from_settings(context, out)
            self._run = bridge.DatasetRun(job, out, settings.resume)
        except SynthgenError as error:
            self.report({"ERROR"}, str(error))
            return False
        return True

    def _finish(self, context, cancelled: bool) -> set[str]:
        run, self._run = self._run, None
        records = run.close()
        text = (f"{'cancelled after' if cancelled else 'made'} {run.made} samples; "
                f"{len(records)}/{run.job.samples} on disk in {run.out}")
        self.report({"WARNING" if cancelled else "INFO"}, text)
        context.scene.synthgen["last_result"] = text
        return {"CANCELLED"} if cancelled else {"FINISHED"}

    def execute(self, context):
        """Without a window: run every sample now."""
        if not self._start(context):
            return {"CANCELLED"}
        try:
            while not self._run.finished:
                self._run.step()
        except SynthgenError as error:
            self.report({"ERROR"}, str(error))
            self._finish(context, cancelled=True)
            return {"CANCELLED"}
        except BaseException:
            self._finish(context, cancelled=True)  # release the renderer, keep what is written
            raise
        return self._finish(context, cancelled=False)

    def invoke(self, context, event):
        if context.window is None:
            return self.execute(context)
        if not self._start(context):
            return {"CANCELLED"}
        wm = context.window_manager
        wm.progress_begin(0, max(self._run.total, 1))
        self._timer = wm.event_timer_add(0.01, window=context.window)
        wm.modal_handler_add(self)
        self._status(context)
        return {"RUNNING_MODAL"}

    def _status(self, context) -> None:
        run = self._run
        percent = math.floor(100 * run.made / max(run.total, 1))
        context.workspace.status_text_set(
            f"Synthgen: sample {run.made}/{run.total} ({percent} %) - Esc to cancel")
        context.window_manager.progress_update(run.made)

    def _stop(self, context, cancelled: bool) -> set[str]:
        wm = context.window_manager
        wm.event_timer_remove(self._timer)
        wm.progress_end()
        context.workspace.status_text_set(None)
        return self._finish(context, cancelled)

    def modal(self, context, event):
        if event.type == "ESC":
            return self._stop(context, cancelled=True)
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        try:
            self._run.step()
        except Exception as error:  # leave no timer or progress bar behind, whatever failed
            if not isinstance(error, SynthgenError):
                log.exception("sample %d failed", self._run.todo[self._run.made])
            self.report({"ERROR"}, str(error))
            return self._stop(context, cancelled=True)
        self._status(context)
        if self._run.finished:
            return self._stop(context, cancelled=False)
        return {"RUNNING_MODAL"}


CLASSES = (
    SYNTHGEN_OT_add_product,
    SYNTHGEN_OT_defect_add,
    SYNTHGEN_OT_defect_remove,
    SYNTHGEN_OT_apply_defect,
    SYNTHGEN_OT_revert_defect,
    SYNTHGEN_OT_render_preview,
    SYNTHGEN_OT_generate_dataset,
)

register, unregister = bpy.utils.register_classes_factory(CLASSES)

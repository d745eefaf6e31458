"""Drives the built add-on inside bpy; run in its own process by test_addon.py.

    BLENDER_USER_RESOURCES=<tmp> python addon_driver.py <zip> <out folder>

Installs the zip as an extension, sets its properties, adds a product and a defect, applies
and reverts the defect preview (and records whether Blender's own undo can run here), runs
both operators, reads back what the dataset holds, disables the extension, then does the
same install / enable / disable as a legacy add-on. Prints one JSON line, the results.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import bpy  # first: it puts Blender's own modules (addon_utils) on sys.path
import numpy as np

MODULE = "bl_ext.user_default.synthgen_blender"


def _mesh_signature(mesh) -> list[float]:
    co = np.empty(len(mesh.vertices) * 3)
    mesh.vertices.foreach_get("co", co)
    return [len(mesh.vertices), len(mesh.polygons), float(np.round(co.sum(), 6))]


def _registered() -> dict:
    return {"scene_prop": hasattr(bpy.types.Scene, "synthgen"),
            "operator": hasattr(bpy.types, "SYNTHGEN_OT_generate_dataset"),
            "panel": hasattr(bpy.types, "VIEW3D_PT_synthgen"),
            "vendor_on_path": any(p.endswith("_vendor") for p in sys.path)}


def _defect_preview(result: dict) -> None:
    settings = bpy.context.scene.synthgen
    bpy.ops.synthgen.add_product()
    obj = bpy.context.active_object
    before = _mesh_signature(obj.data)
    settings.defect_index = 0
    result["apply"] = sorted(bpy.ops.synthgen.apply_defect())
    result["applied_changed"] = _mesh_signature(obj.data) != before
    result["preview_record"] = json.loads(obj.get("synthgen_defect_preview", "{}")).get("type")
    try:
        bpy.ops.ed.undo_push(message="synthgen test")
        bpy.ops.ed.undo()
        result["ed_undo"] = "ran"
    except RuntimeError as error:
        result["ed_undo"] = str(error).splitlines()[0]
    result["revert"] = sorted(bpy.ops.synthgen.revert_defect())
    result["reverted_equal"] = _mesh_signature(obj.data) == before
    result["meshes_after_revert"] = sorted(m.name for m in bpy.data.meshes)


def _dataset(out: Path, result: dict) -> None:
    settings = bpy.context.scene.synthgen
    settings.output_dir = str(out)
    settings.samples, settings.seed, settings.image_size = 3, 7, 48
    settings.render_samples, settings.denoise, settings.device = 2, False, "cpu"
    settings.good_fraction = 0.0
    settings.formats = {"mvtec", "coco", "yolo"}
    result["preview"] = sorted(bpy.ops.synthgen.render_preview())
    image = bpy.data.images.get("Synthgen Preview")
    pixels = np.empty(48 * 48 * 4, dtype=np.float32)
    image.pixels.foreach_get(pixels)
    result["preview_image"] = [list(image.size), float(pixels.reshape(-1, 4)[:, :3].std())]
    result["generate"] = sorted(bpy.ops.synthgen.generate_dataset("INVOKE_DEFAULT"))
    manifest = json.loads((out / "manifest.json").read_text())
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    result["manifest"] = {"complete": manifest["complete"],
                          "renderer": manifest["recipe"]["render"]["renderer"],
                          "blender": manifest["recipe"]["render"].get("blender"),
                          "records": len(records),
                          "defects": [d["type"] for r in records for d in r["defects"]]}
    result["files"] = sorted(str(p.relative_to(out)) for p in out.rglob("*")
                             if p.is_file() and ".parts" not in p.parts)


def _selected_preview(result: dict) -> None:
    settings = bpy.context.scene.synthgen
    settings.product_source = "SELECTED"
    result["preview_selected"] = sorted(bpy.ops.synthgen.render_preview())
    settings.product_source = "PARAMETRIC"


def main() -> None:
    import addon_utils

    zip_path, out = sys.argv[1], Path(sys.argv[2])
    result: dict = {}
    bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                             enable_on_install=True)
    result["extension_enabled"] = MODULE in bpy.context.preferences.addons
    result["registered"] = _registered()
    settings = bpy.context.scene.synthgen
    settings.product_type = "bottle_cap"
    bpy.ops.synthgen.defect_add(type="dent")
    result["defect_params"] = {p.name: [p.low, p.high] for p in settings.defects[0].params}
    _defect_preview(result)
    _dataset(out, result)
    _selected_preview(result)
    import synthgen

    result["synthgen_from"] = synthgen.__file__
    bpy.ops.preferences.addon_disable(module=MODULE)
    result["after_disable"] = _registered()
    bpy.ops.preferences.addon_install(filepath=zip_path)
    addon_utils.enable("synthgen_blender", default_set=True)
    result["legacy_registered"] = _registered()
    addon_utils.disable("synthgen_blender", default_set=True)
    result["legacy_after_disable"] = _registered()
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()

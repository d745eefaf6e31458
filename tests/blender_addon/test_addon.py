"""The Blender add-on: the zip's layout, what it bundles, and the installed add-on at work.

The bpy part runs `addon_driver.py` in its own process (bpy can be imported once per
process, and installing add-ons changes global Blender state) with a throw-away Blender
user folder, and checks the JSON it prints.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("addon_driver.py")


def _build_module():
    spec = importlib.util.spec_from_file_location("build_addon", ROOT / "scripts" /
                                                  "build_addon.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def addon_zip(tmp_path_factory) -> Path:
    """The add-on built with synthgen but without its dependencies (fast; the driver's
    Python has them)."""
    out = tmp_path_factory.mktemp("addon") / "synthgen_blender.zip"
    _build_module().build(out, deps="none")
    return out


def test_zip_is_an_extension_and_a_legacy_addon(addon_zip):
    with zipfile.ZipFile(addon_zip) as archive:
        names = archive.namelist()
        manifest = tomllib.loads(archive.read("synthgen_blender/blender_manifest.toml").decode())
        init = archive.read("synthgen_blender/__init__.py").decode()
    assert all(name.startswith("synthgen_blender/") for name in names)
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)
    assert "synthgen_blender/_vendor/synthgen/render/blender_backend.py" in names
    assert not any(name.startswith("synthgen_blender/_vendor/synthgen/blender_addon")
                   for name in names)
    assert manifest["id"] == "synthgen_blender" and manifest["type"] == "add-on"
    assert manifest["blender_version_min"] == "4.2.0"
    assert len(manifest["platforms"]) == 1 and "-" in manifest["platforms"][0]
    assert "bl_info" in init and '"blender": (4, 2, 0)' in init


def test_bundled_distributions():
    names = _build_module().vendored_distributions()
    assert {"trimesh", "pydantic", "pydantic-core", "pyyaml", "pillow", "scipy",
            "manifold3d", "shapely", "pycocotools"} <= set(names)
    assert not {"numpy", "bpy", "typer", "rich", "matplotlib", "torch"} & set(names)


@pytest.mark.blender
@pytest.mark.slow
def test_installed_addon_in_blender(addon_zip, tmp_path):
    pytest.importorskip("bpy", reason="needs the bpy module")
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "blender_user")}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [sys.executable, str(DRIVER), str(addon_zip), str(tmp_path / "dataset")],
        capture_output=True, text=True, env=env, timeout=240, cwd=tmp_path,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    # installed as an extension, registered, and the library came from the zip
    assert result["extension_enabled"]
    assert all(result["registered"].values())
    assert "_vendor" in result["synthgen_from"]
    assert result["defect_params"]["radius"] == [1.0, 3.0]  # bottle_cap's dent preset
    # the defect preview changes the mesh; the revert operator restores it exactly
    assert result["apply"] == ["FINISHED"] and result["applied_changed"]
    assert result["preview_record"] == "dent"
    assert result["revert"] == ["FINISHED"] and result["reverted_equal"]
    assert result["meshes_after_revert"] == ["Cube", "bottle_cap"]
    assert result["ed_undo"] in ("ran", "Operator bpy.ops.ed.undo.poll() failed, "
                                        "context is incorrect")
    # render preview and the dataset, written by the CLI's writers
    assert result["preview"] == ["FINISHED"] and result["preview_selected"] == ["FINISHED"]
    assert result["preview_image"][0] == [48, 48] and result["preview_image"][1] > 0.01
    assert result["generate"] == ["FINISHED"]
    manifest = result["manifest"]
    assert manifest["complete"] and manifest["records"] == 3
    assert manifest["renderer"] == "blender" and manifest["blender"]["samples"] == 2
    assert manifest["defects"] == ["dent"] * 3
    files = set(result["files"])
    assert {"manifest.json", "manifest.jsonl", "coco/annotations/instances.json",
            "yolo/data.yaml"} <= files
    for index in range(3):
        assert f"mvtec/bottle_cap/test/dent/{index:06d}.png" in files
        assert f"mvtec/bottle_cap/ground_truth/dent/{index:06d}_mask.png" in files
        assert f"yolo/labels/val/{index:06d}.txt" in files
    # unregistered cleanly, as an extension and as a legacy add-on
    assert not any(result["after_disable"].values())
    assert all(result["legacy_registered"].values())
    assert not any(result["legacy_after_disable"].values())

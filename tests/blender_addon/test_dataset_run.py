"""What the modal "Generate dataset" operator relies on: a run stopped between samples
leaves a consistent dataset that a resumed run completes, with the job's Blender settings."""

from __future__ import annotations

import json

import pytest

from synthgen.errors import ConfigError
from synthgen.job import parse_recipe

pytestmark = pytest.mark.blender
pytest.importorskip("bpy", reason="needs the bpy module")


def test_cancel_then_resume(tmp_path):
    from synthgen.blender_addon.bridge import DatasetRun

    job = parse_recipe({
        "product": {"type": "bottle_cap"}, "samples": 3, "good_fraction": 0.0,
        "defects": [{"type": "dent"}], "output": {"formats": ["mvtec"]},
        "render": {"renderer": "blender", "size": 32,
                   "blender": {"samples": 1, "denoise": False, "device": "cpu"}},
    })
    out = tmp_path / "ds"
    run = DatasetRun(job, out, resume=False)
    assert run.total == 3 and run._runner.renderer.settings.samples == 1
    run.step()
    records = run.close()  # as after Esc
    assert [r["index"] for r in records] == [0]
    assert json.loads((out / "manifest.json").read_text())["complete"] is False
    with pytest.raises(ConfigError, match="resume"):
        DatasetRun(job, out, resume=False)
    run = DatasetRun(job, out, resume=True)
    assert run.todo == [1, 2]
    while not run.finished:
        run.step()
    records = run.close()
    assert [r["index"] for r in records] == [0, 1, 2]
    assert json.loads((out / "manifest.json").read_text())["complete"] is True
    assert len(list((out / "mvtec").rglob("*_mask.png"))) == 3

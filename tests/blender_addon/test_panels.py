"""The panels' draw() code runs headless (against a recording layout) and shows every
control the issue asks for; the layout diagram is drawn from that record."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.blender
bpy = pytest.importorskip("bpy", reason="needs the bpy module")


def _walk(item):
    yield item
    for child in item.children:
        yield from _walk(child)


@pytest.fixture
def addon():
    from synthgen import blender_addon

    blender_addon.register()
    try:
        yield
    finally:
        blender_addon.unregister()
    assert not hasattr(bpy.types.Scene, "synthgen")


def test_panels_draw_every_control(addon, tmp_path):
    from synthgen.blender_addon.layout_diagram import demo_state, draw_panels, record_panels

    demo_state()
    panels = record_panels()
    assert [p.text.split()[0] for p in panels] == ["Synthgen", "Defects", "Randomisation",
                                                   "Output"]
    items = [i for p in panels for i in _walk(p)]
    props = {i.text for i in items if i.kind == "prop"}
    assert {"Product", "Family", "Type", "Probability", "Count", "Output", "Formats",
            "Samples", "Renderer", "Render samples", "Denoise", "Device", "Yaw (°)",
            "Roughness"} <= props
    operators = {i.text for i in items if i.kind == "operator"}
    assert {"Render Preview", "Generate Dataset", "Apply Defect Preview"} <= operators
    lists = [i for i in items if i.kind == "list"]
    assert len(lists) == 1 and lists[0].options["rows"][:2] == ["Dent   p 1.00",
                                                                 "Chip   p 1.00"]
    # the active defect's parameters, from the capped bottle's presets
    assert {"radius", "depth", "width"} & {i.text for i in items if i.kind == "label"}
    settings = bpy.context.scene.synthgen
    settings.renderer = "pyrender"  # the Blender settings disappear with another renderer
    items = [i for p in record_panels() for i in _walk(p)]
    assert "Render samples" not in {i.text for i in items if i.kind == "prop"}
    draw_panels(panels, str(tmp_path / "panel.png"))
    assert (tmp_path / "panel.png").stat().st_size > 10_000

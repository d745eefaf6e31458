"""A picture of the Synthgen panel without a GPU: record the panels' draw() calls, plot them.

Blender draws its UI only with a GPU context, which a headless machine lacks, so this walks
the add-on's real `draw()` methods with a recording stand-in for `UILayout` (rows, columns,
boxes, labels, properties, operators, lists: the calls the panels make, with their
arguments) and the real registered properties (names, current values, enum items), then
draws that layout description with matplotlib in Blender's default dark-theme colours.
It is a diagram of the layout, not a screenshot.

    python -m synthgen.blender_addon.layout_diagram docs/addon_panel.png
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import bpy

BACKGROUND, PANEL, HEADER = "#303030", "#3d3d3d", "#474747"
FIELD, BUTTON, SELECTED, TEXT = "#545454", "#5c5c5c", "#4772b3", "#e6e6e6"
LINE = 1.0  # height of one widget line, layout units


@dataclass
class Item:
    """One recorded layout element: a container (row, column, box) or a widget."""

    kind: str
    text: str = ""
    children: list[Item] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def height(self) -> float:
        if self.kind == "row":
            return max((c.height for c in self.children), default=0.0)
        if self.kind in ("column", "box", "panel"):
            pad = 0.3 if self.kind == "box" else 0.0
            return sum(c.height for c in self.children) + pad
        if self.kind == "list":
            return LINE * (len(self.options["rows"]) + 0.4)
        if self.kind == "separator":
            return 0.4
        return LINE


class Recorder:
    """Records the UILayout calls the panels make (the subset they use)."""

    def __init__(self, item: Item):
        self.item = item

    def _child(self, kind: str) -> Recorder:
        child = Item(kind)
        self.item.children.append(child)
        return Recorder(child)

    def row(self, align: bool = False, **_: Any) -> Recorder:
        return self._child("row")

    def column(self, align: bool = False, **_: Any) -> Recorder:
        return self._child("column")

    def box(self) -> Recorder:
        return self._child("box")

    def separator(self, **_: Any) -> None:
        self._child("separator")

    def label(self, text: str = "", icon: str = "NONE", **_: Any) -> None:
        self.item.children.append(Item("label", text))

    def operator(self, idname: str, text: str | None = None, icon: str = "NONE",
                 **_: Any) -> SimpleNamespace:
        if text is None:
            category, name = idname.split(".")
            text = getattr(getattr(bpy.ops, category), name).get_rna_type().name
        if not text:  # icon-only buttons
            text = {"ADD": "+", "REMOVE": "-"}.get(icon, "")
        self.item.children.append(Item("operator", text))
        return SimpleNamespace()

    def prop(self, data: Any, name: str, text: str | None = None, expand: bool = False,
             **_: Any) -> None:
        rna = data.bl_rna.properties[name]
        label = rna.name if text is None else text
        value = getattr(data, name)
        options: dict[str, Any] = {"type": rna.type, "expand": expand, "value": value}
        if rna.type == "ENUM":
            options["items"] = [(i.identifier, i.name) for i in rna.enum_items]
            options["flag"] = rna.is_enum_flag
        self.item.children.append(Item("prop", label, options=options))

    def template_list(self, list_type: str, list_id: str, data: Any, prop: str,
                      active_data: Any, active_prop: str, rows: int = 5, **_: Any) -> None:
        entries = getattr(data, prop)
        active = getattr(active_data, active_prop)
        shown = [f"{e.type.replace('_', ' ').title()}   p {e.probability:.2f}"
                 for e in entries]
        shown += [""] * max(0, rows - len(shown))
        self.item.children.append(Item("list", options={"rows": shown, "active": active}))


def record_panels() -> list[Item]:
    """The add-on's panels, drawn into recorders with the current `bpy.context`."""
    from . import panels

    out = []
    for cls in panels.CLASSES:
        if not issubclass(cls, bpy.types.Panel):
            continue
        closed = "DEFAULT_CLOSED" in getattr(cls, "bl_options", ())
        item = Item("panel", cls.bl_label + ("   (starts collapsed)" if closed else ""))
        cls.draw(SimpleNamespace(layout=Recorder(item)), bpy.context)
        out.append(item)
    return out


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, bool):
        return ""
    if hasattr(value, "__len__") and not isinstance(value, str | set):
        return "  ".join(_format(v) for v in value)
    return str(value)


def _widget(ax, item: Item, x: float, y: float, w: float) -> None:
    """Draw one widget with its top-left corner at (x, y)."""
    from matplotlib.patches import FancyBboxPatch

    def box(x0: float, width: float, color: str) -> None:
        ax.add_patch(FancyBboxPatch((x0 + 0.05, y - 0.85), max(width - 0.1, 0.05), 0.7,
                                    boxstyle="round,pad=0,rounding_size=0.15",
                                    fc=color, ec="none"))

    def text(x0: float, s: str, ha: str = "left") -> None:
        ax.text(x0, y - 0.5, s, color=TEXT, fontsize=7.5, ha=ha, va="center")

    if item.kind == "label":
        text(x + 0.15, item.text)
    elif item.kind == "operator":
        box(x, w, BUTTON)
        text(x + w / 2, item.text, ha="center")
    elif item.kind == "prop":
        o = item.options
        if o["type"] == "BOOLEAN":
            box(x, 0.7, SELECTED if o["value"] else FIELD)
            text(x + 0.9, item.text)
        elif o["type"] == "ENUM" and (o["expand"] or o["flag"]):
            n = len(o["items"])
            chosen = o["value"] if isinstance(o["value"], set) else {o["value"]}
            for k, (ident, name) in enumerate(o["items"]):
                box(x + k * w / n, w / n, SELECTED if ident in chosen else FIELD)
                text(x + (k + 0.5) * w / n, name, ha="center")
        else:
            box(x, w, FIELD)
            shown = dict(o.get("items", [])).get(o["value"], _format(o["value"]))
            text(x + 0.2, f"{item.text}:" if item.text else "")
            text(x + w - 0.2, shown + ("  ▾" if o["type"] == "ENUM" else ""), ha="right")


def _icon_only(item: Item) -> bool:
    """An icon-only button, or a column of them (drawn narrow, as Blender does)."""
    if item.kind == "column":
        return bool(item.children) and all(_icon_only(c) for c in item.children)
    return item.kind == "operator" and len(item.text) <= 1


def _draw(ax, item: Item, x: float, y: float, w: float) -> None:
    """Draw `item` (and its children) with its top-left corner at (x, y)."""
    from matplotlib.patches import FancyBboxPatch, Rectangle

    if item.kind == "row":
        n = max(len(item.children), 1)
        widths = [w / n] * n
        # Icon-only buttons and checkboxes take less room in Blender; mimic that.
        small = [_icon_only(c) for c in item.children]
        if any(small) and not all(small):
            narrow = 1.2
            rest = (w - narrow * sum(small)) / (n - sum(small))
            widths = [narrow if s else rest for s in small]
        for child, width in zip(item.children, widths, strict=True):
            _draw(ax, child, x, y, width)
            x += width
    elif item.kind in ("column", "box", "panel"):
        if item.kind == "box":
            ax.add_patch(FancyBboxPatch((x + 0.05, y - item.height + 0.05), w - 0.1,
                                        item.height - 0.1, boxstyle="round,pad=0,"
                                        "rounding_size=0.2", fc="none", ec="#5a5a5a"))
            y -= 0.15
            x, w = x + 0.15, w - 0.3
        for child in item.children:
            _draw(ax, child, x, y, w)
            y -= child.height
    elif item.kind == "list":
        rows = item.options["rows"]
        ax.add_patch(Rectangle((x + 0.05, y - LINE * len(rows) - 0.2), w - 0.1,
                               LINE * len(rows) + 0.1, fc="#282828", ec="#5a5a5a"))
        for k, label in enumerate(rows):
            if k == item.options["active"] and label:
                ax.add_patch(Rectangle((x + 0.1, y - (k + 1) * LINE - 0.05), w - 0.2,
                                       LINE * 0.9, fc=SELECTED, ec="none"))
            ax.text(x + 0.3, y - (k + 0.5) * LINE - 0.1, label, color=TEXT, fontsize=7.5,
                    va="center")
    elif item.kind != "separator":
        _widget(ax, item, x, y, w)


def draw_panels(items: list[Item], path: str, width: float = 12.0) -> None:
    """Plot the recorded panels, one under the other, to an image file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    total = sum(i.height + 1.6 for i in items) + 1.2
    fig = plt.figure(figsize=(width * 0.36, total * 0.3), dpi=150)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(-total, 0)
    ax.axis("off")
    fig.patch.set_facecolor(BACKGROUND)
    y = -0.3
    ax.text(0.3, y - 0.45, "3D Viewport › Sidebar (N) › Synthgen   [layout diagram, not a "
            "screenshot]", color="#9a9a9a", fontsize=6.5, va="center")
    y -= 1.0
    for item in items:
        ax.add_patch(Rectangle((0.2, y - item.height - 1.3), width - 0.4, item.height + 1.3,
                               fc=PANEL, ec="none"))
        ax.add_patch(Rectangle((0.2, y - 1.0), width - 0.4, 1.0, fc=HEADER, ec="none"))
        ax.text(0.5, y - 0.5, "▾  " + item.text, color=TEXT, fontsize=8.5, va="center",
                weight="bold")
        _draw(ax, item, 0.4, y - 1.15, width - 0.8)
        y -= item.height + 1.6
    fig.savefig(path, facecolor=BACKGROUND)
    plt.close(fig)


def demo_state() -> None:
    """A representative panel state: a parametric product with two defect types."""
    settings = bpy.context.scene.synthgen
    settings.product_type = "capped_bottle"
    for name in ("dent", "chip"):
        bpy.ops.synthgen.defect_add(type=name)
    settings.defect_index = 0
    settings.output_dir = "//synthgen_dataset"


def main(argv: list[str]) -> None:
    from synthgen import blender_addon

    path = argv[0] if argv else "addon_panel.png"
    blender_addon.register()
    try:
        demo_state()
        draw_panels(record_panels(), path)
    finally:
        blender_addon.unregister()
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])

"""The core stays light: importing it pulls in no renderer, trainer or augmentation library."""

import subprocess
import sys

HEAVY = ["pyrender", "OpenGL", "bpy", "torch", "torchvision", "albumentations", "ray"]


def test_core_import_pulls_in_no_heavy_dependency():
    code = (
        "import sys, synthgen, synthgen.products, synthgen.defects, synthgen.scene, "
        "synthgen.render, synthgen.pipeline\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"heavy modules imported by the core: {out.stdout}"


def test_registries_hold_the_documented_names():
    from synthgen.defects import DEFECTS
    from synthgen.products import PRODUCTS

    assert {"bulge", "dent", "short_notch", "chip", "hole", "crack", "scratch"} <= set(DEFECTS)
    assert {"bottle_cap", "capped_bottle", "cad"} <= set(PRODUCTS)
    assert len(PRODUCTS.names()) >= 5

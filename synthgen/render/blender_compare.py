"""Render the same labelled samples with pyrender and with Blender, and compare them.

A sample (scene, defective part, nominal twin) is made once by `pipeline.make_sample` with
the pyrender backend, then the identical scene and parts are drawn by the Blender backend.
The masks of both must agree (they come from the same camera model and the same geometric
rule); the images differ in the way the renderers do (rasterised vs path traced).

    python -m synthgen.render.blender_compare docs/cycles_vs_pyrender.png --samples 64

Needs both pyrender (EGL) and bpy.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass

import numpy as np

from synthgen.render.result import RenderResult

log = logging.getLogger(__name__)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (H, W) bool masks (1.0 when both are empty)."""
    union = int((a | b).sum())
    return 1.0 if union == 0 else float((a & b).sum() / union)


@dataclass(frozen=True)
class Comparison:
    """One sample drawn by both backends.

    Attributes:
        pyrender, blender: the two RenderResults.
        object_iou: IoU of the object masks.
        defect_iou: (N,) IoU of each defect mask.
        seconds: (pyrender, blender) render wall time, s.
    """

    pyrender: RenderResult
    blender: RenderResult
    object_iou: float
    defect_iou: tuple[float, ...]
    seconds: tuple[float, float]


def compare_samples(product: str, indices: list[int], size: int, seed: int,
                    blender_options: dict) -> list[Comparison]:
    """Make samples `indices` of a default job for `product` and render each with both
    backends (a defect of a random type is placed where the camera sees it)."""
    import time

    from synthgen.defects import DEFECTS
    from synthgen.pipeline import make_sample
    from synthgen.products import build_product, product_defect
    from synthgen.render import make_renderer
    from synthgen.render.placement import Placed
    from synthgen.scene import SceneSpec

    nominal = build_product(product)
    defects = [product_defect(product, name) for name in DEFECTS.names()]
    fast = make_renderer("pyrender")
    photo = make_renderer("blender", **blender_options)
    out = []
    try:
        for index in indices:
            t0 = time.perf_counter()
            sample = make_sample(nominal, defects, SceneSpec(), fast, seed, index, (size, size))
            t1 = time.perf_counter()
            obj: Placed = sample.placed[0]
            theirs = photo.render(sample.scene, obj.part, obj.nominal)
            t2 = time.perf_counter()
            ours = sample.render
            out.append(Comparison(
                ours, theirs, iou(ours.object_mask, theirs.object_mask),
                tuple(iou(a, b) for a, b in zip(ours.defect_masks, theirs.defect_masks,
                                                strict=True)),
                (t1 - t0, t2 - t1)))
    finally:
        fast.close()
        photo.close()
    return out


def figure(comparisons: list[Comparison], path: str, title: str) -> None:
    """Rows of [pyrender | Blender | mask agreement], saved to `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from synthgen.contact_sheet import annotate

    rows = len(comparisons)
    fig, axes = plt.subplots(rows, 3, figsize=(9, 3.2 * rows + 0.5), squeeze=False)
    for row, c in zip(axes, comparisons, strict=True):
        row[0].imshow(c.pyrender.rgb)
        row[1].imshow(c.blender.rgb)
        agree = np.zeros((*c.pyrender.object_mask.shape, 3), dtype=np.uint8)
        agree[c.pyrender.object_mask & c.blender.object_mask] = (90, 90, 90)
        agree[c.pyrender.object_mask ^ c.blender.object_mask] = (255, 60, 60)
        types = ["defect"] * len(c.blender.defect_masks)
        agree = annotate(agree, c.blender.defect_masks, types)
        row[2].imshow(agree)
        defects = ", ".join(f"{v:.3f}" for v in c.defect_iou) or "-"
        row[0].set_title("pyrender", fontsize=9)
        row[1].set_title("Blender Cycles", fontsize=9)
        row[2].set_title(f"mask IoU: object {c.object_iou:.3f}, defect {defects}",
                         fontsize=8)
        for ax in row:
            ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="image file to write")
    parser.add_argument("--product", default="capped_bottle")
    parser.add_argument("--indices", type=int, nargs="+", default=[3, 5])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=64, help="Cycles samples per pixel")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    options = {"samples": args.samples, "denoise": True, "device": args.device}
    comparisons = compare_samples(args.product, args.indices, args.size, args.seed, options)
    for index, c in zip(args.indices, comparisons, strict=True):
        print(f"sample {index}: object IoU {c.object_iou:.4f}, defect IoU "
              f"{[round(v, 4) for v in c.defect_iou]}, pyrender {c.seconds[0]:.3f} s, "
              f"blender {c.seconds[1]:.2f} s")
    figure(comparisons, args.out,
           f"{args.product}, same scenes and parts; Cycles {args.samples} samples + "
           "OpenImageDenoise; right: mask disagreement in red, defect masks outlined")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

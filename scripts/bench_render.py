"""Benchmark: fully labelled samples per second in one process.

Each sample is made as a dataset job makes it (`pipeline.make_sample`): a scene is drawn,
one defect of a random type with the product's preset sizes is placed where the camera
sees it (or none, for 20 % of samples), and the renderer draws RGB, depth, the object mask
and the defect masks. The product is built once, as a job does.

    python scripts/bench_render.py --size 256 -n 200

The last line is `samples_per_s=<float>`.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from synthgen.defects import DEFECTS
from synthgen.pipeline import make_sample
from synthgen.products import build_product, product_defect
from synthgen.render import make_renderer
from synthgen.scene import SceneSpec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--product", default="capped_bottle")
    parser.add_argument("--renderer", default="pyrender")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("-n", "--samples", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start = time.perf_counter()
    nominal = build_product(args.product)
    build_s = time.perf_counter() - start
    defects = [product_defect(args.product, name) for name in DEFECTS.names()]
    renderer = make_renderer(args.renderer)
    totals, render_stages, visible = [], {}, 0
    for index in range(args.warmup + args.samples):
        t0 = time.perf_counter()
        sample = make_sample(nominal, defects, SceneSpec(), renderer, args.seed, index,
                             (args.size, args.size), good_fraction=0.2)
        elapsed = time.perf_counter() - t0
        if index < args.warmup:
            continue
        totals.append(elapsed)
        for stage, seconds in getattr(renderer, "last_timings", {}).items():
            render_stages.setdefault(stage, []).append(seconds)
        visible += int(sample.render.defect_visible.any())
    renderer.close()

    total = float(np.sum(totals))
    print(f"machine: {platform.machine()}, product {args.product} "
          f"({len(nominal.mesh.faces)} faces, built in {build_s * 1e3:.0f} ms), "
          f"{args.size}x{args.size}, renderer {args.renderer}, {args.samples} samples")
    ms = np.asarray(totals) * 1e3
    print(f"  sample: mean {ms.mean():7.2f} ms  median {np.median(ms):7.2f} ms  "
          f"p95 {np.percentile(ms, 95):7.2f} ms")
    render_total = np.asarray(render_stages.get("total", [0.0])) * 1e3
    outside = ms.mean() - render_total.mean()
    print(f"  defects + scene (outside the renderer): mean {outside:7.2f} ms")
    for stage, seconds in render_stages.items():
        print(f"  render.{stage:<9}: mean {np.mean(seconds) * 1e3:7.2f} ms")
    print(f"samples with a visible defect: {visible}/{args.samples}")
    print(f"samples_per_s={args.samples / total:.2f}")


if __name__ == "__main__":
    main()

"""Benchmark: fully labelled samples per second in one process.

Each sample draws and applies one random defect (or none, 20 %), samples a scene and renders
RGB, depth, object mask and defect masks. The product is built once, as a job does.

    python scripts/bench_render.py --size 256 -n 200

The last line is `samples_per_s=<float>`.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from synthgen.defects import DEFECTS, make_defect
from synthgen.pipeline import apply_defects
from synthgen.products import build_product
from synthgen.render import make_renderer
from synthgen.rng import child_rngs, sample_rng
from synthgen.scene import SceneSpec, sample_scene


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
    defects = [make_defect(name) for name in DEFECTS.names()]
    spec = SceneSpec()
    renderer = make_renderer(args.renderer)
    stages = {"defects": [], "scene": [], "render": []}
    visible = 0
    for index in range(args.warmup + args.samples):
        t0 = time.perf_counter()
        defect_rng, scene_rng = child_rngs(sample_rng(args.seed, index), 2)
        part = nominal
        if defect_rng.uniform() >= 0.2:
            part, _ = apply_defects(nominal, defects, defect_rng)
        t1 = time.perf_counter()
        scene = sample_scene(spec, nominal.bounding_radius, args.size, args.size, scene_rng)
        t2 = time.perf_counter()
        result = renderer.render(scene, part, nominal)
        t3 = time.perf_counter()
        if index >= args.warmup:
            stages["defects"].append(t1 - t0)
            stages["scene"].append(t2 - t1)
            stages["render"].append(t3 - t2)
            visible += int(result.defect_visible.any())
    renderer.close()

    total = sum(sum(times) for times in stages.values())
    print(f"machine: {platform.processor() or platform.machine()}, product {args.product} "
          f"({len(nominal.mesh.faces)} faces, built in {build_s * 1e3:.0f} ms), "
          f"{args.size}x{args.size}, renderer {args.renderer}")
    for name, times in stages.items():
        ms = np.asarray(times) * 1e3
        print(f"{name:>8}: mean {ms.mean():7.2f} ms  median {np.median(ms):7.2f} ms  "
              f"p95 {np.percentile(ms, 95):7.2f} ms")
    print(f"samples with a visible defect: {visible}/{args.samples}")
    print(f"samples_per_s={args.samples / total:.2f}")


if __name__ == "__main__":
    main()

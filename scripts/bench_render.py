"""Benchmark: fully labelled samples per second in one process.

Each sample is made as a dataset job makes it (`pipeline.make_sample`): a scene is drawn,
one defect of a random type with the product's preset sizes is placed where the camera
sees it (or none, for 20 % of samples), and the renderer draws RGB, depth, the object mask
and the defect masks. The product is built once, as a job does.

    python scripts/bench_render.py --size 256 -n 200
    python scripts/bench_render.py --renderer blender --render-samples 32 -n 20
    python scripts/bench_render.py --renderer blender --render-samples 1 --no-denoise \
        --size 64 -n 200 --track-memory       # no growth over a long run

`--track-memory` prints the process's resident memory and (Blender) the number of
data-blocks per bpy.data collection every 10 % of the run. The last line is
`samples_per_s=<float>`.
"""

from __future__ import annotations

import argparse
import os
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
    parser.add_argument("--render-samples", type=int, default=32,
                        help="blender: samples per pixel")
    parser.add_argument("--no-denoise", action="store_true", help="blender: no denoiser")
    parser.add_argument("--device", default="auto", help="blender: auto, cpu, cuda, optix")
    parser.add_argument("--engine", default="cycles", help="blender: cycles or eevee")
    parser.add_argument("--track-memory", action="store_true",
                        help="print resident memory and Blender data-block counts")
    args = parser.parse_args()

    start = time.perf_counter()
    nominal = build_product(args.product)
    build_s = time.perf_counter() - start
    defects = [product_defect(args.product, name) for name in DEFECTS.names()]
    options = {}
    if args.renderer == "blender":
        options = {"samples": args.render_samples, "denoise": not args.no_denoise,
                   "device": args.device, "engine": args.engine}
    renderer = make_renderer(args.renderer, **options)
    totals, render_stages, visible = [], {}, 0
    cpu_start = None
    for index in range(args.warmup + args.samples):
        if index == args.warmup:
            cpu_start = time.process_time()
        if args.track_memory and (index - args.warmup) % max(1, args.samples // 10) == 0:
            _print_memory(index - args.warmup)
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
    cpu = time.process_time() - cpu_start
    if args.track_memory:
        _print_memory(args.samples)
    device = getattr(renderer, "device", "")
    renderer.close()

    total = float(np.sum(totals))
    print(f"machine: {platform.machine()}, product {args.product} "
          f"({len(nominal.mesh.faces)} faces, built in {build_s * 1e3:.0f} ms), "
          f"{args.size}x{args.size}, renderer {args.renderer} {options} {device}, "
          f"{args.samples} samples")
    print(f"  load average at the end: {os.getloadavg()[0]:.2f}; process CPU time per sample "
          f"{cpu / args.samples * 1e3:.0f} ms (all threads)")
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


def _print_memory(done: int) -> None:
    """Resident memory (MiB) and, when bpy is loaded, its data-block counts."""
    import sys

    with open("/proc/self/statm") as statm:
        rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    blocks = ""
    if "bpy" in sys.modules:
        data = sys.modules["bpy"].data
        names = ("objects", "meshes", "materials", "lights", "cameras", "images", "worlds",
                 "scenes")
        blocks = " ".join(f"{n}={len(getattr(data, n))}" for n in names)
    print(f"  after {done:5d} samples: rss {rss:7.1f} MiB {blocks}", flush=True)


if __name__ == "__main__":
    main()

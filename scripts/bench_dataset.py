"""Benchmark: a whole dataset job (render, augment, write MVTec + COCO, manifest).

    python scripts/bench_dataset.py --recipe scenes/capped_bottle.yaml -n 200 --workers 2

Runs the recipe at 256x256 into a temporary folder with 1 and with `--workers` processes and
prints samples per second for each; the last line is `samples_per_s=<float>` for `--workers`.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

from synthgen.generate import generate
from synthgen.job import load_recipe


def run(recipe: Path, samples: int, workers: int, size: int) -> float:
    job = load_recipe(recipe, {"samples": samples})
    job = job.model_copy(update={
        "render": job.render.model_copy(update={"size": size}),
        "output": job.output.model_copy(update={"formats": ["mvtec", "coco"]}),
    })
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        report = generate(job, Path(out) / "dataset", workers=workers)
        seconds = time.perf_counter() - start
    assert report.complete
    return samples / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=Path("scenes/capped_bottle.yaml"))
    parser.add_argument("-n", "--samples", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, recipe {args.recipe}, {args.samples} samples, "
          f"{args.size}x{args.size}, formats mvtec+coco (times include start-up and finalise)")
    single = run(args.recipe, args.samples, 1, args.size)
    print(f"workers=1: {single:.2f} samples/s")
    rate = single
    if args.workers > 1:
        rate = run(args.recipe, args.samples, args.workers, args.size)
        print(f"workers={args.workers}: {rate:.2f} samples/s (x{rate / single:.2f})")
    print(f"samples_per_s={rate:.2f}")


if __name__ == "__main__":
    main()

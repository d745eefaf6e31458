"""Benchmark: dataset throughput with 1 and 2 workers, local processes and Ray actors.

    PYOPENGL_PLATFORM=egl python scripts/bench_scale.py -n 120 --size 256

Runs the recipe (MVTec + COCO, into a temporary folder) with the local executor and with the
Ray executor (a local Ray instance with `--workers` CPUs, started once and not timed), each
with 1 and `--workers` workers, and prints for each run two rates:

- overall: samples / wall time of the whole call (worker start-up, which is dominated by
  imports such as albumentations, and the dataset's finalisation included);
- steady: samples made after the first one / time from the first to the last (the rate a
  long job runs at once the workers are up).

Every worker gets `--rasteriser-threads` Mesa llvmpipe threads (`LP_NUM_THREADS`, default
1), the single worker of the 1-worker runs included, so the speed-up measures how the work
spreads over workers rather than how llvmpipe's own threads compete with them. (A single
process left to its default of one rasteriser thread per CPU is faster than a 1-thread
worker; that is the rate `synthgen render` without `--workers` runs at.)

The speed-ups compare `--workers` workers with 1 worker of the same executor, for both
rates, and the load average is printed with each run (the machine may be shared). The last
line is `speedup_2_workers=<float>`: the local executor's steady-rate speed-up (the Ray one
and the overall speed-ups are printed before it).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from synthgen.generate import generate
from synthgen.job import Job, load_recipe


def load_job(recipe: Path, samples: int, size: int) -> Job:
    job = load_recipe(recipe, {"samples": samples})
    return job.model_copy(update={
        "render": job.render.model_copy(update={"size": size}),
        "output": job.output.model_copy(update={"formats": ["mvtec", "coco"]}),
    })


def rates(job: Job, executor: str, workers: int) -> tuple[float, float]:
    """(overall, steady) samples per second of one whole job (see the module docstring)."""
    ticks: list[tuple[float, int]] = []

    def progress(done: int, total: int) -> None:
        ticks.append((time.perf_counter(), done))

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        report = generate(job, Path(out) / "dataset", workers=workers, executor=executor,
                          progress=progress)
        seconds = time.perf_counter() - start
    assert report.complete and len(ticks) >= 2, "too few samples to time"
    (t0, n0), (t1, n1) = ticks[0], ticks[-1]
    return job.samples / seconds, (n1 - n0) / (t1 - t0)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=Path("scenes/capped_bottle.yaml"))
    parser.add_argument("-n", "--samples", type=int, default=120)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--executors", default="local,ray", help="local, ray or local,ray")
    parser.add_argument("--rasteriser-threads", type=int, default=1,
                        help="LP_NUM_THREADS of every worker (0: Mesa's default)")
    args = parser.parse_args()
    if args.rasteriser_threads > 0:  # before any OpenGL context exists in this process
        os.environ["LP_NUM_THREADS"] = str(args.rasteriser_threads)
    job = load_job(args.recipe, args.samples, args.size)
    executors = [e.strip() for e in args.executors.split(",") if e.strip()]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, recipe {args.recipe}, "
          f"{args.samples} samples, {args.size}x{args.size}, formats mvtec+coco, "
          f"LP_NUM_THREADS={os.environ.get('LP_NUM_THREADS', 'default')}; "
          f"load average {load()}")
    speedups: dict[str, tuple[float, float]] = {}
    for executor in executors:
        if executor == "ray":
            import ray

            start = time.perf_counter()
            ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
            print(f"ray: local instance with {args.workers} CPUs started in "
                  f"{time.perf_counter() - start:.1f} s (not timed below)")
        try:
            single = rates(job, executor, 1)
            print(f"{executor} workers=1: {single[0]:.2f} samples/s overall, {single[1]:.2f} "
                  f"steady (load {load()})")
            many = rates(job, executor, args.workers)
            speedups[executor] = (many[0] / single[0], many[1] / single[1])
            print(f"{executor} workers={args.workers}: {many[0]:.2f} samples/s overall, "
                  f"{many[1]:.2f} steady (load {load()})")
        finally:
            if executor == "ray":
                ray.shutdown()
    for executor, (overall, steady) in speedups.items():
        print(f"{executor}: speed-up from 1 to {args.workers} workers: x{steady:.2f} steady, "
              f"x{overall:.2f} overall")
    main_speedup = speedups.get("local", next(iter(speedups.values())))[1]
    print(f"speedup_2_workers={main_speedup:.2f}")


if __name__ == "__main__":
    main()

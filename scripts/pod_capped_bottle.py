"""The README's POD figure: train detectors on the capped bottle, then measure how small a
bulge and a shortened notch they reliably find.

    PYOPENGL_PLATFORM=egl python scripts/pod_capped_bottle.py [--quick] [--out out/pod_capped]

Steps (each skipped when its output is already there, so a rerun continues):
1. render two training sets from scenes/capped_bottle_validate.yaml (an inspection view of
   the shoulder, neck and cap), one with only its bulge entry, one with only its short-notch
   entry (both with defect-free samples);
2. train the bundled trainer's `unet` segmenter (base width 8, 160 px) on each, side by
   side, one torch thread each: 10 epochs at lr 1e-3 (bulge), 30 at 3e-3 (notch)
   (`synthgen train` semantics: seeded 60/20/20 split, image threshold chosen on the
   validation split);
3. `synthgen validate` both runs (comparison mode) on sweeps of bulge height and short-notch
   length, K views per size and M good parts, into <out>/full/report (report.html, pod.png,
   result.json);
4. copy pod.png to docs/pod_capped_bottle.png (not with --quick).

Prints the wall time of each step, then a50, a90 and a90/95 per detector and sweep.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "scenes" / "capped_bottle_validate.yaml"
FULL = {"samples": 400, "size": 160, "epochs": 10, "sizes": 10, "per_size": 12, "good": 40}
QUICK = {"samples": 40, "size": 96, "epochs": 1, "sizes": 4, "per_size": 3, "good": 6}
DETECTORS = {"bulge": ("bulge", 1.0, 1e-3), "notch": ("short_notch", 3.0, 3e-3)}
"""One detector per defect type: run name → (the recipe's defect entry it is trained on,
epochs as a multiple of the setting's, learning rate). The notch's masks are tiny, so its
U-Net needs longer and a higher rate to get past predicting background everywhere."""


def render(name: str, defect: str, setting: dict, data: Path) -> None:
    """The recipe with only `defect`'s entry, rendered to `data` (skipped when done)."""
    import yaml

    from synthgen.generate import generate
    from synthgen.job import load_recipe

    if (data / "manifest.json").is_file():
        return
    entries = [e for e in yaml.safe_load(RECIPE.read_text())["defects"] if e["type"] == defect]
    job = load_recipe(RECIPE, {"samples": setting["samples"], "defects": entries,
                               "render": {"size": setting["size"]}})
    generate(job, data, workers=1)


def train(model: str, setting: dict, data: Path, run: Path, scale: float, lr: float) -> float:
    """Train one run (one torch thread: two runs train side by side); returns seconds."""
    import torch

    from synthgen.detect.run import train_run

    start = time.perf_counter()
    torch.set_num_threads(1)
    if not (run / "run.json").is_file():
        config = {"base": 8} if model == "unet" else None  # half width: 3x faster on CPU
        train_run(model, data, run, epochs=max(1, round(setting["epochs"] * scale)),
                  size=setting["size"], batch_size=16, lr=lr, seed=0, config=config)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny run to check the chain")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "pod_capped")
    parser.add_argument("--model", default="unet", help="a preset of synthgen models")
    args = parser.parse_args(argv)
    setting = QUICK if args.quick else FULL
    out = args.out / ("quick" if args.quick else "full")
    times = {}

    start = time.perf_counter()
    for name, (defect, _, _) in DETECTORS.items():
        render(name, defect, setting, out / f"train_{name}")
    times["render training sets"] = time.perf_counter() - start

    start = time.perf_counter()
    runs = [out / f"{args.model}_{name}" for name in DETECTORS]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        jobs = [pool.submit(train, args.model, setting, out / f"train_{name}", run, scale, lr)
                for (name, (_, scale, lr)), run in zip(DETECTORS.items(), runs, strict=True)]
        for name, job in zip(DETECTORS, jobs, strict=True):
            times[f"train {name} (in parallel)"] = job.result()
    times["train both"] = time.perf_counter() - start

    start = time.perf_counter()
    from synthgen.job import load_recipe
    from synthgen.validate.detectors import parse_detectors
    from synthgen.validate.study import validate
    from synthgen.validate.sweep import parse_sweep

    job = load_recipe(RECIPE, {"render": {"size": setting["size"]}, "seed": 1})
    n = setting["sizes"]
    sweeps = [parse_sweep(f"bulge.height=0.05:2.0:{n}"),
              parse_sweep(f"short_notch.length=0.1:4.0:{n}")]
    report = out / "report"
    if report.exists():
        shutil.rmtree(report)
    result = validate(job, sweeps, parse_detectors([str(r) for r in runs], []), report,
                      per_size=setting["per_size"], good=setting["good"],
                      recipe_path=str(RECIPE.relative_to(ROOT)))
    times["validate"] = time.perf_counter() - start
    if not args.quick:
        shutil.copyfile(report / "pod.png", ROOT / "docs" / "pod_capped_bottle.png")
    for step, seconds in times.items():
        print(f"{step}: {seconds:.1f} s")
    print(f"report: {report / 'report.html'}")
    for label, by_sweep in result["fits"].items():
        calls = result["false_calls"][label]
        print(f"{label}: false calls {calls['false_calls']}/{calls['good']}")
        for key, fit in by_sweep.items():
            print(f"  {key}: a50={fit['a50']} a90={fit['a90']} a90_95={fit['a90_95']} "
                  f"({fit['message']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

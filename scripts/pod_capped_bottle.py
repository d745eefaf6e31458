"""The README's POD figure: train detectors on the capped bottle, then measure how small a
bulge and a shortened notch they reliably find.

    PYOPENGL_PLATFORM=egl python scripts/pod_capped_bottle.py [--quick] [--out out/pod_capped]

Each defect has its own inspection station, as on a real line:
- bulges: scenes/capped_bottle_validate.yaml, a steep view of the shoulder, neck and cap;
- shortened notches: scenes/capped_bottle_notch.yaml, a close camera aimed at the cap's
  notch (`camera.target`) from just below, so the notch's closed end is seen and lit.

Steps (render and train are skipped when their output is already there, so a rerun
continues):
1. render one training set per station, with only that defect's recipe entry (and
   defect-free samples);
2. train the bundled trainer's `unet` segmenter (base width 8) on each: bulges 400 images
   at 160 px, 10 epochs at lr 1e-3; notches 800 images at 128 px, 10 epochs at lr 3e-3;
   side by side with one torch thread each (two when only one is left to train);
   `synthgen train` semantics: seeded 60/20/20 split, image threshold chosen on the
   validation split;
3. `synthgen validate` each detector on its own station: a sweep of bulge height
   (0.05-2 mm) and of short-notch length (0.1-4 mm), K views per size and M good parts,
   into <out>/report_bulge and <out>/report_notch_view (report.html, pod.png, result.json);
4. put the two POD panels side by side into <out>/pod.png and copy it to
   docs/pod_capped_bottle.png (not with --quick).

Prints the wall time of each step, then a50, a90, a90/95 and the false calls per detector.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Station:
    """One detector: the recipe it is trained and validated on and how it is trained.

    Attributes:
        recipe: the inspection station's recipe.
        defect: the recipe's defect entry it is trained on (the others are dropped).
        sweep: `defect.param=low:high` of the validation sweep (mm).
        samples: training images; size: image side (px, multiple of 16).
        epochs: training epochs; lr: learning rate.
    """

    recipe: Path
    defect: str
    sweep: str
    samples: int
    size: int
    epochs: int
    lr: float


STATIONS = {
    "bulge": Station(ROOT / "scenes" / "capped_bottle_validate.yaml", "bulge",
                     "bulge.height=0.05:2.0", 400, 160, 10, 1e-3),
    "notch_view": Station(ROOT / "scenes" / "capped_bottle_notch.yaml", "short_notch",
                     "short_notch.length=0.1:4.0", 800, 128, 10, 3e-3),
}
FULL = {"sizes": 10, "per_size": 12, "good": 40}
QUICK = {"samples": 40, "size": 64, "epochs": 1, "sizes": 4, "per_size": 3, "good": 6}


def setting_of(station: Station, quick: bool) -> dict:
    """Training and sweep settings of one station, shrunk with --quick."""
    full = {"samples": station.samples, "size": station.size, "epochs": station.epochs, **FULL}
    return {**full, **QUICK} if quick else full


def render(station: Station, setting: dict, data: Path) -> None:
    """The station's recipe with only its defect's entry, rendered to `data` (skipped when
    done)."""
    import yaml

    from synthgen.generate import generate
    from synthgen.job import load_recipe

    if (data / "manifest.json").is_file():
        return
    entries = [e for e in yaml.safe_load(station.recipe.read_text())["defects"]
               if e["type"] == station.defect]
    job = load_recipe(station.recipe, {"samples": setting["samples"], "defects": entries,
                                       "render": {"size": setting["size"]}})
    generate(job, data, workers=1)


def train(model: str, station: Station, setting: dict, data: Path, run: Path,
          threads: int) -> float:
    """Train one run with `threads` torch threads (skipped when done); returns seconds."""
    import torch

    from synthgen.detect.run import train_run

    start = time.perf_counter()
    torch.set_num_threads(threads)
    if not (run / "run.json").is_file():
        config = {"base": 8} if model == "unet" else None  # half width: 3x faster on CPU
        train_run(model, data, run, epochs=setting["epochs"], size=setting["size"],
                  batch_size=16, lr=station.lr, seed=0, config=config)
    return time.perf_counter() - start


def validate_station(station: Station, setting: dict, run: Path, report: Path) -> dict:
    """`synthgen validate` of one run on its station's sweep (seed 1); returns the result."""
    from synthgen.job import load_recipe
    from synthgen.validate.detectors import parse_detectors
    from synthgen.validate.study import validate
    from synthgen.validate.sweep import parse_sweep

    job = load_recipe(station.recipe, {"render": {"size": setting["size"]}, "seed": 1})
    if report.exists():
        shutil.rmtree(report)
    return validate(job, [parse_sweep(f"{station.sweep}:{setting['sizes']}")],
                    parse_detectors([str(run)], []), report, per_size=setting["per_size"],
                    good=setting["good"], recipe_path=str(station.recipe.relative_to(ROOT)))


def side_by_side(panels: list[Path], out: Path) -> None:
    """The POD panels (PNG files of equal height) next to each other, as one PNG."""
    from PIL import Image

    images = [Image.open(p).convert("RGB") for p in panels]
    canvas = Image.new("RGB", (sum(i.width for i in images), max(i.height for i in images)),
                       "white")
    x = 0
    for image in images:
        canvas.paste(image, (x, 0))
        x += image.width
    canvas.save(out, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny run to check the chain")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "pod_capped")
    parser.add_argument("--model", default="unet", help="a preset of synthgen models")
    args = parser.parse_args(argv)
    out = args.out / ("quick" if args.quick else "full")
    settings = {name: setting_of(s, args.quick) for name, s in STATIONS.items()}
    runs = {name: out / f"{args.model}_{name}" for name in STATIONS}
    times = {}

    start = time.perf_counter()
    for name, station in STATIONS.items():
        render(station, settings[name], out / f"train_{name}")
    times["render training sets"] = time.perf_counter() - start

    start = time.perf_counter()
    todo = [name for name in STATIONS if not (runs[name] / "run.json").is_file()]
    threads = max(1, 2 // max(len(todo), 1))  # the reference machine's two cores
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        jobs = {name: pool.submit(train, args.model, station, settings[name],
                                  out / f"train_{name}", runs[name], threads)
                for name, station in STATIONS.items()}
        for name, job in jobs.items():
            times[f"train {name} (in parallel)"] = job.result()
    times["train both"] = time.perf_counter() - start

    results = {}
    for name, station in STATIONS.items():
        start = time.perf_counter()
        results[name] = validate_station(station, settings[name], runs[name],
                                         out / f"report_{name}")
        times[f"validate {name}"] = time.perf_counter() - start
    side_by_side([out / f"report_{name}" / "pod.png" for name in STATIONS], out / "pod.png")
    if not args.quick:
        shutil.copyfile(out / "pod.png", ROOT / "docs" / "pod_capped_bottle.png")
    for step, seconds in times.items():
        print(f"{step}: {seconds:.1f} s")
    for name, result in results.items():
        print(f"report: {out / f'report_{name}' / 'report.html'}")
        for label, by_sweep in result["fits"].items():
            calls = result["false_calls"][label]
            print(f"{label}: false calls {calls['false_calls']}/{calls['good']}")
            for key, fit in by_sweep.items():
                print(f"  {key}: a50={fit['a50']} a90={fit['a90']} a90_95={fit['a90_95']} "
                      f"({fit['message']})")
    print(f"figure: {out / 'pod.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

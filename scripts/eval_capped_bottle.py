"""Every bundled model on a synthetic capped-bottle set: prints a markdown table.

    python scripts/eval_capped_bottle.py [--samples 400] [--epochs 15] [--models ...]
    python scripts/eval_capped_bottle.py --station sidewall --size 128 --models ae_ssim
    python scripts/eval_capped_bottle.py --inspection --size 128 --train-size 64 \
        --models draem --epochs 30 --seeds 0,1,2

Renders scenes/capped_bottle.yaml, or with --station an inspection station (fixed camera,
light and background): `inspection` (scenes/capped_bottle_inspection.yaml, the whole bottle;
--inspection is short for it), `sidewall` (the body: bulges and dents) or `cap` (the closure:
chips and short notches). Only the bulge, dent, short_notch and chip defects are kept (other
recipe settings unchanged; --samples, --size); then trains and evaluates each model with
`synthgen train` / `synthgen evaluate` semantics (seeded 60/20/20 split, thresholds on the
validation split, metrics on the test split). Runs and results go to --out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from synthgen.detect.run import evaluate_run, train_run
from synthgen.generate import generate
from synthgen.job import load_recipe

SCENES = Path(__file__).resolve().parents[1] / "scenes"
RECIPE = SCENES / "capped_bottle.yaml"
STATIONS = {name: SCENES / f"capped_bottle_{name}.yaml"
            for name in ("inspection", "sidewall", "cap")}
KEEP = ("bulge", "dent", "short_notch", "chip")
COLUMNS = ("image_auroc", "pixel_auroc", "box_f1", "box_iou", "accuracy", "precision",
           "recall", "mAP")


def dataset(out: Path, samples: int, size: int, workers: int, recipe: Path = RECIPE) -> Path:
    job = load_recipe(recipe, {"samples": samples, "render": {"size": size},
                               "output": {"formats": ["coco"]}})
    job = job.model_copy(update={"defects": [d for d in job.defects if d.type in KEEP]})
    data = out / "data"
    if not (data / "manifest.json").exists():
        generate(job, data, workers=workers, resume=(data / ".parts").exists())
    return data


def row(model: str, metrics: dict) -> str:
    flat = {**metrics, **metrics.get("at_threshold", {})}
    cells = [f"{flat[c]:.3f}" if isinstance(flat.get(c), float) else "" for c in COLUMNS]
    return f"| {model} | " + " | ".join(cells) + " |"


def mean_std_row(model: str, runs: list[dict]) -> str:
    """A table row of mean ± std (population) over seeds, blank where a metric is missing."""
    cells = []
    for column in COLUMNS:
        values = [({**m, **m.get("at_threshold", {})}).get(column) for m in runs]
        values = [v for v in values if isinstance(v, float)]
        cells.append(f"{np.mean(values):.3f} ± {np.std(values):.3f}" if values else "")
    return f"| {model} | " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="ae_l2,ae_ssim,resnet18")
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seeds", default="0", help="comma-separated; mean ± std over them")
    parser.add_argument("--train-size", type=int, default=None,
                        help="image side the models see (default: --size)")
    parser.add_argument("--station", choices=sorted(STATIONS),
                        help="render this inspection station's recipe instead")
    parser.add_argument("--inspection", action="store_const", const="inspection",
                        dest="station", help="the same as --station inspection")
    parser.add_argument("--resume", action="store_true",
                        help="continue the runs in --out up to --epochs in all")
    parser.add_argument("--out", type=Path, default=Path("runs/eval_capped_bottle"))
    args = parser.parse_args()
    data = dataset(args.out, args.samples, args.size, args.workers,
                   STATIONS[args.station] if args.station else RECIPE)
    size = args.train_size or args.size
    results, rows = {}, []
    for model in args.models.split(","):
        runs = []
        for seed in (int(s) for s in args.seeds.split(",")):
            start = time.perf_counter()
            run = args.out / f"{model}_s{seed}"
            train_run(model, data, run, epochs=args.epochs, size=size, seed=seed,
                      resume=args.resume)
            metrics = evaluate_run(run)
            metrics["train_s"] = time.perf_counter() - start
            runs.append(metrics)
            print(f"{model} seed {seed}: {row(model, metrics)} ({metrics['train_s']:.0f} s)",
                  flush=True)
        results[model] = runs
        rows.append(row(model, runs[0]) if len(runs) == 1 else mean_std_row(model, runs))
        print(rows[-1], flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True))
    header = "| model | " + " | ".join(COLUMNS) + " |"
    print("\n" + header + "\n|" + "---|" * (len(COLUMNS) + 1))
    print("\n".join(rows))


if __name__ == "__main__":
    main()

"""Every bundled model on a synthetic capped-bottle set: prints a markdown table.

    python scripts/eval_capped_bottle.py [--samples 400] [--epochs 15] [--models ...]

Renders scenes/capped_bottle.yaml with the bulge, dent, short_notch and chip defects (other
recipe settings unchanged; --samples, --size), then trains and evaluates each model with
`synthgen train` / `synthgen evaluate` semantics (seeded 60/20/20 split, thresholds on the
validation split, metrics on the test split). Runs and results go to --out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from synthgen.detect.run import evaluate_run, train_run
from synthgen.generate import generate
from synthgen.job import load_recipe

RECIPE = Path(__file__).resolve().parents[1] / "scenes" / "capped_bottle.yaml"
KEEP = ("bulge", "dent", "short_notch", "chip")
COLUMNS = ("image_auroc", "pixel_auroc", "box_f1", "box_iou", "accuracy", "precision",
           "recall", "mAP")


def dataset(out: Path, samples: int, size: int, workers: int) -> Path:
    job = load_recipe(RECIPE, {"samples": samples, "render": {"size": size},
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="ae_l2,ae_ssim,resnet18")
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/eval_capped_bottle"))
    args = parser.parse_args()
    data = dataset(args.out, args.samples, args.size, args.workers)
    results, rows = {}, []
    for model in args.models.split(","):
        start = time.perf_counter()
        run = args.out / model
        train_run(model, data, run, epochs=args.epochs, size=args.size, seed=args.seed)
        metrics = evaluate_run(run)
        metrics["train_s"] = time.perf_counter() - start
        results[model] = metrics
        rows.append(row(model, metrics))
        print(rows[-1], flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True))
    header = "| model | " + " | ".join(COLUMNS) + " |"
    print("\n" + header + "\n|" + "---|" * (len(COLUMNS) + 1))
    print("\n".join(rows))


if __name__ == "__main__":
    main()

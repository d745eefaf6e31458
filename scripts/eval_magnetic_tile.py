"""Unsupervised models on real magnetic tiles: train on good tiles, test on blowholes and
cracks against held-out good tiles. Prints a markdown table for the README.

    python scripts/eval_magnetic_tile.py [--models ae_l2,ae_ssim,...] [--epochs 30] [--size 128]
    python scripts/eval_magnetic_tile.py --models draem --size 64 --epochs 15 --train-limit 250

Data: ../shared/data/magnetic_tile (MT_Free good; MT_Blowhole and MT_Crack defective, with
masks). MT_Free is split 60/20/20 (seeded): the models train on the first part, thresholds
come from the second, and the third joins every defective tile as the test set. Results and
runs go to --out (runs/eval_magnetic_tile).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from synthgen.detect.data import read_mask_folder, split_items
from synthgen.detect.run import evaluate_run, train_items

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "magnetic_tile"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--models", default="ae_l2,ae_ssim")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-limit", type=int, default=None,
                        help="train on at most this many good tiles (the first of the split)")
    parser.add_argument("--out", type=Path, default=Path("runs/eval_magnetic_tile"))
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"no magnetic tile data at {args.data}")
    items = read_mask_folder(args.data, ["MT_Free"],
                             {"MT_Blowhole": "blowhole", "MT_Crack": "crack"})
    good = [i for i in items if i.label == 0]
    bad = [i for i in items if i.label == 1]
    train, val, held_out = split_items(good, (0.6, 0.2, 0.2), rng=args.seed)
    test = held_out + bad
    if args.train_limit is not None:
        train = train[: args.train_limit]
    print(f"train {len(train)} good, val {len(val)} good, test {len(held_out)} good + "
          f"{len(bad)} defective; {args.size}x{args.size}, {args.epochs} epochs")
    rows, results = [], {}
    for model in args.models.split(","):
        start = time.perf_counter()
        run = args.out / model
        train_items(model, train, val, test, run, epochs=args.epochs, size=args.size,
                    seed=args.seed)
        metrics = evaluate_run(run, test)
        metrics["train_s"] = time.perf_counter() - start
        results[model] = metrics
        rows.append(f"| {model} | {metrics['image_auroc']:.3f} | {metrics['pixel_auroc']:.3f} "
                    f"| {metrics['aupro_0.3']:.3f} |")
        print(rows[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True))
    print("\n| model | image AUROC | pixel AUROC | AUPRO (FPR 0.3) |\n|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

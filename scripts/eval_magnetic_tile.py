"""Models on real magnetic tiles: unsupervised ones train on good tiles and are tested on
blowholes and cracks against held-out good tiles; with --supervised the defective tiles are
split too. Prints a markdown table for the README.

    python scripts/eval_magnetic_tile.py [--models ae_l2,ae_ssim,...] [--epochs 30] [--size 128]
    python scripts/eval_magnetic_tile.py --models draem --size 64 --epochs 15 --train-limit 250
    python scripts/eval_magnetic_tile.py --supervised --models unet --size 256 --set base=8
    python scripts/eval_magnetic_tile.py --synthetic-anomalies --models unet --size 256 \
        --set base=8 --out runs/eval_magnetic_tile_synthetic

Data: ../shared/data/magnetic_tile (MT_Free good; MT_Blowhole and MT_Crack defective, with
masks). The set holds the same tile under several lights, re-cropped by a few pixels, so
near-copies (sizes within 2 %, grey thumbnails correlating at >= 0.95) are grouped and a group
never straddles two parts (--plain-split: image by image).
MT_Free is split 60/20/20 (seeded): the models train on the first part, thresholds
come from the second, and the third joins every defective tile as the test set. With
--supervised every class is split 60/20/20 (stratified by defect type) instead: the models
train on good and defective tiles with their masks, and the test set holds 20 % of each
class, never seen in training. Results and runs go to --out (runs/eval_magnetic_tile).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

from synthgen.detect.data import read_mask_folder, split_items
from synthgen.detect.duplicates import near_duplicate_groups
from synthgen.detect.models.registry import parse_model_options
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
    parser.add_argument("--supervised", action="store_true",
                        help="split the defective tiles too and train on all classes")
    parser.add_argument("--synthetic-anomalies", action="store_true",
                        help="train on the good tiles with synthetic Perlin anomalies "
                             "(e.g. the supervised unet without any real defect)")
    parser.add_argument("--plain-split", action="store_true",
                        help="split at random, image by image (the README's rows before the "
                             "near-duplicate grouping); by default near-copies of one tile "
                             "stay in one part")
    parser.add_argument("--set", dest="settings", action="append", default=[],
                        metavar="KEY=VALUE", help="a preset option, as for synthgen train")
    parser.add_argument("--out", type=Path, default=Path("runs/eval_magnetic_tile"))
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"no magnetic tile data at {args.data}")
    items = read_mask_folder(args.data, ["MT_Free"],
                             {"MT_Blowhole": "blowhole", "MT_Crack": "crack"})
    groups = None if args.plain_split else near_duplicate_groups(items)
    if groups is not None:
        counts = Counter(groups)
        print(f"{sum(c for c in counts.values() if c > 1)} tiles fall into "
              f"{sum(c > 1 for c in counts.values())} groups of near-copies (sizes within 2 %, "
              "thumbnail NCC >= 0.95); each group stays in one part")
    if args.supervised:
        train, val, test = split_items(items, (0.6, 0.2, 0.2), rng=args.seed, groups=groups)
    else:
        good_index = [k for k, item in enumerate(items) if item.label == 0]
        train, val, held_out = split_items(
            [items[k] for k in good_index], (0.6, 0.2, 0.2), rng=args.seed,
            groups=None if groups is None else [groups[k] for k in good_index])
        test = held_out + [item for item in items if item.label == 1]
    if args.train_limit is not None:
        train = train[: args.train_limit]
    print(" ".join(f"{name} {sum(i.label == 0 for i in part)} good + "
                   f"{sum(i.label == 1 for i in part)} defective,"
                   for name, part in (("train", train), ("val", val), ("test", test)))
          + f" {args.size}x{args.size}, {args.epochs} epochs")
    config = parse_model_options(args.settings)
    rows, results = [], {}
    for model in args.models.split(","):
        start = time.perf_counter()
        run = args.out / model
        train_items(model, train, val, test, run, epochs=args.epochs, size=args.size,
                    seed=args.seed, config=config,
                    synthetic_anomalies=args.synthetic_anomalies or None)
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

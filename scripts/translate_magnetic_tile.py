"""Defect translation on real magnetic tiles, checked downstream by a classifier.

    nice -n 5 python scripts/translate_magnetic_tile.py [--quick] [--size 64] [--minutes 15]

1. Split MT_Free (good) 60/20/20 and MT_Blowhole (or --defect MT_Crack): --n-defective images
   (a few dozen) train the translator, the rest are held out for the test.
2. Train two translators on the good training tiles + those defective tiles, each bounded
   to --minutes of wall time: the method ("full": mask branch, D_C, background loss) and
   plain CycleGAN ("plain": adversarial, cycle, identity).
3. For each, translate every good training / validation tile (`apply_translator`), then
   train a ResNet-18 (random init) on real good + synthetic defective images only, choose
   its threshold on validation (real good + synthetic defective), and test on held-out real
   good and real defective tiles.
4. Print a Markdown table (accuracy, precision, recall; the always-good baseline) and write
   results.json, and a grid of translations with their masks to docs/.

Everything is seeded (--seed); results go to --out (runs/translate_magnetic_tile).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
from PIL import Image

from synthgen.detect.data import Item, load_image, read_mask_folder, split_items
from synthgen.detect.metrics import classification_report
from synthgen.detect.run import evaluate_run, train_items
from synthgen.translate.apply import Translator, apply_translator
from synthgen.translate.losses import PRESETS, LossWeights
from synthgen.translate.model import TranslatorConfig
from synthgen.translate.train import Schedule, train_translator

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "magnetic_tile"
DOCS = Path(__file__).resolve().parents[1] / "docs"


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=SHARED)
    p.add_argument("--defect", default="MT_Blowhole", choices=["MT_Blowhole", "MT_Crack"])
    p.add_argument("--n-defective", type=int, default=40, help="defective tiles to learn from")
    p.add_argument("--size", type=int, default=64, help="translator crop side, pixels")
    p.add_argument("--ngf", type=int, default=16)
    p.add_argument("--blocks", type=int, default=4)
    p.add_argument("--iters", type=int, default=2000, help="translator iterations (half "
                   "constant rate, half linear decay), bounded by --minutes")
    p.add_argument("--minutes", type=float, default=15.0, help="wall-time bound per translator")
    p.add_argument("--cls-size", type=int, default=64)
    p.add_argument("--cls-epochs", type=int, default=8)
    p.add_argument("--variants", default="full,plain")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest "
                   "on a shared, loaded machine)")
    p.add_argument("--quick", action="store_true", help="a smoke run: tiny everything")
    p.add_argument("--out", type=Path, default=Path("runs/translate_magnetic_tile"))
    args = p.parse_args()
    if args.quick:
        args.iters, args.minutes, args.cls_epochs, args.size = 20, 1.0, 1, 32
        args.ngf, args.blocks = 8, 1
    return args


def _split(args):
    items = read_mask_folder(args.data, ["MT_Free"], {args.defect: "defect"})
    good = [i for i in items if i.label == 0]
    bad = [i for i in items if i.label == 1]
    g_train, g_val, g_test = split_items(good, (0.6, 0.2, 0.2), rng=args.seed)
    order = np.random.default_rng(args.seed).permutation(len(bad))
    learn = [bad[k] for k in order[: args.n_defective]]
    held = [bad[k] for k in order[args.n_defective:]]
    if args.quick:
        g_train, g_val, g_test, held = g_train[:16], g_val[:8], g_test[:8], held[:8]
    return g_train, g_val, g_test, learn, held


def _synthetic(folder: Path) -> list[Item]:
    """Every translated image as a defective Item (the translator was asked for a defect)."""
    images = sorted((folder / "mvtec").rglob("test/*/*.png"))
    return [Item(image=p, label=1, defect_type="defect", class_names=("defect",))
            for p in images]


def _translator(args, variant: str, good, learn) -> tuple[Path, dict]:
    run = args.out / f"translator_{variant}"
    weights = LossWeights(enabled=PRESETS[variant])
    config = TranslatorConfig(size=args.size, ngf=args.ngf, ndf=args.ngf, n_blocks=args.blocks,
                              weights=weights, defect_type="defect")
    per_epoch = max(1, args.iters // 20)
    schedule = Schedule(epochs=10, decay_epochs=10, iters_per_epoch=per_epoch)
    result = train_translator(good, learn, run, config, schedule, seed=args.seed,
                              resume=True, max_seconds=args.minutes * 60,
                              checkpoint_every=100)
    return run, result


def _grid(args, runs: dict[str, Path], sources: list[Item]) -> Path:
    """Rows: good tiles, then per run its translations and masks (red)."""
    side = 80
    rows = [[np.asarray(Image.fromarray(load_image(i)).resize((side, side))) for i in sources]]
    for run in runs.values():
        translator = Translator.from_run(run, "cpu")
        images, masks = [], []
        for item in sources:
            rgb, mask = translator(np.asarray(Image.fromarray(load_image(item)).resize(
                (side, side))))
            shown = rgb.copy()
            shown[mask] = (0.5 * shown[mask] + [127, 0, 0]).astype(np.uint8)
            images.append(rgb)
            masks.append(shown)
        rows += [images, masks]
    grid = np.concatenate([np.concatenate(r, axis=1) for r in rows], axis=0)
    path = args.out / "grid.png" if args.quick else DOCS / "translate_magnetic_tile.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).quantize(64).save(path, optimize=True)  # a small PNG for the README
    return path


def _baseline(test) -> dict:
    labels = np.array([i.label for i in test])
    return classification_report(labels, np.zeros_like(labels)).as_dict()


def main() -> None:
    args = _args()
    import torch

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if not args.data.is_dir():
        raise SystemExit(f"no magnetic tile data at {args.data}")
    g_train, g_val, g_test, learn, held = _split(args)
    test = g_test + held
    print(f"good {len(g_train)}/{len(g_val)}/{len(g_test)} (train/val/test); {args.defect}: "
          f"{len(learn)} to learn from, {len(held)} held out", flush=True)
    results: dict = {"baseline_always_good": _baseline(test), "args": {
        k: str(v) for k, v in vars(args).items()}}
    runs = {}
    for variant in args.variants.split(","):
        start = time.perf_counter()
        run, fit = _translator(args, variant, g_train, learn)
        runs[variant] = run
        t_train = time.perf_counter() - start
        last = fit["history"][-1] if fit["history"] else {}
        synth_dir = args.out / f"synthetic_{variant}"
        report = apply_translator(run, g_train + g_val, synth_dir, formats=("mvtec",),
                                  seed=args.seed, resume=True, name="tile")
        synth = _synthetic(synth_dir)
        n_train = len(g_train)
        cls_train = g_train + synth[:n_train]
        cls_val = g_val + synth[n_train:]
        cls_run = args.out / f"resnet18_{variant}"
        train_items("resnet18", cls_train, cls_val, test, cls_run, epochs=args.cls_epochs,
                    size=args.cls_size, batch_size=16, seed=args.seed, resume=True)
        metrics = evaluate_run(cls_run, test)
        results[variant] = {
            "translator_seconds": round(t_train, 1), "iterations": fit["global_step"],
            "epochs_done": fit["epoch"], "stopped_by_time": fit["stopped_early"],
            "last_epoch_losses": last, "synthetic": report.written,
            "synthetic_with_mask": report.defective,
            "test": metrics["at_threshold"], "image_auroc": metrics.get("image_auroc"),
        }
        print(json.dumps({variant: results[variant]}, indent=1), flush=True)
    results["grid"] = str(_grid(args, runs, g_test[:6]))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    base = results["baseline_always_good"]
    print("\n| training data | accuracy | precision | recall | image AUROC |\n"
          "|---|---|---|---|---|")
    print(f"| always good (baseline) | {base['accuracy']:.3f} | - | 0.000 | 0.5 |")
    for variant in runs:
        t = results[variant]["test"]
        auroc = results[variant]["image_auroc"]
        print(f"| real good + {variant} translations | {t['accuracy']:.3f} | "
              f"{t['precision']:.3f} | {t['recall']:.3f} | "
              f"{'-' if auroc is None else f'{auroc:.3f}'} |")


if __name__ == "__main__":
    main()

"""Benchmark of the bundled trainer's models: training images/s and inference ms/image.

    python scripts/bench_detect.py [--size 256] [--batch 8] [--device cpu]

Random images (the speed does not depend on content); random init. Inference is timed per
image at batch 1 and per image in batches; the last line is `worst_infer_ms=<float>`, the
slowest batch-1 inference over the autoencoder family (ae_l2, ae_ssim, unet_ae, vae; target:
at most 20 ms on the CPU). Models that own their training step (GANs, clustering) are timed
through it; anogan's inference includes its latent search at the preset's search_steps, and
the clustering models are fitted on the random images first.

    python scripts/bench_detect.py --models anogan,fanogan,dcgan,ganomaly,draem,kmeans,birch
"""

from __future__ import annotations

import argparse
import time

import torch

from synthgen.detect.engine import make_optimizers, owns_step, pick_device
from synthgen.detect.models import MODELS, build_model

AUTOENCODERS = ("ae_l2", "ae_ssim", "unet_ae", "vae")


def _timed(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def bench(name: str, size: int, batch: int, device: torch.device) -> tuple[float, float, float]:
    """(training images/s, inference ms/image at batch 1, at `batch`)."""
    spec = MODELS.get(name)
    options = {k: size for k in ("image_size", "size") if k in spec.default_config}
    model = build_model(name, **options).to(device)
    images = torch.rand(batch, 3, size, size, device=device)
    box = torch.tensor([[size * 0.3, size * 0.3, size * 0.5, size * 0.5]], device=device)
    data = {"image": images, "mask": torch.zeros(batch, 1, size, size, device=device),
            "label": torch.zeros(batch, dtype=torch.long, device=device),
            "boxes": [box] * batch,
            "classes": [torch.zeros(1, dtype=torch.long, device=device)] * batch}
    optimizers = make_optimizers(model, 1e-4)
    optimizer = next(iter(optimizers.values()), None)

    def step() -> None:
        if owns_step(model):
            model.train_step(data, optimizers, lambda params: None)
            return
        optimizer.zero_grad()
        if spec.kind in ("anomaly", "detector"):
            loss = model.loss(data)
        elif spec.kind == "segmenter":
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(images),
                                                                        data["mask"])
        else:
            loss = torch.nn.functional.cross_entropy(model(images), data["label"])
        loss.backward()
        optimizer.step()

    model.train()
    train_s = _timed(step, 3)
    if callable(getattr(model, "fit_after", None)):
        model.fit_after([data], device)
    model.eval()

    def infer(x: torch.Tensor):
        with torch.no_grad():
            if spec.kind == "anomaly":
                return model.score(x)
            return model.predict(x) if spec.kind == "detector" else model(x)

    one = _timed(lambda: infer(images[:1]), 10)
    many = _timed(lambda: infer(images), 3) / batch
    return batch / train_s, one * 1e3, many * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default=None)
    parser.add_argument("--models", default=None, help="comma-separated (default: all)")
    args = parser.parse_args()
    device = pick_device(args.device)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.size}x{args.size}")
    worst = 0.0
    names = args.models.split(",") if args.models else MODELS.names()
    for name in names:
        train, one, many = bench(name, args.size, args.batch, device)
        print(f"{name:>12} ({MODELS.get(name).kind}): train {train:6.1f} images/s, "
              f"infer {one:7.1f} ms/image at batch 1, {many:7.1f} ms/image at batch "
              f"{args.batch}")
        if name in AUTOENCODERS:
            worst = max(worst, one)
    print(f"worst_infer_ms={worst:.2f}")


if __name__ == "__main__":
    main()

"""Training speed of the translator: iterations/s at 256×256, batch 1 (the paper's setting).

    nice -n 5 python scripts/bench_translate.py [--size 256] [--warmup 2] [--iters 5]
        [--threads N] [--losses full|plain] [--ngf 64] [--blocks 9]

One iteration is a full `train_step`: the generator update (G and F, every loss on) and the
critic update (D_X, D_Y, D_C, through the history pools). Random images and masks, so only
the arithmetic is measured. Runs on the CPU, and on CUDA (fp32 and bf16 autocast) when
present. The last line is `iters_per_s=<float>`: CUDA bf16 when present, else the CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch

from synthgen.translate.losses import PRESETS, LossWeights
from synthgen.translate.model import CycleGANModel, TranslatorConfig


def bench(device: str, args: argparse.Namespace, amp: bool = False) -> float:
    """Iterations per second of `args.iters` timed train steps after `args.warmup` ones."""
    torch.manual_seed(0)
    config = TranslatorConfig(size=args.size, ngf=args.ngf, ndf=args.ngf, n_blocks=args.blocks,
                              weights=LossWeights(enabled=PRESETS[args.losses]))
    model = CycleGANModel(config).to(device)
    opt_g = torch.optim.Adam(model.generators(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(model.critics(), 2e-4, betas=(0.5, 0.999))
    pools = model.make_pools(0)
    g = torch.Generator().manual_seed(0)
    shape = (1, 3, args.size, args.size)
    x = (torch.rand(shape, generator=g) * 2 - 1).to(device)
    y = (torch.rand(shape, generator=g) * 2 - 1).to(device)
    m = (torch.rand((1, 1, args.size, args.size), generator=g) > 0.9).float().to(device)
    ctx = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if amp else contextlib.nullcontext

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    for _ in range(args.warmup):
        model.train_step(x, y, m, opt_g, opt_d, pools, ctx)
    sync()
    start = time.perf_counter()
    for _ in range(args.iters):
        model.train_step(x, y, m, opt_g, opt_d, pools, ctx)
    sync()
    return args.iters / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--losses", default="full", choices=sorted(PRESETS))
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--blocks", type=int, default=9)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"translator training, {args.size}x{args.size}, batch 1, losses {args.losses}, "
          f"ngf {args.ngf}, {args.blocks} residual blocks; {args.warmup} warm-up + "
          f"{args.iters} timed iterations", flush=True)
    cpu = bench("cpu", args)
    print(f"cpu ({torch.get_num_threads()} threads): {cpu:.3f} it/s "
          f"({1 / cpu:.2f} s/it)", flush=True)
    result = cpu
    if torch.cuda.is_available():
        args.iters, args.warmup = max(args.iters, 20), max(args.warmup, 5)
        fp32 = bench("cuda", args)
        bf16 = bench("cuda", args, amp=True)
        print(f"cuda {torch.cuda.get_device_name()}: fp32 {fp32:.2f} it/s, "
              f"bf16 autocast {bf16:.2f} it/s")
        result = bf16
    print(f"iters_per_s={result:.4f}")


if __name__ == "__main__":
    main()

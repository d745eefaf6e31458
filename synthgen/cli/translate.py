"""Defect translation commands: synthgen translate train | apply | eval.

Registered by the app as `app.add_typer(translate_app, name="translate")`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from synthgen.cli.common import console, fail, out_console, progress_bar
from synthgen.errors import MissingDependency, SynthgenError

translate_app = typer.Typer(
    help="Defect translation: a CycleGAN with a mask branch paints real defects onto good "
         "images.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _need_torch() -> None:
    """Stop with the pip command when torch / torchvision are missing."""
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError:
        raise fail(str(MissingDependency("defect translation", "torch", "torch, torchvision"))
                   ) from None


def _losses(text: str) -> tuple[str, ...]:
    from synthgen.translate.losses import ALL_LOSSES, PRESETS

    if text in PRESETS:
        return PRESETS[text]
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in ALL_LOSSES]
    if bad or not names:
        raise fail(f"--losses {text!r}: expected a preset {sorted(PRESETS)} or a comma list "
                   f"of {list(ALL_LOSSES)}")
    return names


@translate_app.command()
def train(
    good: Annotated[Path, typer.Option("--good", help="folder of good images or a dataset")],
    defective: Annotated[Path, typer.Option("--defective", help="folder of defective images "
                                            "(with same-stem masks) or a dataset")],
    out: Annotated[Path, typer.Option("-o", "--out", help="run folder")],
    masks: Annotated[Path | None, typer.Option("--masks", help="mask folder for a plain "
                                               "defective image folder")] = None,
    losses: Annotated[str, typer.Option("--losses", help="full, plain, no_background, "
                                        "no_consistency, or a comma list")] = "full",
    size: Annotated[int, typer.Option("--size", help="crop side, pixels")] = 256,
    ngf: Annotated[int, typer.Option("--ngf")] = 64,
    blocks: Annotated[int, typer.Option("--blocks", help="residual blocks")] = 9,
    epochs: Annotated[int, typer.Option("--epochs", help="constant-rate epochs")] = 100,
    decay_epochs: Annotated[int, typer.Option("--decay-epochs")] = 200,
    iters_per_epoch: Annotated[int | None, typer.Option("--iters-per-epoch")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 1,
    lr: Annotated[float, typer.Option("--lr")] = 2e-4,
    w_cycle: Annotated[float, typer.Option("--w-cycle")] = 5.0,
    w_identity: Annotated[float, typer.Option("--w-identity")] = 10.0,
    w_consistency: Annotated[float, typer.Option("--w-consistency")] = 150.0,
    w_background: Annotated[float, typer.Option("--w-background")] = 0.05,
    defect_type: Annotated[str, typer.Option("--defect-type")] = "translated",
    device: Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:1")] = None,
    amp: Annotated[bool, typer.Option("--amp/--no-amp", help="bf16 autocast on CUDA")] = False,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    resume: Annotated[bool, typer.Option("--resume")] = False,
    max_minutes: Annotated[float | None, typer.Option("--max-minutes")] = None,
) -> None:
    """Train a translator from good to defective images (checkpoints resume)."""
    _need_torch()
    from synthgen.translate.data import read_domain
    from synthgen.translate.losses import LossWeights
    from synthgen.translate.model import TranslatorConfig
    from synthgen.translate.train import Schedule, train_translator

    try:
        weights = LossWeights(cycle=w_cycle, identity=w_identity, consistency=w_consistency,
                              background=w_background, enabled=_losses(losses))
        config = TranslatorConfig(size=size, ngf=ngf, ndf=ngf, n_blocks=blocks,
                                  weights=weights, defect_type=defect_type)
        schedule = Schedule(epochs, decay_epochs, lr, 0.5, batch_size, iters_per_epoch)
        good_items = read_domain(good, "good")
        bad_items = read_domain(defective, "defective", masks)
        bar, task = progress_bar("training")
        with bar:
            result = train_translator(
                good_items, bad_items, out, config, schedule, device=device, amp=amp,
                seed=seed, resume=resume,
                max_seconds=None if max_minutes is None else max_minutes * 60,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
                data_note={"good_dir": str(good), "defective_dir": str(defective)})
    except (SynthgenError, ValueError) as error:
        raise fail(str(error)) from None
    state = "stopped (time limit)" if result["stopped_early"] else "finished"
    console.print(f"{state} at epoch {result['epoch']}, {result['global_step']} iterations "
                  f"in {result['seconds']:.0f} s; run: {out}")


@translate_app.command()
def apply(
    run: Annotated[Path, typer.Argument(help="a translator run folder")],
    good: Annotated[Path, typer.Option("--good", help="folder of good images to translate")],
    out: Annotated[Path, typer.Option("-o", "--out", help="output folder")],
    n: Annotated[int | None, typer.Option("--n", help="samples (default: one per image)")]
    = None,
    formats: Annotated[str, typer.Option("--format", help="mvtec,coco,yolo")] = "mvtec",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    threshold: Annotated[float | None, typer.Option("--threshold")] = None,
    name: Annotated[str, typer.Option("--name", help="dataset name")] = "translated",
    device: Annotated[str | None, typer.Option("--device")] = None,
    resume: Annotated[bool, typer.Option("--resume")] = False,
) -> None:
    """Translate good images into defective ones, written with binary masks and boxes."""
    _need_torch()
    from synthgen.translate.apply import apply_translator

    fmts = [f.strip() for f in formats.split(",") if f.strip()]
    try:
        bar, task = progress_bar("translating")
        with bar:
            report = apply_translator(
                run, good, out, n=n, formats=fmts, seed=seed, device=device,
                threshold=threshold, name=name, resume=resume,
                progress=lambda done, total: bar.update(task, completed=done, total=total))
    except (SynthgenError, ValueError) as error:
        raise fail(str(error)) from None
    console.print(f"wrote {report.written} translations ({report.defective} with a defect "
                  f"mask) to {out}")


@translate_app.command("eval")
def evaluate(
    real: Annotated[Path, typer.Option("--real", help="real defective images")],
    fake: Annotated[Path, typer.Option("--fake", help="translated images (apply's output)")],
    train_dir: Annotated[Path | None, typer.Option("--train", help="the translator's "
                                                   "defective training images")] = None,
    inception_weights: Annotated[Path | None, typer.Option("--inception-weights")] = None,
    lpips_backbone: Annotated[Path | None, typer.Option("--lpips-backbone")] = None,
    lpips_heads: Annotated[Path | None, typer.Option("--lpips-heads")] = None,
    lpips_net: Annotated[str, typer.Option("--lpips-net", help="alex or vgg")] = "alex",
    proxy_seed: Annotated[int | None, typer.Option(
        "--proxy-seed", help="use seeded random PROXY networks (no weights; numbers only "
        "compare runs with each other)")] = None,
    size: Annotated[int, typer.Option("--size")] = 128,
    out: Annotated[Path | None, typer.Option("-o", "--out", help="write the JSON here")]
    = None,
) -> None:
    """FID, KID and LPIPS diversity / nearest-training distance of translated images."""
    _need_torch()
    from synthgen.detect.data import load_image
    from synthgen.translate.data import read_domain
    from synthgen.translate.metrics import (
        LPIPS,
        InceptionExtractor,
        ProxyExtractor,
        evaluate_images,
    )
    from synthgen.writers.atomic import write_json

    try:
        if proxy_seed is not None:
            extractor, lpips = ProxyExtractor(proxy_seed), LPIPS.proxy(proxy_seed)
        else:
            extractor = InceptionExtractor(inception_weights)
            lpips = (LPIPS.from_files(lpips_backbone, lpips_heads, lpips_net)
                     if lpips_backbone or lpips_heads else None)
        real_images = [load_image(i) for i in read_domain(real, "defective")]
        fake_images = [load_image(i) for i in read_domain(fake, "defective")]
        training = ([load_image(i) for i in read_domain(train_dir, "defective")]
                    if train_dir else None)
        result = evaluate_images(real_images, fake_images, training, extractor, lpips,
                                 size=size)
    except (SynthgenError, ValueError) as error:
        raise fail(str(error)) from None
    if out is not None:
        write_json(out, result, indent=2)
    out_console.print_json(json.dumps(result))

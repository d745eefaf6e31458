"""Using a trained translator: good images in, defective images and their masks out.

    translator = Translator.from_run("runs/tile")             # G on the CPU or CUDA
    rgb, mask = translator(good_rgb)                          # (H, W, 3) uint8, (H, W) bool
    apply_translator("runs/tile", "good/", "out/fake", n=200) # written by the writers

`apply_translator` writes each translation through the project's writers (mvtec, coco,
yolo and the manifest), one defect instance per 8-connected component of the binarised mask
(boxes follow from the masks in the writers), with provenance in every manifest record: the
checkpoint path and SHA-256, the source image and the seed. A translation whose mask is empty
is written as a good image. Runs without a mask branch (plain CycleGAN) get a difference
mask instead: pixels whose mean absolute change exceeds `diff_threshold` (recorded as
`mask_source: "difference"`).

`TranslateStage` is the same translation as a stage of a render job: rendered RGB in,
translated RGB and the translated-defect mask out, at the render's size.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydantic import Field

from synthgen.config import StrictModel
from synthgen.errors import ConfigError

log = logging.getLogger(__name__)

FORMATS = ("mvtec", "coco", "yolo")


def to_uint8(batch) -> np.ndarray:
    """(B, 3, H, W) torch float in [-1, 1] → (B, H, W, 3) uint8."""
    array = batch.detach().float().clamp(-1, 1).cpu().numpy()
    return ((array.transpose(0, 2, 3, 1) + 1.0) * 127.5 + 0.5).astype(np.uint8)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Translator:
    """G of a trained run, ready to translate whole images.

    Args:
        generator: the ResnetGenerator G (eval mode is set here).
        size: side the image is resized to for G (the run's training size).
        threshold: mask probability threshold.
        device: torch device of G.
        checkpoint: the checkpoint file it came from (provenance).
        defect_type: the defect name the run paints.
        diff_threshold: for runs without mask branch, the mean absolute change (in [0, 2]
            image units) above which a pixel counts as changed.
    """

    def __init__(self, generator, size: int, threshold: float, device, checkpoint: Path,
                 defect_type: str, diff_threshold: float = 0.25):
        self.G = generator.eval()
        self.size, self.threshold, self.device = size, threshold, device
        self.checkpoint, self.defect_type = Path(checkpoint), defect_type
        self.diff_threshold = diff_threshold
        self.sha256 = file_sha256(checkpoint)

    @classmethod
    def from_run(cls, run: str | Path, device: str | None = None,
                 threshold: float | None = None) -> Translator:
        """Load G from `run/last.pt` (or a checkpoint file).

        Raises:
            ConfigError: no checkpoint there.
        """
        from synthgen.detect.engine import pick_device
        from synthgen.translate.model import TranslatorConfig
        from synthgen.translate.networks import ResnetGenerator
        from synthgen.translate.train import CHECKPOINT, load_translator_checkpoint

        run = Path(run)
        path = run / CHECKPOINT if run.is_dir() else run
        ckpt = load_translator_checkpoint(path)
        config = TranslatorConfig.model_validate(ckpt["config"])
        dev = pick_device(device)
        gen = ResnetGenerator(3, 3, config.ngf, config.n_blocks, config.mask_branch)
        state = {k[2:]: v for k, v in ckpt["model"].items() if k.startswith("G.")}
        gen.load_state_dict(state)
        return cls(gen.to(dev), config.size,
                   config.mask_threshold if threshold is None else threshold, dev, path,
                   config.defect_type)

    @property
    def has_mask(self) -> bool:
        return self.G.has_mask

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Translate one image.

        Args:
            rgb: (H, W, 3) uint8.

        Returns:
            (H, W, 3) uint8 translated image and (H, W) bool defect mask, at the input's
            size (G runs at size²; image resized back bicubic, mask nearest).
        """
        import torch

        height, width = rgb.shape[:2]
        small = np.asarray(Image.fromarray(rgb).resize((self.size, self.size), Image.BICUBIC))
        x = torch.from_numpy(small.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0)
        with torch.no_grad():
            fake, logits = self.G(x[None].to(self.device))
        if logits is not None:
            mask = (torch.sigmoid(logits.float()) > self.threshold)[0, 0].cpu().numpy()
        else:
            change = (fake.float().cpu() - x[None]).abs().mean(dim=1)[0].numpy()
            mask = change > self.diff_threshold
        out = Image.fromarray(to_uint8(fake)[0])
        if (height, width) != (self.size, self.size):
            out = out.resize((width, height), Image.BICUBIC)
            mask = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(
                (width, height), Image.NEAREST)) > 127
        return np.asarray(out, dtype=np.uint8), np.asarray(mask, dtype=bool)


@dataclass(frozen=True)
class ApplyReport:
    """What `apply_translator` wrote: samples, how many show a defect, the output folder."""

    out: Path
    written: int
    defective: int
    skipped: int


def _sample(index: int, rgb: np.ndarray, mask: np.ndarray, translator: Translator,
            source: Path, seed: int):
    from synthgen.labels import bbox, components
    from synthgen.writers import Instance, LabelledSample

    parts = components(mask)
    instances = tuple(Instance(translator.defect_type, k + 1, part, True)
                      for k, part in enumerate(parts))
    record = {
        "index": index, "stem": f"{index:06d}", "split": "test", "is_good": not parts,
        "source_image": str(source), "seed": seed,
        "checkpoint": str(translator.checkpoint.resolve()),
        "checkpoint_sha256": translator.sha256,
        "mask_source": "mask_branch" if translator.has_mask else "difference",
        "defects": [{"type": translator.defect_type, "instance": k + 1, "visible": True,
                     "mask_area_px": int(p.sum()), "bbox": bbox(p)}
                    for k, p in enumerate(parts)],
    }
    return LabelledSample(index, rgb, np.ones(mask.shape, bool), instances, "test", record)


def apply_translator(
    run: str | Path,
    good: str | Path | Sequence[Any],
    out: str | Path,
    *,
    n: int | None = None,
    formats: Sequence[str] = ("mvtec",),
    seed: int = 0,
    device: str | None = None,
    threshold: float | None = None,
    name: str = "translated",
    resume: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ApplyReport:
    """Translate good images and write them as a dataset (see the module docstring).

    Args:
        run: translator run folder (or checkpoint file).
        good: folder of good images (any layout `read_domain` reads) or a list of Items.
        out: output folder.
        n: samples to write (default: one per good image); the sources are drawn without
            replacement from a seeded permutation, cycling when n exceeds them.
        formats: writers among "mvtec", "coco", "yolo" (the manifest always).
        seed: seeds the choice of sources (recorded per sample).
        threshold: mask probability threshold (default: the run's).
        name: dataset name (the MVTec category folder).
        resume: keep the samples already written in `out`.

    Raises:
        ConfigError: an unknown format, an empty good set, or a non-empty output folder
            without `resume`.
    """
    from synthgen.detect.data import load_image
    from synthgen.translate.data import read_domain
    from synthgen.writers import WRITERS, DatasetInfo
    from synthgen.writers.manifest import ManifestWriter

    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ConfigError(f"format {unknown[0]!r} is not one of {list(FORMATS)}")
    items = read_domain(good, "good") if isinstance(good, str | Path) else list(good)
    if not items:
        raise ConfigError("no good image to translate")
    out = Path(out)
    manifest = ManifestWriter(out)
    done = manifest.done_indices()
    if done and not resume:
        raise ConfigError(f"{out} already holds {len(done)} translated samples; pass --resume "
                          "or choose an empty folder")
    translator = Translator.from_run(run, device, threshold)
    n = len(items) if n is None else int(n)
    order = np.random.default_rng(seed).permutation(len(items))
    first = load_image(items[0])
    info = DatasetInfo(name, (translator.defect_type,), first.shape[1], first.shape[0])
    writers = [WRITERS.get(f)(out, info) for f in formats]
    written = defective = 0
    for index in range(n):
        if index in done:
            continue
        item = items[int(order[index % len(items)])]
        rgb, mask = translator(load_image(item))
        sample = _sample(index, rgb, mask, translator, Path(item.image), seed)
        for writer in writers:
            writer.write(sample)
        manifest.write(sample)  # last: marks the sample done
        written += 1
        defective += int(not sample.is_good)
        if progress:
            progress(index + 1, n)
    records = manifest.records(range(n))
    for writer in writers:
        writer.finalize(records)
    manifest.finalize(records)
    log.info("translated %d images into %s (%d show a defect)", written, out, defective)
    return ApplyReport(out, written, defective, len(done))


# --------------------------------------------------------------------------- render stage


class TranslateSpec(StrictModel):
    """The `translate:` section of a recipe: translate renders toward real images.

    Attributes:
        run: translator run folder (or its last.pt).
        probability: share of samples translated (each drawn from the sample's rng).
        threshold: mask probability threshold (None: the run's).
        device: "cpu", "cuda" or None (CUDA when present).
    """

    run: Path
    probability: float = Field(0.5, ge=0.0, le=1.0)
    threshold: float | None = Field(None, gt=0.0, lt=1.0)
    device: str | None = None


class TranslateStage:
    """A render-job stage: with probability p, translate the rendered image.

    Call: stage(rgb, rng) → (rgb', mask): rgb (H, W, 3) uint8; rng the sample's
    np.random.Generator (one uniform draw); returns the translated (or unchanged) (H, W, 3)
    uint8 image and the (H, W) bool mask of the painted defect (all False when not
    translated or when nothing was painted). `last_params` records what happened.
    """

    def __init__(self, translator: Translator, probability: float = 0.5):
        self.translator, self.probability = translator, float(probability)
        self.last_params: dict[str, Any] = {}

    @classmethod
    def from_spec(cls, spec: TranslateSpec) -> TranslateStage:
        return cls(Translator.from_run(spec.run, spec.device, spec.threshold),
                   spec.probability)

    @classmethod
    def from_run(cls, run: str | Path, probability: float = 0.5,
                 device: str | None = None) -> TranslateStage:
        return cls(Translator.from_run(run, device), probability)

    def __call__(self, rgb: np.ndarray, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
        draw = float(rng.uniform())
        translated = draw < self.probability
        if translated:
            rgb, mask = self.translator(rgb)
        else:
            mask = np.zeros(rgb.shape[:2], dtype=bool)
        self.last_params = {"translated": translated, "draw": draw,
                            "checkpoint_sha256": self.translator.sha256,
                            "mask_area_px": int(mask.sum())}
        return rgb, mask

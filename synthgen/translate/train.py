"""Training a translator: a good folder and a defective folder in, a run folder out.

    train_translator("good/", "defective/", "runs/tile", epochs=100, decay_epochs=200)

Run folder:

    translator.json      the settings and data of the run (written first)
    last.pt              the checkpoint (networks, optimisers, pools, epoch, step), atomic
    history.json         mean losses per finished epoch
    samples/epoch_NNN.png   a grid per epoch: good images, their translations, the masks

Schedule: Adam (lr 2e-4, β = (0.5, 0.999)); the rate is constant for `epochs` epochs, then
falls linearly toward 0 over `decay_epochs` more. An epoch is max(|X|, |Y|) samples (or
`iters_per_epoch` batches). The checkpoint is written at the end of every epoch, every
`checkpoint_every` iterations and when `max_seconds` runs out; `resume=True` continues at
the stored epoch and iteration with the same batches, optimiser state and pools.

Device: CUDA when present (bf16 autocast with `amp`), else the CPU. Under torchrun
(WORLD_SIZE > 1) each network is wrapped in DistributedDataParallel, the batches are
sharded by rank and only rank 0 writes (the pattern of `synthgen.detect.engine`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthgen.detect.checkpoint import _atomic_write
from synthgen.detect.data import Item
from synthgen.detect.engine import DistInfo, autocast, setup_device
from synthgen.errors import ConfigError
from synthgen.translate.data import JointTransform, make_unpaired_dataset
from synthgen.translate.model import CycleGANModel, TranslatorConfig
from synthgen.writers.atomic import write_json, write_png

log = logging.getLogger(__name__)

RUN_FILE = "translator.json"
CHECKPOINT = "last.pt"
GRID_IMAGES = 4


@dataclass(frozen=True)
class Schedule:
    """Epoch counts and the learning rate.

    Attributes:
        epochs: epochs at the constant rate (100 in the paper).
        decay_epochs: epochs of linear decay after them (200).
        lr: Adam's rate (2e-4); beta1 0.5.
        batch_size: images per batch per process (1).
        iters_per_epoch: batches per epoch; None: the dataset's length / batch_size.
    """

    epochs: int = 100
    decay_epochs: int = 200
    lr: float = 2e-4
    beta1: float = 0.5
    batch_size: int = 1
    iters_per_epoch: int | None = None

    @property
    def total_epochs(self) -> int:
        return self.epochs + self.decay_epochs

    def lr_at(self, epoch: int) -> float:
        """The rate during 0-based `epoch`: lr for the first `epochs`, then
        lr·(1 − k/(decay_epochs + 1)) in decay epoch k = 1 ... decay_epochs (linear toward 0:
        the last runs at lr/(decay_epochs + 1))."""
        if epoch < self.epochs or self.decay_epochs == 0:
            return self.lr
        k = epoch - self.epochs + 1
        return self.lr * max(0.0, 1.0 - k / (self.decay_epochs + 1))


def _order(n: int, seed: int, epoch: int, info: DistInfo) -> np.ndarray:
    """This rank's sample indices for `epoch` (a seeded permutation, strided by rank)."""
    perm = np.random.default_rng([seed, 7919, epoch]).permutation(n)
    return perm[info.rank::info.world_size]


def _batches(dataset, order: np.ndarray, batch_size: int, start: int, count: int):
    """Batches start, start+1, ... count-1 of `order` as dicts of stacked tensors."""
    for b in range(start, count):
        idx = order[(b * batch_size) % len(order):][:batch_size]
        if len(idx) < batch_size:
            idx = np.concatenate([idx, order[: batch_size - len(idx)]])
        samples = [dataset[int(i)] for i in idx]
        yield {k: torch.from_numpy(np.stack([s[k] for s in samples])) for k in samples[0]}


@dataclass
class _State:
    """Everything a checkpoint holds: networks, optimisers, pools and counters."""

    model: CycleGANModel
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    pools: dict[str, Any]
    epoch: int = 0
    step: int = 0  # iterations done in the current epoch
    global_step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    sums: dict[str, float] = field(default_factory=dict)  # loss sums of the current epoch

    def save(self, out: Path) -> None:
        payload = {
            "spec": "translator",
            "config": self.model.config.model_dump(mode="json"),
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "pools": {k: p.state_dict() for k, p in self.pools.items()},
            "epoch": self.epoch, "step": self.step, "global_step": self.global_step,
            "history": self.history, "epoch_sums": self.sums,
        }
        _atomic_write(out / CHECKPOINT, lambda tmp: torch.save(payload, tmp))

    def load(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.opt_g.load_state_dict(ckpt["opt_g"])
        self.opt_d.load_state_dict(ckpt["opt_d"])
        for k, p in self.pools.items():
            p.load_state_dict(ckpt["pools"][k])
        self.epoch, self.step = int(ckpt["epoch"]), int(ckpt["step"])
        self.global_step = int(ckpt["global_step"])
        self.history, self.sums = list(ckpt["history"]), dict(ckpt["epoch_sums"])


def _build(config: TranslatorConfig, schedule: Schedule, dev: torch.device, seed: int,
           info: DistInfo) -> _State:
    torch.manual_seed(seed)
    model = CycleGANModel(config).to(dev)
    betas = (schedule.beta1, 0.999)
    return _State(model, torch.optim.Adam(model.generators(), lr=schedule.lr, betas=betas),
                  torch.optim.Adam(model.critics(), lr=schedule.lr, betas=betas),
                  model.make_pools(seed + 1000 * info.rank))


def load_translator_checkpoint(path: str | Path, map_location: str = "cpu") -> dict[str, Any]:
    """Read a translator checkpoint.

    Raises:
        ConfigError: the file is missing or not a translator checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"translator checkpoint {path} does not exist; train one with "
                          "synthgen translate train")
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("spec") != "translator":
        raise ConfigError(f"{path} is not a translator checkpoint")
    return ckpt


def _grid(model: CycleGANModel, fixed: torch.Tensor, out: Path, epoch: int,
          threshold: float) -> None:
    """samples/epoch_NNN.png: rows of good images, translations and masks."""
    from synthgen.translate.apply import to_uint8

    model.eval()
    with torch.no_grad():
        fake, logits = model.G(fixed)
    model.train()
    rows = [to_uint8(fixed), to_uint8(fake)]
    if logits is not None:
        mask = (torch.sigmoid(logits.float()) > threshold).float() * 2 - 1
        rows.append(to_uint8(mask.repeat(1, 3, 1, 1)))
    grid = np.concatenate([np.concatenate(list(r), axis=1) for r in rows], axis=0)
    write_png(out / "samples" / f"epoch_{epoch:03d}.png", grid)


def train_translator(
    good: Sequence[Item],
    defective: Sequence[Item],
    out: str | Path,
    config: TranslatorConfig | None = None,
    schedule: Schedule | None = None,
    *,
    device: str | None = None,
    amp: bool = False,
    seed: int = 0,
    resume: bool = False,
    max_seconds: float | None = None,
    checkpoint_every: int = 500,
    progress: Callable[[int, int], None] | None = None,
    data_note: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train (or continue) a translator; see the module docstring.

    Args:
        good: domain X Items (defect-free). defective: domain Y Items with masks.
        out: run folder.
        config: settings (ignored on resume: the checkpoint's are used).
        schedule: epochs, rate, batch size.
        device: "cpu", "cuda[:N]" or None (CUDA when present).
        amp: bf16 autocast on CUDA.
        seed: seeds the initialisation, the batches, the augmentations and the pools.
        resume: continue from out/last.pt.
        max_seconds: stop (after checkpointing) when this wall time is spent.
        checkpoint_every: iterations between mid-epoch checkpoints.
        progress: progress(done_iterations, total_iterations) after every iteration.
        data_note: recorded in translator.json (e.g. the data folders).

    Returns:
        {"epoch", "step", "global_step", "history", "seconds", "stopped_early"}.
    """
    schedule = schedule or Schedule()
    out = Path(out)
    dev, info = setup_device(device)
    ckpt = None
    if (out / CHECKPOINT).exists():
        if not resume:
            raise ConfigError(f"{out} already holds a translator run; pass --resume to continue "
                              "it, or choose another folder")
        ckpt = load_translator_checkpoint(out / CHECKPOINT)
        config = TranslatorConfig.model_validate(ckpt["config"])
    config = config or TranslatorConfig()
    if config.mask_branch and any(i.mask is None and not i.segments for i in defective):
        raise ConfigError("the consistency and background losses need masks of the defective "
                          "images: pass --masks, or switch them off (--losses plain)")
    try:
        return _fit(good, defective, out, config, schedule, dev, info, amp, seed, ckpt,
                    max_seconds, checkpoint_every, progress, data_note)
    finally:
        if info.owns_group:
            torch.distributed.destroy_process_group()


def _fit(good, defective, out, config, schedule, dev, info, amp, seed, ckpt, max_seconds,
         checkpoint_every, progress, data_note) -> dict[str, Any]:
    start_time = time.perf_counter()
    st = _build(config, schedule, dev, seed, info)
    if ckpt is not None:
        st.load(ckpt)
        log.info("resuming %s at epoch %d, iteration %d", out, st.epoch, st.step)
    elif info.is_main:
        write_json(out / RUN_FILE, {"config": config.model_dump(mode="json"),
                                    "schedule": schedule.__dict__, "seed": seed,
                                    "good": len(good), "defective": len(defective),
                                    **(data_note or {})}, indent=2)
    if info.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [dev.index] if dev.type == "cuda" else None
        st.model.wrap(lambda net: DDP(net, device_ids=ids))
    transform = JointTransform(config.size, config.resize_to, elastic_p=config.elastic_p)
    dataset = make_unpaired_dataset(good, defective, transform, seed)
    per_rank = max(1, len(dataset) // info.world_size)
    iters = schedule.iters_per_epoch or max(1, per_rank // schedule.batch_size)
    fixed = _fixed_batch(good, config, dev)
    total = schedule.total_epochs * iters
    ctx = (lambda: autocast(dev, True)) if amp else None
    stopped = False
    while st.epoch < schedule.total_epochs and not stopped:
        for group in (*st.opt_g.param_groups, *st.opt_d.param_groups):
            group["lr"] = schedule.lr_at(st.epoch)
        dataset.set_epoch(st.epoch)
        order = _order(len(dataset), seed, st.epoch, info)
        for batch in _batches(dataset, order, schedule.batch_size, st.step, iters):
            x, y, m = (batch[k].to(dev, non_blocking=True) for k in ("x", "y", "m"))
            logs = st.model.train_step(x, y, m, st.opt_g, st.opt_d, st.pools, ctx,
                                       freeze_critics=not info.enabled)
            for k, v in logs.items():
                st.sums[k] = st.sums.get(k, 0.0) + v
            st.step, st.global_step = st.step + 1, st.global_step + 1
            if progress:
                progress(st.global_step, total)
            stopped = max_seconds is not None and time.perf_counter() - start_time > max_seconds
            if info.is_main and (stopped or st.global_step % checkpoint_every == 0):
                st.save(out)
            if stopped:
                break
        if not stopped:
            _end_epoch(st, schedule, out, info, fixed)
    return {"epoch": st.epoch, "step": st.step, "global_step": st.global_step,
            "history": st.history, "seconds": time.perf_counter() - start_time,
            "stopped_early": stopped}


def _end_epoch(st: _State, schedule: Schedule, out: Path, info: DistInfo,
               fixed: torch.Tensor) -> None:
    """Close the epoch: history row, checkpoint, history.json and the sample grid."""
    row = {"epoch": st.epoch + 1, "lr": schedule.lr_at(st.epoch),
           **{k: v / max(st.step, 1) for k, v in st.sums.items()}}
    st.history.append(row)
    st.epoch, st.step, st.sums = st.epoch + 1, 0, {}
    if info.is_main:
        log.info("translator epoch %d: %s", st.epoch, row)
        st.save(out)
        history = st.history
        _atomic_write(out / "history.json",
                      lambda tmp: Path(tmp).write_text(json.dumps(history, indent=1)))
        _grid(st.model, fixed, out, st.epoch, st.model.config.mask_threshold)


def _fixed_batch(good: Sequence[Item], config: TranslatorConfig,
                 dev: torch.device) -> torch.Tensor:
    """The first GRID_IMAGES good images, resized to size², as a (K, 3, S, S) batch."""
    from synthgen.detect.data import load_image

    plain = JointTransform(config.size, config.resize_to, train=False)
    rng = np.random.default_rng(0)
    images = []
    for item in list(good)[:GRID_IMAGES]:
        rgb = load_image(item)
        images.append(plain(rgb, np.zeros(rgb.shape[:2], bool), rng)[0])
    return torch.from_numpy(np.stack(images)).to(dev)

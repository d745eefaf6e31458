"""The training engine: device, loaders, one epoch of training, evaluation, fit with resume/DDP.

The engine never looks inside a model: it goes through the protocol of the preset's kind (see
``synthgen.detect.models.registry``), implemented here by one small ``Task`` per kind in TASKS.

Device: ``pick_device`` takes CUDA when present, else the CPU. On CUDA the forward passes run
under bf16 autocast (no gradient scaler needed); on the CPU in float32.

Distributed: launched by ``torchrun`` (WORLD_SIZE > 1 in the environment), ``fit`` initialises
the process group (nccl on CUDA, gloo on the CPU), wraps the training step in
DistributedDataParallel, shards the training set with a DistributedSampler, and only rank 0
evaluates and writes checkpoints.

Randomness: the model is initialised after ``torch.manual_seed(seed)``; the shuffling of epoch
``e`` comes from a ``torch.Generator`` seeded with ``seed + e`` (or the DistributedSampler's
``seed`` and ``set_epoch(e)``), so a resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from synthgen.detect.checkpoint import (
    _atomic_write,
    load_checkpoint,
    load_optimizers,
    save_checkpoint,
    unwrap,
)
from synthgen.detect.models.registry import ModelSpec, get_spec
from synthgen.errors import ConfigError
from synthgen.registry import Registry

log = logging.getLogger(__name__)

LIST_KEYS = ("boxes", "classes")  # per-image lists in a batch; everything else is stacked


# -- device ----------------------------------------------------------------------------------
def pick_device(requested: str | torch.device | None = None) -> torch.device:
    """The device to train on: ``requested`` if given ("cpu", "cuda", "cuda:1"), else CUDA
    when available, else the CPU.

    Raises:
        ConfigError: the name is not a device, or CUDA (that index) is not available.
    """
    if requested is None or requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError):
        raise ConfigError(
            f"device {requested!r} is not a device name; use 'cpu', 'cuda' or 'cuda:N'"
        ) from None
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if count == 0:
            raise ConfigError(f"device {requested!r} asked for, but CUDA is not available")
        if device.index is not None and device.index >= count:
            raise ConfigError(f"device {requested!r} does not exist: {count} CUDA device(s)")
    elif device.type != "cpu":
        raise ConfigError(f"device {requested!r} is not supported; use 'cpu' or 'cuda[:N]'")
    return device


def autocast(device: torch.device, amp: bool | None = None) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (unless ``amp`` is False); a no-op context on the CPU."""
    if device.type == "cuda" and amp is not False:
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


# -- data ------------------------------------------------------------------------------------
def collate_batch(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Fallback collate to the batch contract: "boxes"/"classes" stay per-image lists of
    tensors; every other field is stacked into one tensor (numbers become a (B,) tensor)."""
    batch: dict[str, Any] = {}
    for key in samples[0]:
        values = [torch.as_tensor(s[key]) for s in samples]
        batch[key] = values if key in LIST_KEYS else torch.stack(values)
    return batch


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = False,
    workers: int = 0,
    collate: Callable[[list[Any]], Any] | None = None,
    *,
    sampler: Sampler | None = None,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
    device: torch.device | None = None,
) -> DataLoader:
    """A DataLoader with the engine's defaults: pinned memory when the device is CUDA,
    persistent workers when ``workers > 0``, ``collate_batch`` unless ``collate`` is given.
    With a ``sampler`` (e.g. DistributedSampler) ``shuffle`` is left to the sampler."""
    device = device if device is not None else pick_device()
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle if sampler is None else False,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate or collate_batch,
        pin_memory=device.type == "cuda",
        drop_last=drop_last,
        generator=generator,
        persistent_workers=workers > 0,
    )


def to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """Moves every tensor of a batch (and the tensors of its lists) to ``device``."""
    nb = device.type == "cuda"

    def move(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.to(device, non_blocking=nb)
        if isinstance(value, list):
            return [move(v) for v in value]
        return value

    return {k: move(v) for k, v in batch.items()}


# -- kinds -----------------------------------------------------------------------------------
def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy() if t.is_floating_point() else t.detach().cpu().numpy()


class Task:
    """How the engine trains and evaluates one kind of model."""

    kind = ""
    eval_loss = True  # whether ``loss`` works in eval mode (for the validation loss)

    def loss(self, model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        raise NotImplementedError

    def outputs(self, model: nn.Module, batch: dict[str, Any]) -> dict[str, Any]:
        """Raw outputs of one batch: numpy arrays (concatenated over batches) or lists."""
        raise NotImplementedError


TASKS: Registry[Task] = Registry("model kind")  # kind name → Task instance


def _common(batch: dict[str, Any]) -> dict[str, Any]:
    return {"labels": _np(batch["label"]), "index": _np(batch["index"])}


class ClassifierTask(Task):
    """forward(images) → logits (B, 2); cross-entropy with batch["label"]."""

    kind = "classifier"

    def loss(self, model, batch):
        return F.cross_entropy(model(batch["image"]).float(), batch["label"])

    def outputs(self, model, batch):
        probs = torch.softmax(model(batch["image"]).float(), dim=1)
        return {"probabilities": _np(probs), "scores": _np(probs[:, 1]),
                "predictions": _np(probs.argmax(dim=1)), **_common(batch)}


class SegmenterTask(Task):
    """forward(images) → logits (B, 1, S, S); binary cross-entropy with batch["mask"]."""

    kind = "segmenter"

    def loss(self, model, batch):
        return F.binary_cross_entropy_with_logits(model(batch["image"]).float(), batch["mask"])

    def outputs(self, model, batch):
        maps = torch.sigmoid(model(batch["image"]).float())[:, 0]
        return {"scores": _np(maps.flatten(1).amax(dim=1)), "maps": _np(maps),
                "masks": _np(batch["mask"][:, 0]), **_common(batch)}


class AnomalyTask(Task):
    """loss(batch) → scalar on good images; score(images) → (scores (B,), maps (B, S, S))."""

    kind = "anomaly"

    def loss(self, model, batch):
        return model.loss(batch)

    def outputs(self, model, batch):
        scores, maps = model.score(batch["image"])
        out = {"scores": _np(scores), "maps": _np(maps), "masks": _np(batch["mask"][:, 0]),
               **_common(batch)}
        if callable(getattr(model, "embed", None)):  # a 2-D view of the features (clustering)
            xy, cluster = model.embed(batch["image"])
            out.update(embedding=_np(xy), cluster=_np(cluster))
        return out


class DetectorTask(Task):
    """loss(batch) → scalar (train mode); predict(images) → list of box/score/class dicts."""

    kind = "detector"
    eval_loss = False

    def loss(self, model, batch):
        return model.loss(batch)

    def outputs(self, model, batch):
        preds = model.predict(batch["image"])
        return {
            "predictions": [{k: _np(v) for k, v in p.items()} for p in preds],
            "boxes": [_np(b) for b in batch["boxes"]],
            "classes": [_np(c) for c in batch["classes"]],
            **_common(batch),
        }


for _task in (ClassifierTask(), SegmenterTask(), AnomalyTask(), DetectorTask()):
    TASKS.register(_task.kind)(_task)


class TrainStep(nn.Module):
    """``forward(batch) → loss`` of a model through its kind's Task; this is the module DDP
    wraps, so gradient all-reduce runs whatever method the kind's loss calls."""

    def __init__(self, model: nn.Module, kind: str):
        super().__init__()
        self.model = model
        self.task = TASKS.get(kind)

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        return self.task.loss(self.model, batch)


def _train_step_of(model: nn.Module, spec: ModelSpec) -> nn.Module:
    if isinstance(model, (TrainStep, DistributedDataParallel)):
        return model
    return TrainStep(model, spec.kind)


def _inner_model(model: nn.Module) -> nn.Module:
    model = unwrap(model)
    return model.model if isinstance(model, TrainStep) else model


# -- one epoch, evaluation --------------------------------------------------------------------
def sync_gradients(parameters: Iterable[nn.Parameter]) -> None:
    """Averages the gradients of `parameters` over the ranks (a no-op in one process): what
    DDP does for the usual step, for models that run their own step."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    world = dist.get_world_size()
    for p in parameters:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world


def make_optimizers(model: nn.Module, lr: float, weight_decay: float = 0.0
                    ) -> dict[str, torch.optim.Optimizer]:
    """The model's own optimisers (``configure_optimizers(lr, weight_decay)`` → name →
    optimizer, e.g. a GAN's "generator" and "discriminator"), else one Adam named "model"."""
    own = getattr(model, "configure_optimizers", None)
    if callable(own):
        return dict(own(lr, weight_decay))
    return {"model": torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)}


def owns_step(model: nn.Module) -> bool:
    """Whether the model runs its own training step: ``train_step(batch, optimizers, sync)``
    zeroes, back-propagates and steps its optimisers itself (two-player GAN updates, or no
    gradient step at all) and returns the detached loss to report."""
    return callable(getattr(_inner_model(model), "train_step", None))


def _step(step_module: nn.Module, batch: dict[str, Any],
          optimizers: Mapping[str, torch.optim.Optimizer], device: torch.device,
          amp: bool | None, scaler: torch.amp.GradScaler | None) -> torch.Tensor:
    net = _inner_model(step_module)
    if owns_step(net):
        with autocast(device, amp):
            return net.train_step(batch, optimizers, sync_gradients)
    (optimizer,) = optimizers.values()
    with autocast(device, amp):
        loss = step_module(batch)
    if not torch.isfinite(loss):
        return loss
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
    return loss


def train_one_epoch(
    model: nn.Module,
    spec: ModelSpec,
    loader: Iterable[dict[str, Any]],
    optimizer: torch.optim.Optimizer | Mapping[str, torch.optim.Optimizer],
    device: torch.device,
    *,
    amp: bool | None = None,
    scaler: torch.amp.GradScaler | None = None,
    max_steps: int | None = None,
) -> float:
    """Trains one pass over ``loader`` and returns the mean loss (averaged over ranks in DDP).

    Args:
        model: the model, or ``DistributedDataParallel(TrainStep(model, kind))``.
        spec: its preset (the kind decides the loss).
        amp: bf16 autocast on CUDA unless False; ignored on the CPU.
        optimizer: one optimizer, or the name → optimizer dict of ``make_optimizers``
            (models that own their step get the dict).
        scaler: an optional GradScaler (only useful for fp16; bf16 needs none).
        max_steps: stop after this many batches (for smoke tests and benchmarks).

    Raises:
        FloatingPointError: a loss is NaN or infinite (names the step).
    """
    step_module = _train_step_of(model, spec)
    step_module.train()
    optimizers = dict(optimizer) if isinstance(optimizer, Mapping) else {"model": optimizer}
    total, count = torch.zeros((), dtype=torch.float64, device=device), 0
    for step, batch in enumerate(loader):
        if max_steps is not None and step >= max_steps:
            break
        batch = to_device(batch, device)
        loss = _step(step_module, batch, optimizers, device, amp, scaler)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{spec.name}: loss is {loss.item()} at step {step}; "
                                     "lower the learning rate or check the data")
        total += loss.detach().double()
        count += 1
    stats = torch.stack([total, torch.tensor(float(count), dtype=torch.float64, device=device)])
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(stats)
    return float(stats[0] / stats[1]) if stats[1] > 0 else float("nan")


@torch.no_grad()
def evaluate(
    model: nn.Module,
    spec: ModelSpec,
    loader: Iterable[dict[str, Any]],
    device: torch.device,
    *,
    amp: bool | None = None,
    with_loss: bool = True,
) -> dict[str, Any]:
    """Runs the model in eval mode over ``loader`` and returns raw outputs (metrics elsewhere).

    Returns (N images in loader order; arrays are numpy):
        - every kind: "labels" (N,) int64, "index" (N,) int64, "loss" float (mean of the
          kind's training loss, NaN for detectors or ``with_loss=False``).
        - classifier: "probabilities" (N, 2) float32, "scores" (N,) P(defective),
          "predictions" (N,) int64.
        - anomaly: "scores" (N,) float32 (higher = more anomalous), "maps" (N, S, S) float32,
          "masks" (N, S, S) float32 ground truth.
        - segmenter: "scores" (N,) max of the map, "maps" (N, S, S) sigmoid, "masks".
        - detector: "predictions" list of {"boxes", "scores", "classes"}, "boxes" and
          "classes" lists of ground truth.
    """
    net = _inner_model(model)
    task = TASKS.get(spec.kind)
    net.eval()
    parts: dict[str, list[Any]] = {}
    losses: list[float] = []
    for batch in loader:
        batch = to_device(batch, device)
        with autocast(device, amp):
            out = task.outputs(net, batch)
            if with_loss and task.eval_loss:
                losses.append(float(task.loss(net, batch)) * len(batch["label"]))
        for key, value in out.items():
            parts.setdefault(key, []).append(value)
    result: dict[str, Any] = {}
    for key, chunks in parts.items():
        if isinstance(chunks[0], list):
            result[key] = [item for chunk in chunks for item in chunk]
        else:
            result[key] = np.concatenate(chunks, axis=0)
    n = len(result.get("labels", ()))
    result["loss"] = float(sum(losses) / n) if losses and n else float("nan")
    return result


# -- distributed -----------------------------------------------------------------------------
@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # this process initialised the group and must destroy it

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Initialises the process group when launched with WORLD_SIZE > 1 (torchrun sets it):
    nccl on CUDA, gloo on the CPU. Returns rank information (world size 1 otherwise)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    owns = False
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, init_method="env://")
        owns = True
    return DistInfo(dist.get_rank(), dist.get_world_size(),
                    int(os.environ.get("LOCAL_RANK", "0")), owns)


def setup_device(requested: str | torch.device | None = None) -> tuple[torch.device, DistInfo]:
    """`pick_device(requested)` and `init_distributed`; under torchrun on CUDA each process
    takes (and makes current) ``cuda:LOCAL_RANK``."""
    device = pick_device(requested)
    info = init_distributed(device)
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    return device, info


def _barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


# -- fit -------------------------------------------------------------------------------------
@dataclass
class FitResult:
    """What ``fit`` returns: the trained (unwrapped) model and its history."""

    model: nn.Module
    spec: ModelSpec
    epochs: int
    history: list[dict[str, Any]] = field(default_factory=list)
    checkpoint: Path | None = None


def fit(
    spec_name: str,
    train_dataset: Dataset,
    val_dataset: Dataset | None = None,
    out_dir: str | Path = "runs/model",
    epochs: int = 10,
    batch_size: int = 8,
    lr: float = 1e-3,
    device: str | torch.device | None = None,
    seed: int = 0,
    resume: bool = False,
    *,
    config: Mapping[str, Any] | None = None,
    workers: int = 0,
    collate: Callable[[list[Any]], Any] | None = None,
    weight_decay: float = 0.0,
    amp: bool | None = None,
    metrics_fn: Callable[[str, dict[str, Any]], Mapping[str, Any]] | None = None,
) -> FitResult:
    """Trains preset ``spec_name`` for ``epochs`` epochs (Adam), checkpointing every epoch.

    Writes ``out_dir/last.pt`` after every epoch, ``out_dir/best.pt`` when the validation loss
    improves, and ``out_dir/history.json`` (one dict per epoch: epoch, train_loss, val_loss and
    whatever ``metrics_fn(kind, evaluate(...))`` returns). With ``resume=True`` and an existing
    ``last.pt``, the model, optimizer state, config and history are restored and training
    continues at the next epoch; ``epochs`` is the total, so a finished run returns at once.

    Args:
        spec_name: a preset in MODELS ("ae_ssim", "resnet18", ...).
        train_dataset, val_dataset: map-style datasets whose collated batches follow the batch
            contract ("image", "mask", "label", "boxes", "classes", "index").
        config: overrides of the preset's default config (ignored when resuming).
        device: "cpu", "cuda", "cuda:N" or None (CUDA when available); under torchrun each
            process takes ``cuda:LOCAL_RANK``.
        collate: the dataset's collate function (``collate_batch`` when None).

    Returns:
        FitResult with the unwrapped model (on ``device``); under DDP only rank 0's result
        carries the history.
    """
    spec = get_spec(spec_name)
    device, info = setup_device(device)
    out = Path(out_dir)
    last = out / "last.pt"
    try:
        ckpt = load_checkpoint(last, map_location="cpu") if resume and last.is_file() else None
        if ckpt is not None and ckpt["spec"] != spec.name:
            raise ConfigError(f"cannot resume {spec.name!r} from {str(last)!r}: it holds a "
                              f"{ckpt['spec']!r} model; pick another out_dir")
        cfg = dict(ckpt["config"]) if ckpt is not None else spec.config(config)
        torch.manual_seed(seed)
        model = spec.build(cfg).to(device)
        optimizers = make_optimizers(model, lr, weight_decay)
        start, history = 0, []
        if ckpt is not None:
            model.load_state_dict(ckpt["model"])
            load_optimizers(optimizers, ckpt["optimizer"], last)
            start, history = int(ckpt["epoch"]), list(ckpt["metrics"].get("history", []))
            log.info("resuming %s from %s at epoch %d", spec.name, last, start)
        step_module: nn.Module = TrainStep(model, spec.kind)
        if info.enabled and not owns_step(model):  # own steps sync with sync_gradients
            ids = [device.index] if device.type == "cuda" else None
            step_module = DistributedDataParallel(step_module, device_ids=ids)
        loaders = _fit_loaders(train_dataset, val_dataset, batch_size, workers, collate,
                               device, seed, info)
        best = min((h["val_loss"] for h in history if _finite(h.get("val_loss"))),
                   default=math.inf)
        for epoch in range(start, epochs):
            loaders.set_epoch(epoch)
            train_loss = train_one_epoch(step_module, spec, loaders.train, optimizers, device,
                                         amp=amp)
            if callable(getattr(model, "fit_after", None)):
                model.fit_after(loaders.train_full, device)
            row: dict[str, Any] = {"epoch": epoch + 1, "train_loss": train_loss}
            if info.is_main:
                if loaders.val is not None:
                    outputs = evaluate(model, spec, loaders.val, device, amp=amp)
                    row["val_loss"] = outputs["loss"]
                    if metrics_fn is not None:
                        row.update(metrics_fn(spec.kind, outputs))
                history.append(row)
                log.info("%s epoch %d/%d: %s", spec.name, epoch + 1, epochs, row)
                metrics = {"history": history}
                save_checkpoint(last, model, spec=spec.name, epoch=epoch + 1, config=cfg,
                                optimizer=optimizers, metrics=metrics)
                # Models whose validation loss does not rank them (GANs) keep the last epoch.
                selects = getattr(model, "select_best", True)
                if selects and _finite(row.get("val_loss")) and row["val_loss"] < best:
                    best = row["val_loss"]
                    save_checkpoint(out / "best.pt", model, spec=spec.name, epoch=epoch + 1,
                                    config=cfg, metrics=metrics)
                _atomic_write(out / "history.json",
                              lambda tmp: Path(tmp).write_text(json.dumps(history, indent=1)))
            _barrier(info)
        return FitResult(model, spec, max(start, epochs), history, last if last.exists() else None)
    finally:
        if info.owns_group:
            dist.destroy_process_group()


def _finite(value: Any) -> bool:
    return isinstance(value, float) and math.isfinite(value)


@dataclass
class _Loaders:
    train: DataLoader
    train_full: DataLoader  # unsharded, unshuffled: for fit_after hooks (same on every rank)
    val: DataLoader | None
    sampler: DistributedSampler | None
    generator: torch.Generator
    seed: int

    def set_epoch(self, epoch: int) -> None:
        dataset = self.train.dataset
        if hasattr(dataset, "set_epoch"):  # per-epoch flips / synthetic anomalies
            dataset.set_epoch(epoch)
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
        self.generator.manual_seed(self.seed + epoch)


def _fit_loaders(
    train_dataset: Dataset,
    val_dataset: Dataset | None,
    batch_size: int,
    workers: int,
    collate: Callable[[list[Any]], Any] | None,
    device: torch.device,
    seed: int,
    info: DistInfo,
) -> _Loaders:
    n = len(train_dataset)  # type: ignore[arg-type]
    if n == 0:
        raise ConfigError("the training set is empty")
    generator = torch.Generator().manual_seed(seed)
    sampler = None
    if info.enabled:
        sampler = DistributedSampler(train_dataset, num_replicas=info.world_size,
                                     rank=info.rank, shuffle=True, seed=seed)
    # Drop a ragged last batch (BatchNorm fails on a single image) when there is a full one.
    drop_last = n // info.world_size >= batch_size
    kw = {"workers": workers, "collate": collate, "device": device}
    train = make_loader(train_dataset, batch_size, shuffle=True, sampler=sampler,
                        generator=generator, drop_last=drop_last, **kw)
    train_full = make_loader(train_dataset, batch_size, shuffle=False, **kw)
    val = make_loader(val_dataset, batch_size, **kw) if val_dataset is not None else None
    return _Loaders(train, train_full, val, sampler, generator, seed)


"""Checkpoints (atomic save, load, rebuild) and TorchScript export.

A checkpoint is one ``torch.save`` file holding a dict:
``{"model": state dict, "optimizer": state dict or None, "epoch": completed epochs (int),
"config": the model config, "metrics": dict, "spec": preset name, "synthgen_version": str}``.
It is written to a temporary file in the same folder and moved into place with ``os.replace``,
so an interrupted save leaves the previous checkpoint intact. Loading uses
``weights_only=True``: configs and metrics must be plain Python values.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

import synthgen
from synthgen.errors import ConfigError

FORMAT_KEYS = ("model", "optimizer", "epoch", "config", "metrics", "spec", "synthgen_version")


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel / DataParallel wrapper, else ``model``."""
    return getattr(model, "module", model)


def _atomic_write(path: Path, write: Callable[[str], None]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    *,
    spec: str,
    epoch: int,
    config: Mapping[str, Any] | None = None,
    optimizer: torch.optim.Optimizer | Mapping[str, torch.optim.Optimizer] | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> Path:
    """Writes a checkpoint atomically (temp file + os.replace) and returns its path.

    Args:
        path: destination file, e.g. ``out/last.pt``; parent folders are created.
        model: the model (a DDP wrapper is unwrapped); its state dict is saved on the CPU.
        spec: preset name, so ``load_model`` can rebuild the network.
        epoch: number of completed epochs.
        config: the config the model was built from.
        optimizer: saved too when given, for resuming: one optimizer (or a dict holding only
            "model") as its state dict, several as ``{"optimizers": {name: state dict}}``.
        metrics: plain values (floats, lists, dicts) such as the training history.
    """
    state = {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()}
    payload = {
        "model": state,
        "optimizer": _optimizer_state(optimizer),
        "epoch": int(epoch),
        "config": dict(config or {}),
        "metrics": dict(metrics or {}),
        "spec": spec,
        "synthgen_version": synthgen.__version__,
    }
    return _atomic_write(Path(path), lambda tmp: torch.save(payload, tmp))


def _optimizer_state(optimizer: Any) -> dict[str, Any] | None:
    if optimizer is None:
        return None
    if isinstance(optimizer, Mapping):
        if set(optimizer) == {"model"}:
            return optimizer["model"].state_dict()
        return {"optimizers": {k: v.state_dict() for k, v in optimizer.items()}}
    return optimizer.state_dict()


def load_optimizers(optimizers: Mapping[str, torch.optim.Optimizer], state: Any,
                    where: str | Path = "checkpoint") -> None:
    """Restores the optimisers of ``make_optimizers`` from a checkpoint's "optimizer" entry.

    Raises:
        ConfigError: no state, or state for other optimiser names.
    """
    if state is None:
        raise ConfigError(f"{str(where)!r} holds no optimizer state to resume from")
    named = state.get("optimizers") if isinstance(state, dict) else None
    if named is None:
        named = {"model": state}
    if set(named) != set(optimizers):
        raise ConfigError(f"{str(where)!r} holds optimizers {sorted(named)}, the model has "
                          f"{sorted(optimizers)}")
    for name, optimizer in optimizers.items():
        optimizer.load_state_dict(named[name])


def load_checkpoint(
    path: str | Path,
    model: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Reads a checkpoint; restores ``model`` and ``optimizer`` state when they are given.

    Returns:
        the checkpoint dict (keys in FORMAT_KEYS).

    Raises:
        ConfigError: the file is missing or is not a synthgen checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {str(path)!r} does not exist")
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(ckpt, dict) or "model" not in ckpt or "spec" not in ckpt:
        raise ConfigError(f"{str(path)!r} is not a synthgen checkpoint (no 'model'/'spec' keys)")
    if model is not None:
        unwrap(model).load_state_dict(ckpt["model"])
    if optimizer is not None:
        if ckpt.get("optimizer") is None:
            raise ConfigError(f"checkpoint {str(path)!r} holds no optimizer state to resume from")
        optimizer.load_state_dict(ckpt["optimizer"])
    return ckpt


def load_model(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuilds the preset named in a checkpoint, loads its weights and returns it in eval mode.

    ``weights_path`` in the stored config is dropped: the checkpoint holds the weights. Options
    the stored config lacks take the preset's ``legacy_config`` value when it has one (the
    behaviour the checkpoint was trained and thresholded with), else its default.

    Returns:
        (model, checkpoint dict).
    """
    from synthgen.detect.models.registry import get_spec

    ckpt = load_checkpoint(path, map_location=map_location)
    spec = get_spec(ckpt["spec"])
    stored = {k: v for k, v in ckpt["config"].items() if k in spec.default_config}
    config = {**{k: v for k, v in spec.legacy_config.items() if k not in stored}, **stored}
    if "weights_path" in config:
        config["weights_path"] = None
    model = spec.make(**config)
    model.load_state_dict(ckpt["model"])
    return model.to(map_location).eval(), ckpt


class _MethodModule(nn.Module):
    """Exposes ``model.<method>`` as ``forward`` so it can be traced."""

    def __init__(self, model: nn.Module, method: str):
        super().__init__()
        self.model = model
        self.method = method

    def forward(self, images: torch.Tensor) -> Any:
        return getattr(self.model, self.method)(images)


def export(
    model: nn.Module, path: str | Path, example: torch.Tensor, method: str = "forward"
) -> Path:
    """Exports ``model`` (in eval mode) to TorchScript by tracing, written atomically.

    Args:
        model: the network (a DDP wrapper is unwrapped); it is switched to eval mode.
        path: destination ``.pt`` file; load it with ``torch.jit.load``.
        example: an input batch, e.g. ``torch.rand(1, 3, 256, 256)``, on the model's device.
        method: "forward" (classifier logits, autoencoder reconstruction) or another method
            taking images, e.g. "score" of an anomaly model without KDE (pure torch).

    The trace fixes the spatial size of ``example``; other batch sizes work. TorchScript is
    deprecated in recent torch releases but still loads everywhere (C++, older torch).

    Returns:
        the written path.
    """
    module = unwrap(model).eval()
    if method != "forward":
        if not callable(getattr(module, method, None)):
            raise ConfigError(f"{type(module).__name__} has no method {method!r} to export")
        module = _MethodModule(module, method).eval()
    with torch.no_grad(), warnings.catch_warnings():
        # torch >= 2.10 flags TorchScript as deprecated; shape checks in the models read
        # constant sizes under tracing, which is what we want for a fixed input size.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(module, example, check_trace=False)
        return _atomic_write(Path(path), lambda tmp: torch.jit.save(traced, tmp))

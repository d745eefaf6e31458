"""Good/defective image classifiers: torchvision ResNet-18 and DenseNet-121 with a 2-class head.

Randomly initialised (``weights=None``): nothing is downloaded. ``weights_path`` names a local
state dict, e.g. an ImageNet ``resnet18-f37072fd.pth`` the user fetched, a state dict of the
bare torchvision network or a synthgen checkpoint; tensors whose shape does not fit (the
1000-class head) are skipped and logged.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from synthgen.detect.models.registry import ModelSpec, register_model
from synthgen.errors import ConfigError

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Old torchvision DenseNet checkpoints name "norm.1" what the module now calls "norm1".
_DENSENET_OLD_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


class ImageClassifier(nn.Module):
    """A backbone behind per-channel normalisation.

    Args:
        backbone: network mapping normalised (B, 3, H, W) images to logits (B, 2).
        normalize: subtract the ImageNet mean and divide by its std first (what ImageNet weights
            expect); inputs are (B, 3, H, W) float in [0, 1] either way.
    """

    def __init__(self, backbone: nn.Module, normalize: bool = True):
        super().__init__()
        self.backbone = backbone
        self.normalize = normalize
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) float in [0, 1] → logits (B, 2) (index 1 = defective)."""
        if self.normalize:
            images = (images - self.mean) / self.std
        return self.backbone(images)


def load_weights(model: ImageClassifier, path: str | Path) -> None:
    """Loads a local state dict into ``model``; never downloads.

    Accepts a bare torchvision state dict (loaded into ``model.backbone``), a state dict of the
    whole ImageClassifier or a synthgen checkpoint (its "model" entry). Tensors of the wrong shape
    (the ImageNet head) and missing keys are logged and left at their random init.

    Raises:
        ConfigError: the file is missing or no tensor in it fits the model.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"weights file {str(path)!r} does not exist; give a local state dict")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ConfigError(f"weights file {str(path)!r} holds no state dict")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    state = {_DENSENET_OLD_KEY.sub(r"\1\2", k): v for k, v in state.items()}
    target: nn.Module = model
    if not any(k.startswith("backbone.") for k in state):
        target = model.backbone
    own = target.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(set(state) - set(fitting))
    if not fitting:
        raise ConfigError(
            f"no tensor in weights file {str(path)!r} fits this model; is it the right network?"
        )
    result = target.load_state_dict(fitting, strict=False)
    if skipped:
        log.info("weights %s: skipped %d tensors that do not fit (%s)", path, len(skipped),
                 ", ".join(skipped[:4]))
    if result.missing_keys:
        log.info("weights %s: %d tensors keep their random init (%s)", path,
                 len(result.missing_keys), ", ".join(result.missing_keys[:4]))


def _build(backbone: nn.Module, config: dict[str, Any]) -> ImageClassifier:
    model = ImageClassifier(backbone, normalize=bool(config.get("normalize", True)))
    if config.get("weights_path"):
        load_weights(model, config["weights_path"])
    return model


def build_resnet18(config: dict[str, Any]) -> ImageClassifier:
    """ResNet-18 (11.2 M parameters) with a 2-class head, random init or ``weights_path``."""
    return _build(torchvision.models.resnet18(weights=None, num_classes=2), config)


def build_densenet121(config: dict[str, Any]) -> ImageClassifier:
    """DenseNet-121 (7.0 M parameters) with a 2-class head, random init or ``weights_path``."""
    return _build(torchvision.models.densenet121(weights=None, num_classes=2), config)


_CLS_DEFAULTS: dict[str, Any] = {"image_size": 256, "weights_path": None, "normalize": True}

register_model(ModelSpec(
    name="resnet18",
    kind="classifier",
    build=build_resnet18,
    default_config=_CLS_DEFAULTS,
    description="torchvision ResNet-18, 2-class head (good / defective)",
    needs="labels",
))
register_model(ModelSpec(
    name="densenet121",
    kind="classifier",
    build=build_densenet121,
    default_config=_CLS_DEFAULTS,
    description="torchvision DenseNet-121, 2-class head (good / defective)",
    needs="labels",
))
